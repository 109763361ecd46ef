"""The monitor section's checks and allowed names (monitor.*), run by automlops.checks before any work
and by `automlops monitor` outside a project; imports no library (SciPy stays unloaded until drift runs)."""

from __future__ import annotations

from automlops.config.schema import MonitorConfig
from automlops.constraints import Constraints, Interval, Options, violations

METHODS = ("auto", "ks", "chisquare", "wasserstein", "jensenshannon", "psi")  # monitor.method (drift.py runs them)
P_VALUE_METHODS = ("ks", "chisquare")  # drifted below the threshold; the others are distances, drifted at or above it
RETRAIN_TRIGGERS = ("never", "dataset_drift", "performance_drift", "any_drift")  # monitor.retrain.when
P_VALUE = Interval(0, 1, closed="neither", note="(a p-value)")
POSITIVE = Interval(0, None, closed="neither")
CONSTRAINTS: Constraints = {
    "method": Options(METHODS),
    **{f"thresholds.{method}": P_VALUE if method in ("ks", "chisquare") else POSITIVE for method in METHODS[1:]},
    "drift_share": Interval(0, 1, closed="right", note="(the share of columns that makes dataset drift)"),
    "max_missing_rate_change": Interval(0, None),
    "max_metric_drop": Interval(0, None),
    "min_metric_worse": Interval(0, None),
    "retrain.when": Options(RETRAIN_TRIGGERS),
}
COLUMN_CONSTRAINTS: Constraints = {  # each of monitor.columns
    "method": [Options(METHODS[1:]), None],
    "threshold": [POSITIVE, None],
}


def check_monitor(monitor: MonitorConfig) -> list[str]:
    problems = violations("monitor", monitor, {"method": CONSTRAINTS["method"]})
    for name, column in monitor.columns.items():
        problems += violations(f"monitor.columns.{name}", column, COLUMN_CONSTRAINTS)
    return problems + violations(
        "monitor", monitor, {key: rule for key, rule in CONSTRAINTS.items() if key != "method"}
    )
