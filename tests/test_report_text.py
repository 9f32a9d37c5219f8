import numpy as np

from imbcl.report import text
from imbcl.report.verdicts import Verdict


def test_keys_and_plain_values_for_glue():
    assert text.key("ch1.onset-order-mean") == "ch1-onset-order-mean"
    value = text.plain(np.float32(0.5))
    assert type(value) is float and value == 0.5
    assert text.plain("holds") == "holds"


def test_verdict_values_name_every_number_of_a_claim():
    v = Verdict("ch1.gap", 8, 1, 1.5, 0.5, 2.5, 7, 0.03, "holds", True)
    values = text.verdict_values({"ch1.gap": v})
    assert values == {
        "ch1.gap-outcome": "holds",
        "ch1.gap-mean": 1.5,
        "ch1.gap-lo": 0.5,
        "ch1.gap-hi": 2.5,
        "ch1.gap-k": 7,
        "ch1.gap-n": 8,
    }


def test_outcome_phrases_read_each_claims_outcome():
    found = {
        "ch1.a": Verdict("ch1.a", 6, 0, 0.1, 0.0, 0.2, 5, 0.1, "fails", True),
        "ch1.b": Verdict("ch1.b", 6, 0, 0.1, 0.0, 0.2, 5, 0.1, "holds", True),
    }
    phrases = {c: {"holds": f"{c} up", "fails": f"{c} down", "undecided": "?"} for c in found}
    got = text.outcome_phrases(found, phrases, "reading")
    assert got == {"ch1.a-reading": "ch1.a down", "ch1.b-reading": "ch1.b up"}
