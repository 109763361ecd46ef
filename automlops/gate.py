"""The gate (TFX's blessing): value checks on the challenger's test metrics and change checks
against the champion, both scored on the test rows that neither model trained on. Pure: metrics
and row hashes in, a verdict out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from automlops.config.schema import GateConfig
from automlops.constraints import Constraints, Interval, Options, violations
from automlops.data.row_hashes import seen_in
from automlops.errors import ConfigError, unknown_name
from automlops.evaluate.names import HIGHER_IS_BETTER, metric_names, primary_metric
from automlops.records import Blessing, ChampionRef

PRIMARY = "primary"
INCOMPARABLE_CHOICES = ("fail", "recorded", "skip")  # gate.incomparable
UNSEEN_ROWS, RECORDED, SKIPPED, FAILED = "unseen_rows", "recorded", "skipped", "failed"
CONSTRAINTS: Constraints = {
    "min_rows": Interval(1, None, note="(test rows neither model trained on)"),
    "incomparable": Options(INCOMPARABLE_CHOICES),
    "infra.requests": Interval(1, None),
}
CHECK_CONSTRAINTS: Constraints = {  # each of gate.checks
    "max_worse": [Interval(0, None, note="(how much worse than the champion is allowed)"), None],
    "max_worse_relative": [Interval(0, None, note="(how much worse than the champion is allowed)"), None],
}


def check_gate(gate: GateConfig) -> list[str]:
    """The gate section's checks (gate.*), run by automlops.checks before any work: the task is not known
    yet, so a check's metric may be any task's (check_metric_names narrows it once it is)."""
    problems = []
    known = sorted({PRIMARY, *metric_names("binary"), *metric_names("multiclass"), *metric_names("regression")})
    for i, check in enumerate(gate.checks):
        key = f"gate.checks[{i}]"
        if check.metric not in known:
            problems.append(unknown_name(f"{key}.metric", check.metric, known))
        if all(getattr(check, k) is None for k in ("min", "max", "max_worse", "max_worse_relative")):
            problems.append(f"{key}: checks nothing; give min, max, max_worse or max_worse_relative")
        problems += violations(key, check, CHECK_CONSTRAINTS)
    problems += violations("gate", gate, CONSTRAINTS)
    if gate.infra.p95_ms <= 0 or gate.infra.startup_timeout <= 0:
        problems.append("gate.infra: p95_ms and startup_timeout must be > 0")
    return problems


@dataclass
class Comparison:
    """What the change checks compare: both models' metrics on the same unseen rows, or the decision
    taken when there are none to compare on (gate.incomparable; too few for gate.min_rows)."""

    basis: str  # unseen_rows | recorded | skipped | failed
    challenger: dict[str, float] = field(default_factory=dict)  # the metrics the change checks use
    champion: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # test, used, champion_trained_on, challenger_trained_on
    reason: str = ""  # why the models were not compared on unseen rows

    @property
    def passed(self) -> bool:
        return self.basis != FAILED

    def sentence(self) -> str:
        if self.basis == UNSEEN_ROWS:
            return f"{self.rows['used']} of {self.rows['test']} test rows neither model trained on ({_excluded(self.rows)})"
        if self.basis == RECORDED:
            return f"its recorded test metrics, from another split (gate.incomparable=recorded: {self.reason})"
        if self.basis == SKIPPED:
            return f"not compared (gate.incomparable=skip: {self.reason})"
        return self.reason


def _excluded(rows: dict[str, int]) -> str:
    excluded = rows["test"] - rows["used"]
    if not excluded:
        return "none excluded"
    return (
        f"{excluded} excluded: {rows['champion_trained_on']} the champion trained on, "
        f"{rows['challenger_trained_on']} the challenger trained on"
    )


def unseen_rows(
    champion_form: np.ndarray, champion_trained: np.ndarray, challenger_form: np.ndarray, challenger_trained: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """The test rows neither model trained on (a mask) and the counts. Each model's hashes of the test
    rows are taken in its own input form (its contract), as its training rows were."""
    by_champion = seen_in(champion_form, champion_trained)
    by_challenger = seen_in(challenger_form, challenger_trained)  # duplicate rows can be in train and test
    keep = ~(by_champion | by_challenger)
    return keep, {
        "test": len(keep),
        "used": int(keep.sum()),
        "champion_trained_on": int(by_champion.sum()),
        "challenger_trained_on": int(by_challenger.sum()),
    }


def too_few_rows(rows: dict[str, int], min_rows: int) -> Comparison | None:
    """A failed comparison when fewer than gate.min_rows rows are left to compare on."""
    if rows["used"] >= min_rows:
        return None
    lower = f"accept a noisier comparison with gate.min_rows={rows['used']}, or " if rows["used"] else ""
    return Comparison(
        FAILED,
        rows=rows,
        reason=(
            f"only {rows['used']} of {rows['test']} test rows are unseen by both models ({_excluded(rows)}), fewer than "
            f"gate.min_rows={min_rows}; {lower}keep the champion's split (the same data, run.seed and data.split)"
        ),
    )


def incomparable(policy: str, why: str, challenger: dict[str, float], champion: dict[str, float]) -> Comparison:
    """gate.incomparable's decision when the champion cannot be scored on unseen rows of this split:
    `challenger` and `champion` are the metrics each recorded on its own test split."""
    if policy == RECORDED:
        return Comparison(RECORDED, challenger, champion, reason=why)
    if policy == "skip":
        return Comparison(SKIPPED, reason=why)
    return Comparison(
        FAILED,
        reason=f"{why}; gate.incomparable=fail keeps the champion (set gate.incomparable=recorded to "
        "compare with its recorded metrics from another split, or skip to drop the change checks)",
    )


@dataclass
class CheckResult:
    metric: str
    kind: str  # min | max | max_worse | max_worse_relative
    value: float | None  # the challenger's (change checks: on the compared rows; None: undefined there)
    threshold: float
    passed: bool
    champion: float | None = None  # change checks: the champion's value on the same rows
    note: str = ""

    def sentence(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.champion is None and self.kind.startswith("max_worse"):
            if self.note == "no champion":
                return f"{self.metric}: no champion yet, change check skipped"
            return f"{self.metric}: change check {'skipped' if self.passed else 'FAILED'} ({self.note})"
        if self.kind == "min":
            return f"{self.metric} {self.value:.4g} >= {self.threshold:g}: {verdict}"
        if self.kind == "max":
            return f"{self.metric} {self.value:.4g} <= {self.threshold:g}: {verdict}"
        limit = f"{self.threshold:g}" + (" relative" if self.kind == "max_worse_relative" else "")
        return f"{self.metric} {self.value:.4g} vs champion {self.champion:.4g}, may be worse by {limit}: {verdict}"


def metric_name(requested: str, task: str) -> str:
    return primary_metric(task) if requested == PRIMARY else requested


def check_metric_names(cfg: GateConfig, task: str) -> None:
    """Every check must name a metric the evaluation produces for this task."""
    produced = metric_names(task)
    problems = [
        unknown_name(f"gate.checks[{i}].metric", check.metric, [PRIMARY, *produced]) + f" (metrics of a {task} task)"
        for i, check in enumerate(cfg.checks)
        if metric_name(check.metric, task) not in produced
    ]
    if problems:
        raise ConfigError("; ".join(problems))


def has_change_checks(cfg: GateConfig) -> bool:
    """Whether the champion needs scoring at all."""
    return any(check.max_worse is not None or check.max_worse_relative is not None for check in cfg.checks)


def run_checks(
    cfg: GateConfig, task: str, challenger: dict[str, float], comparison: Comparison | None
) -> list[CheckResult]:
    """Value checks on the challenger's recorded test metrics; change checks on `comparison` (None: no
    champion yet)."""
    results = []
    for check in cfg.checks:
        name = metric_name(check.metric, task)
        value = challenger.get(name)
        if value is None:  # e.g. roc_auc when the test split lacks a class
            raise ConfigError(
                f"gate: the evaluation produced no {name} on this test split; check gate.checks or the split"
            )
        if check.min is not None:
            results.append(CheckResult(name, "min", value, check.min, value >= check.min))
        if check.max is not None:
            results.append(CheckResult(name, "max", value, check.max, value <= check.max))
        for kind in ("max_worse", "max_worse_relative"):
            limit = getattr(check, kind)
            if limit is not None:
                results.append(_change_check(name, kind, limit, value, comparison))
    return results


def _change_check(name: str, kind: str, limit: float, recorded: float, comparison: Comparison | None) -> CheckResult:
    """`recorded`: the challenger's value on its whole test split, shown when there is nothing to compare."""
    if comparison is None:  # the first model: nothing to compare with
        return CheckResult(name, kind, recorded, limit, True, None, "no champion")
    if comparison.basis in (SKIPPED, FAILED):
        return CheckResult(
            name, kind, recorded, limit, comparison.passed, None, f"not compared with the champion: {comparison.basis}"
        )
    value, theirs = comparison.challenger.get(name), comparison.champion.get(name)
    if value is None or theirs is None:  # e.g. roc_auc on unseen rows of one class only
        where = "the rows neither model trained on" if comparison.basis == UNSEEN_ROWS else "the recorded metrics"
        return CheckResult(name, kind, value, limit, False, None, f"{name} is undefined on {where}")
    worse_by = (theirs - value) if HIGHER_IS_BETTER[name] else (value - theirs)
    allowed = limit if kind == "max_worse" else limit * abs(theirs)
    return CheckResult(name, kind, value, limit, worse_by <= allowed + 1e-12, theirs)


def blessing(
    checks: list[CheckResult], infra: dict[str, Any] | None, champion_version: int | None, comparison: Comparison | None
) -> Blessing:
    """The record the deploy stage reads and the bundle keeps."""
    passed = all(c.passed for c in checks) and (infra is None or bool(infra.get("passed")))
    passed = passed and (comparison is None or comparison.passed)
    return Blessing(
        passed=passed,
        checks=[{**asdict(c), "summary": c.sentence()} for c in checks],
        infra=infra,
        champion=ChampionRef(
            version=champion_version,
            scored_on=comparison.sentence() if comparison else "not scored (gate.checks has no change check)",
        )
        if champion_version
        else None,
        comparison={**asdict(comparison), "passed": comparison.passed, "summary": comparison.sentence()}
        if comparison
        else None,
    )


def failure_summary(record: Blessing) -> str:
    comparison = record.comparison or {}
    failed = [comparison["summary"]] if comparison and not comparison["passed"] else []
    failed += [c["summary"] for c in record.checks if not c["passed"] and not c["note"].startswith("not compared")]
    infra = record.infra
    if infra and not infra.get("passed"):
        failed.append(f"infra validation: {infra.get('error') or 'failed'}")
    return "; ".join(failed)
