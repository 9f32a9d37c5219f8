"""Numbers and outcomes for a chapter's prose, glued by myst-nb so that the text quotes what
the build computed (``{glue:text}`key:.2f` `` in Markdown)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from imbcl.report.verdicts import Verdict


def key(name: str) -> str:
    """A glue key from a claim id or name: dots become dashes (``ch1.gap`` -> ``ch1-gap``)."""
    return name.replace(".", "-")


def plain(value):
    """``value`` as a plain Python number or string (myst-nb formats only those)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue_values(values: Mapping[str, object]) -> None:
    """Glue every ``{name: value}`` under :func:`key` of its name, without displaying it."""
    from myst_nb import glue

    for name, value in values.items():
        glue(key(name), plain(value), display=False)


def glue_markdown(texts: Mapping[str, str]) -> None:
    """Glue every ``{name: Markdown text}`` under :func:`key` of its name, without displaying
    it (quoted in prose as ``{glue:md}`key` ``)."""
    from IPython.display import Markdown
    from myst_nb import glue

    for name, value in texts.items():
        glue(key(name), Markdown(value), display=False)


def outcome_phrases(
    verdicts: Mapping[str, Verdict], phrases: Mapping[str, Mapping[str, str]], suffix: str
) -> dict[str, str]:
    """``{"<claim id>-<suffix>": phrase}``: for each claim of ``phrases`` ({claim id: {outcome:
    phrase}}, outcomes holds, fails, undecided), the phrase of its outcome in ``verdicts``, so
    that the prose reads what the build found."""
    return {
        f"{cid}-{suffix}": by_outcome[verdicts[cid].outcome] for cid, by_outcome in phrases.items()
    }


def verdict_values(verdicts: Mapping[str, Verdict]) -> dict[str, object]:
    """Per claim: ``<id>-outcome`` (holds, fails, undecided), ``-mean``, ``-lo``, ``-hi``
    (the statistic's mean and 95 % CI), ``-k`` and ``-n`` (seeds on the claimed side, of n)."""
    out: dict[str, object] = {}
    for claim_id, v in verdicts.items():
        out |= {
            f"{claim_id}-outcome": v.outcome,
            f"{claim_id}-mean": float(v.mean),
            f"{claim_id}-lo": float(v.lo),
            f"{claim_id}-hi": float(v.hi),
            f"{claim_id}-k": int(v.k),
            f"{claim_id}-n": int(v.n),
        }
    return out
