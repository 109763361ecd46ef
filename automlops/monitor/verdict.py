"""The monitoring decision, made once. `monitor.json`, `monitor.html`, the logged line and the exit code all
render this one object, so they cannot disagree (they once did: the line led with "dataset drift: 2 of 5
input columns drifted, share 0.40" when only performance had drifted and monitor.json said the dataset had
not)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from automlops.config.schema import MonitorConfig
from automlops.errors import DriftDetected

SHOWN_COLUMNS = 5  # drifted columns named in the line; the reports list them all


@dataclass(frozen=True)
class Verdict:
    """Dataset drift when at least `threshold` of the input columns drifted (`share >= threshold`);
    performance drift when the primary metric is worse by more than both limits. Either one is drift,
    and drift exits 4 unless monitor.fail_on_drift is off."""

    dataset: bool
    performance: bool | None  # None: the batch carries no labels, so performance was not judged
    fail_on_drift: bool
    drifted_columns: tuple[str, ...] = ()
    columns: int = 0
    share: float = 0.0
    threshold: float = 0.5
    metric: str | None = None
    current: float | None = None
    reference: float | None = None
    note: str | None = None  # nothing to judge (no batch, no model yet): why

    @property
    def drift(self) -> bool:
        return self.dataset or bool(self.performance)

    @property
    def exit_code(self) -> int:
        return DriftDetected.exit_code if self.drift and self.fail_on_drift else 0

    def line(self) -> str:
        """One sentence: the verdict first, then each test's figures and outcome, drifted ones first."""
        if self.note is not None:
            return f"no drift: {self.note}"
        parts = [
            (self.dataset, f"dataset {'drifted' if self.dataset else 'did not drift'} ({self._dataset_figures()})")
        ]
        if self.performance is not None:
            parts.append(
                (
                    self.performance,
                    f"performance {'drifted' if self.performance else 'did not drift'} ({self._performance_figures()})",
                )
            )
        parts.sort(key=lambda part: not part[0])  # stable
        quiet = " (exit 0: monitor.fail_on_drift is false)" if self.drift and not self.fail_on_drift else ""
        return f"{'drift' if self.drift else 'no drift'}{quiet}: " + "; ".join(text for _, text in parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "drifted_columns": list(self.drifted_columns),
            "drift": self.drift,
            "exit_code": self.exit_code,
            "line": self.line(),
        }

    def _dataset_figures(self) -> str:
        names = ", ".join(self.drifted_columns[:SHOWN_COLUMNS]) + (
            " ..." if len(self.drifted_columns) > SHOWN_COLUMNS else ""
        )
        return (
            f"{len(self.drifted_columns)} of {self.columns} input columns drifted{': ' + names if names else ''}; "
            f"share {_share(self.share, self.threshold)} {'>=' if self.dataset else '<'} monitor.drift_share={self.threshold:g}"
        )

    def _performance_figures(self) -> str:
        if self.current is None or self.reference is None:
            return f"{self.metric}: no figure to compare"
        return f"{self.metric} {self.current:.4f} vs {self.reference:.4f} at packaging"


def decide(drifted_columns: list[str], columns: int, performance: dict[str, Any] | None, cfg: MonitorConfig) -> Verdict:
    """The verdict from the per-column results and the performance figures (None without labels)."""
    share = len(drifted_columns) / columns if columns else 0.0
    performance_drift = None
    if performance is not None:
        performance_drift = (
            "drop" in performance
            and performance["drop"] > cfg.max_metric_drop
            and performance["worse"] > cfg.min_metric_worse
        )
    return Verdict(
        dataset=share >= cfg.drift_share,
        performance=performance_drift,
        fail_on_drift=cfg.fail_on_drift,
        drifted_columns=tuple(drifted_columns),
        columns=columns,
        share=share,
        threshold=cfg.drift_share,
        metric=(performance or {}).get("metric"),
        current=(performance or {}).get("current"),
        reference=(performance or {}).get("reference"),
    )


def nothing_to_judge(note: str, cfg: MonitorConfig) -> Verdict:
    return Verdict(
        dataset=False, performance=None, fail_on_drift=cfg.fail_on_drift, threshold=cfg.drift_share, note=note
    )


def _share(share: float, threshold: float) -> str:
    """The share with the digits it takes not to print the same figure as an unequal threshold (0.4995 is not
    "0.50"); equal to it, as the threshold is printed."""
    if share == threshold:
        return f"{threshold:g}"
    for digits in range(2, 8):
        text = f"{share:.{digits}f}"
        if float(text) != threshold:
            return text
    return repr(share)
