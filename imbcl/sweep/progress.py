"""Progress of a sweep: a tqdm bar on stderr and, for the book build, lines in a log file.

The bar (tasks done, cached, failed) is drawn unless ``progress=False`` or ``IMBCL_PROGRESS=0``.
When ``IMBCL_PROGRESS_LOG`` names a file, one line such as ``[ch2] 40/180 tasks: 12 cached,
0 failed`` is appended at the start, at most every :data:`LOG_EVERY_S` seconds while tasks
complete, and at the end; ``make book`` shows that file on the console.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

LOG_EVERY_S = 10.0


def bar_enabled(progress: bool | None) -> bool:
    """``progress`` if given, else env ``IMBCL_PROGRESS`` (``0`` turns the bar off)."""
    if progress is not None:
        return bool(progress)
    return os.environ.get("IMBCL_PROGRESS", "1").strip().lower() not in ("0", "false", "no")


class Progress:
    """Counts of a sweep of ``total`` tasks of which ``cached`` came from the store."""

    def __init__(self, name: str, total: int, cached: int, bar: bool) -> None:
        self.name, self.total, self.cached = name, total, cached
        self.computed = self.failed = 0
        self.start = self.logged = time.monotonic()
        log = os.environ.get("IMBCL_PROGRESS_LOG")
        self.log_path = Path(log) if log else None
        todo = total - cached
        self.bar = (
            tqdm(total=total, initial=cached, desc=name, file=sys.stderr, unit="task")
            if bar and todo > 0
            else None
        )
        self.refresh_bar()
        self.log(f"{self.summary()}, {todo} to compute")

    def summary(self) -> str:
        """``[name] 40/180 tasks: 12 cached, 0 failed``."""
        finished = self.cached + self.computed + self.failed
        return f"[{self.name}] {finished}/{self.total} tasks: {self.cached} cached, {self.failed} failed"

    def refresh_bar(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"{self.computed} done, {self.cached} cached, {self.failed} failed", refresh=False
            )

    def update(self, failed: bool) -> None:
        """One more task finished (computed, or ``failed``)."""
        if failed:
            self.failed += 1
        else:
            self.computed += 1
        if self.bar is not None:
            self.refresh_bar()
            self.bar.update(1)
        if time.monotonic() - self.logged >= LOG_EVERY_S:
            self.log(self.summary())

    def close(self) -> None:
        """Close the bar and log the final line with the wall time."""
        if self.bar is not None:
            self.bar.close()
        self.log(f"{self.summary()}, finished in {time.monotonic() - self.start:.1f} s")

    def log(self, line: str) -> None:
        """Append ``line`` to ``IMBCL_PROGRESS_LOG`` (one write, so lines of concurrent
        sweeps do not interleave)."""
        if self.log_path is None:
            return
        self.logged = time.monotonic()
        with open(self.log_path, "a") as f:
            f.write(line + "\n")
