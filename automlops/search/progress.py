"""Search progress: a live bar (trials done, best so far, time left) on a terminal, one log line
per trial elsewhere, nothing with --quiet."""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger("automlops.search")


class SearchProgress:
    def __init__(self, total: int | None, timeout: float | None, metric: str, enabled: bool) -> None:
        self.total, self.timeout, self.metric = total, timeout, metric
        self.started = time.monotonic()
        self.best: float | None = None
        self.done = 0
        live = enabled and sys.stderr.isatty() and not os.environ.get("CI") and log.isEnabledFor(logging.INFO)
        self._bar: Any = None
        if live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("search"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[best]}"),
                TextColumn("{task.fields[left]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._task = self._bar.add_task("search", total=total, best="", left="")

    def __enter__(self) -> SearchProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def trial_finished(self, number: int, family: str, state: str, score: float | None) -> None:
        self.done += 1
        if score is not None and (self.best is None or score > self.best):
            self.best = score
        best = f"best {self.metric}={self.best:.5f}" if self.best is not None else "no score yet"
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, best=best, left=self._time_left())
            return
        shown = f"{self.metric}={score:.5f}" if score is not None else state.lower()
        log.info("trial %d %-22s %s  %s", number, family, shown, best)

    def _time_left(self) -> str:
        if self.timeout is None:
            return ""
        left = max(0.0, self.timeout - (time.monotonic() - self.started))
        return f"{left:.0f}s left"
