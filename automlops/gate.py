"""The gate (TFX's blessing): value checks on the challenger's test metrics and change checks
against the champion scored on the same test rows. Pure: metrics in, a verdict out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from automlops.config.schema import GateConfig
from automlops.errors import ConfigError, unknown_name

PRIMARY = "primary"


@dataclass
class CheckResult:
    metric: str
    kind: str  # min | max | max_worse | max_worse_relative
    value: float  # the challenger's
    threshold: float
    passed: bool
    champion: float | None = None  # change checks: the champion's value on the same rows
    note: str = ""

    def sentence(self) -> str:
        if self.champion is None and self.kind.startswith("max_worse"):
            return f"{self.metric}: no champion yet, change check skipped"
        verdict = "ok" if self.passed else "FAILED"
        if self.kind == "min":
            return f"{self.metric} {self.value:.4g} >= {self.threshold:g}: {verdict}"
        if self.kind == "max":
            return f"{self.metric} {self.value:.4g} <= {self.threshold:g}: {verdict}"
        limit = f"{self.threshold:g}" + (" relative" if self.kind == "max_worse_relative" else "")
        return f"{self.metric} {self.value:.4g} vs champion {self.champion:.4g}, may be worse by {limit}: {verdict}"


def metric_name(requested: str, task: str) -> str:
    from automlops.evaluate import primary_metric

    return primary_metric(task) if requested == PRIMARY else requested


def check_metric_names(cfg: GateConfig, task: str) -> None:
    """Every check must name a metric the evaluation produces for this task."""
    from automlops.evaluate import metric_names

    produced = metric_names(task)
    problems = [unknown_name(f"gate.checks[{i}].metric", check.metric, [PRIMARY, *produced]) + f" (metrics of a {task} task)"
                for i, check in enumerate(cfg.checks) if metric_name(check.metric, task) not in produced]
    if problems:
        raise ConfigError("; ".join(problems))


def run_checks(cfg: GateConfig, task: str, challenger: dict[str, float], champion: dict[str, float] | None) -> list[CheckResult]:
    from automlops.evaluate import HIGHER_IS_BETTER

    results = []
    for check in cfg.checks:
        name = metric_name(check.metric, task)
        value = challenger.get(name)
        if value is None:  # e.g. roc_auc when the test split lacks a class
            raise ConfigError(f"gate: the evaluation produced no {name} on this test split; check gate.checks or the split")
        if check.min is not None:
            results.append(CheckResult(name, "min", value, check.min, value >= check.min))
        if check.max is not None:
            results.append(CheckResult(name, "max", value, check.max, value <= check.max))
        for kind in ("max_worse", "max_worse_relative"):
            limit = getattr(check, kind)
            if limit is None:
                continue
            theirs = None if champion is None else champion.get(name)
            if theirs is None:  # the first model: nothing to compare with
                results.append(CheckResult(name, kind, value, limit, True, None, "no champion"))
                continue
            worse_by = (theirs - value) if HIGHER_IS_BETTER[name] else (value - theirs)
            allowed = limit if kind == "max_worse" else limit * abs(theirs)
            results.append(CheckResult(name, kind, value, limit, worse_by <= allowed + 1e-12, theirs))
    return results


def blessing(checks: list[CheckResult], infra: dict[str, Any] | None, champion_version: int | None,
             champion_scored_on: str | None) -> dict[str, Any]:
    """The record the deploy stage reads and the bundle keeps."""
    passed = all(c.passed for c in checks) and (infra is None or bool(infra.get("passed")))
    return {
        "passed": passed,
        "checks": [{**asdict(c), "summary": c.sentence()} for c in checks],
        "infra": infra,
        "champion": {"version": champion_version, "scored_on": champion_scored_on} if champion_version else None,
    }


def failure_summary(record: dict[str, Any]) -> str:
    failed = [c["summary"] for c in record["checks"] if not c["passed"]]
    infra = record.get("infra")
    if infra and not infra.get("passed"):
        failed.append(f"infra validation: {infra.get('error') or 'failed'}")
    return "; ".join(failed)
