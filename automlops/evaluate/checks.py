"""The evaluate section's checks (evaluate.*), run by automlops.checks before any work."""

from __future__ import annotations

from automlops.config.schema import EvaluateConfig
from automlops.constraints import Constraints, Interval, violations

CONSTRAINTS: Constraints = {
    "threshold": [
        Interval(0, 1, closed="neither", note="(a probability)", fix="or null for the model's own decision"),
        None,
    ],
    "slice_bins": Interval(2, None, note="(quantile bins per numeric slice column)"),
    "min_slice_rows": Interval(1, None),
    "importance_repeats": Interval(0, None, note="(0 skips permutation importance)"),
    "importance_rows": [Interval(1, None, note="test row", fix="or null for all of them"), None],
    "importance_seconds": [Interval(0, None, closed="neither", note="seconds", fix="or null for no time cap"), None],
}


def check_evaluate(evaluate: EvaluateConfig, task: str) -> list[str]:
    problems = violations("evaluate", evaluate, CONSTRAINTS)
    if evaluate.threshold is not None and task in ("multiclass", "regression"):
        problems.append(f"evaluate.threshold: applies to binary tasks only, but data.task={task}; set it to null")
    repeated = sorted({name for name in evaluate.slices if evaluate.slices.count(name) > 1})
    if repeated:
        problems.append(
            f"evaluate.slices: column(s) {', '.join(repeated)} listed more than once; list each column once"
        )
    return problems
