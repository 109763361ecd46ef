"""The gate's checks (pure: metrics in, verdict out) and its config errors, which must come before
any work is done."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli

from automlops.config.schema import GateCheck, GateConfig
from automlops.errors import ConfigError
from automlops.gate import blessing, check_metric_names, failure_summary, run_checks


def gate(*checks: GateCheck) -> GateConfig:
    return GateConfig(checks=list(checks))


def test_value_thresholds_bound_the_challenger_from_both_sides() -> None:
    cfg = gate(GateCheck("roc_auc", min=0.9), GateCheck("log_loss", max=0.3))
    results = run_checks(cfg, "binary", {"roc_auc": 0.95, "log_loss": 0.35}, None)
    assert [(r.metric, r.kind, r.passed) for r in results] == [("roc_auc", "min", True), ("log_loss", "max", False)]
    assert "log_loss 0.35 <= 0.3: FAILED" == results[1].sentence()


def test_change_checks_know_which_direction_is_better() -> None:
    no_worse = GateCheck("primary", max_worse=0.0)
    # regression's primary metric is rmse: lower is better
    assert run_checks(gate(no_worse), "regression", {"rmse": 10.0}, {"rmse": 10.5})[0].passed
    assert not run_checks(gate(no_worse), "regression", {"rmse": 10.6}, {"rmse": 10.5})[0].passed
    # binary's is roc_auc: higher is better
    assert run_checks(gate(no_worse), "binary", {"roc_auc": 0.91}, {"roc_auc": 0.90})[0].passed
    assert not run_checks(gate(no_worse), "binary", {"roc_auc": 0.89}, {"roc_auc": 0.90})[0].passed
    # equal is not worse
    assert run_checks(gate(no_worse), "multiclass", {"log_loss": 0.2}, {"log_loss": 0.2})[0].passed


def test_absolute_and_relative_allowances() -> None:
    absolute = gate(GateCheck("rmse", max_worse=1.0))
    assert run_checks(absolute, "regression", {"rmse": 50.9}, {"rmse": 50.0})[0].passed
    assert not run_checks(absolute, "regression", {"rmse": 51.1}, {"rmse": 50.0})[0].passed
    relative = gate(GateCheck("r2", max_worse_relative=0.05))  # 5 % of the champion's 0.8 = 0.04
    assert run_checks(relative, "regression", {"r2": 0.765}, {"r2": 0.8})[0].passed
    assert not run_checks(relative, "regression", {"r2": 0.755}, {"r2": 0.8})[0].passed


def test_without_a_champion_change_checks_pass_and_say_why() -> None:
    result = run_checks(gate(GateCheck("primary", min=0.5, max_worse=0.0)), "binary", {"roc_auc": 0.7}, None)
    assert [(r.kind, r.passed) for r in result] == [("min", True), ("max_worse", True)]
    assert result[1].sentence() == "roc_auc: no champion yet, change check skipped"


def test_the_blessing_fails_on_any_check_or_on_infra() -> None:
    checks = run_checks(gate(GateCheck("roc_auc", min=0.9)), "binary", {"roc_auc": 0.95}, None)
    assert blessing(checks, {"passed": True}, None, None)["passed"]
    record = blessing(checks, {"passed": False, "error": "p95 latency 900 ms is above gate.infra.p95_ms=500"}, 3, "same test rows")
    assert not record["passed"] and record["champion"] == {"version": 3, "scored_on": "same test rows"}
    assert failure_summary(record) == "infra validation: p95 latency 900 ms is above gate.infra.p95_ms=500"


def test_a_metric_the_task_does_not_produce_is_named_with_the_ones_it_does() -> None:
    with pytest.raises(ConfigError, match=r"gate\.checks\[1\]\.metric: unknown value 'roc_auc'.*rmse.*\(metrics of a regression task\)"):
        check_metric_names(gate(GateCheck("primary", max_worse=0), GateCheck("roc_auc", min=0.5)), "regression")


@pytest.mark.parametrize(("override", "named"), [
    ("gate.checks=[{metric:roc_acu,min:0.5}]", "gate.checks[0].metric: unknown value 'roc_acu' (did you mean 'roc_auc'?)"),
    ("gate.checks=[{metric:roc_auc,min:high}]", "gate.checks"),
    ("gate.checks=[{metric:roc_auc}]", "gate.checks[0]: checks nothing; give min, max, max_worse or max_worse_relative"),
    ("gate.checks=[{metric:rmse,max_worse:-1}]", "gate.checks[0].max_worse: must be >= 0"),
    ("gate.infra.requests=0", "gate.infra.requests: must be >= 1"),
    ("deploy.targets=[bundle,dokcer]", "deploy.targets: unknown value 'dokcer' (did you mean 'docker'?)"),
    ("deploy.alias=v2", "deploy.alias: 'v2' must be a name"),
])
def test_bad_gate_and_deploy_config_stops_before_any_work(project: Path, override: str, named: str) -> None:
    result = cli("run", override, cwd=project)
    assert result.returncode == 2, result.stderr[-2000:]
    assert named in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (project / "data" / "prepared").exists()


@pytest.mark.slow
def test_a_gate_metric_of_another_task_stops_the_run_before_the_search(project: Path) -> None:
    result = cli("run", "data=diabetes", "gate.checks=[{metric:roc_auc,min:0.5}]", cwd=project)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "gate.checks[0].metric: unknown value 'roc_auc'" in result.stderr and "regression task" in result.stderr
    assert (project / "data" / "prepared").is_dir() and not (project / "artifacts" / "search").exists()
