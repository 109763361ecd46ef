"""The gate's checks (pure: metrics and row hashes in, verdict out) and its config errors, which must
come before any work is done. The gate end to end, over real runs: tests/test_gate_e2e.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli

from automlops.config.schema import GateCheck, GateConfig
from automlops.data.contract import infer_contract
from automlops.data.row_hashes import hash_set, row_hashes
from automlops.errors import ConfigError
from automlops.gate import (
    UNSEEN_ROWS,
    Comparison,
    blessing,
    check_metric_names,
    failure_summary,
    has_change_checks,
    incomparable,
    run_checks,
    too_few_rows,
    unseen_rows,
)
from automlops.records import ChampionRef


def gate(*checks: GateCheck) -> GateConfig:
    return GateConfig(checks=list(checks))


def versus(champion: dict[str, float], challenger: dict[str, float] | None = None) -> Comparison:
    """Both models scored on the same unseen rows (the challenger's own values unless given)."""
    return Comparison(
        UNSEEN_ROWS,
        challenger or {},
        champion,
        {"test": 50, "used": 40, "champion_trained_on": 10, "challenger_trained_on": 0},
    )


def checks_vs(cfg: GateConfig, task: str, challenger: dict[str, float], champion: dict[str, float]) -> list:
    return run_checks(cfg, task, challenger, versus(champion, challenger))


def test_value_thresholds_bound_the_challenger_from_both_sides() -> None:
    cfg = gate(GateCheck("roc_auc", min=0.9), GateCheck("log_loss", max=0.3))
    results = run_checks(cfg, "binary", {"roc_auc": 0.95, "log_loss": 0.35}, None)
    assert [(r.metric, r.kind, r.passed) for r in results] == [("roc_auc", "min", True), ("log_loss", "max", False)]
    assert "log_loss 0.35 <= 0.3: FAILED" == results[1].sentence()


def test_change_checks_know_which_direction_is_better() -> None:
    no_worse = GateCheck("primary", max_worse=0.0)
    # regression's primary metric is rmse: lower is better
    assert checks_vs(gate(no_worse), "regression", {"rmse": 10.0}, {"rmse": 10.5})[0].passed
    assert not checks_vs(gate(no_worse), "regression", {"rmse": 10.6}, {"rmse": 10.5})[0].passed
    # binary's is roc_auc: higher is better
    assert checks_vs(gate(no_worse), "binary", {"roc_auc": 0.91}, {"roc_auc": 0.90})[0].passed
    assert not checks_vs(gate(no_worse), "binary", {"roc_auc": 0.89}, {"roc_auc": 0.90})[0].passed
    # equal is not worse
    assert checks_vs(gate(no_worse), "multiclass", {"log_loss": 0.2}, {"log_loss": 0.2})[0].passed


def test_absolute_and_relative_allowances() -> None:
    absolute = gate(GateCheck("rmse", max_worse=1.0))
    assert checks_vs(absolute, "regression", {"rmse": 50.9}, {"rmse": 50.0})[0].passed
    assert not checks_vs(absolute, "regression", {"rmse": 51.1}, {"rmse": 50.0})[0].passed
    relative = gate(GateCheck("r2", max_worse_relative=0.05))  # 5 % of the champion's 0.8 = 0.04
    assert checks_vs(relative, "regression", {"r2": 0.765}, {"r2": 0.8})[0].passed
    assert not checks_vs(relative, "regression", {"r2": 0.755}, {"r2": 0.8})[0].passed


def test_without_a_champion_change_checks_pass_and_say_why() -> None:
    result = run_checks(gate(GateCheck("primary", min=0.5, max_worse=0.0)), "binary", {"roc_auc": 0.7}, None)
    assert [(r.kind, r.passed) for r in result] == [("min", True), ("max_worse", True)]
    assert result[1].sentence() == "roc_auc: no champion yet, change check skipped"


def test_the_blessing_fails_on_any_check_or_on_infra() -> None:
    checks = run_checks(gate(GateCheck("roc_auc", min=0.9)), "binary", {"roc_auc": 0.95}, None)
    assert blessing(checks, {"passed": True}, None, None).passed
    record = blessing(
        checks, {"passed": False, "error": "p95 latency 900 ms is above gate.infra.p95_ms=500"}, 3, versus({})
    )
    scored_on = "40 of 50 test rows neither model trained on (10 excluded: 10 the champion trained on, 0 the challenger trained on)"
    assert not record.passed and record.champion == ChampionRef(3, scored_on)
    assert failure_summary(record) == "infra validation: p95 latency 900 ms is above gate.infra.p95_ms=500"
    # no change check configured: the champion is not scored, and the record says so
    assert not has_change_checks(gate(GateCheck("roc_auc", min=0.9))) and has_change_checks(
        gate(GateCheck("rmse", max_worse_relative=0))
    )
    assert blessing(checks, None, 3, None).to_dict()["champion"] == {
        "version": 3,
        "scored_on": "not scored (gate.checks has no change check)",
    }


def test_a_row_hashes_the_same_whatever_form_it_arrives_in() -> None:
    """The canonical model-input form: an integer that is a float elsewhere, None or NaN for a missing
    category, a label as text or as a category; another value or target is another row."""
    training = pd.DataFrame({"size": [1.0, 2.5, 3.0], "colour": ["red", None, "blue"]})
    contract = infer_contract(training)
    hashes = row_hashes(training, pd.Series(["yes", "no", "yes"]), contract)
    again = pd.DataFrame({"colour": ["red", np.nan, "blue"], "size": [1, 2.5, 3], "unused": [7, 8, 9]})
    assert list(row_hashes(again, pd.Series(["yes", "no", "yes"], dtype="category"), contract)) == list(hashes)
    other = pd.DataFrame({"size": [1.0, 2.5, 3.5], "colour": ["red", None, "blue"]})
    assert list(row_hashes(other, pd.Series(["yes", "yes", "yes"]), contract) == hashes) == [True, False, False]
    assert list(hash_set(np.concatenate([hashes, hashes[:1]]))) == sorted(
        hashes
    )  # distinct and sorted, as a bundle keeps them


def test_the_compared_rows_are_those_neither_model_trained_on() -> None:
    test = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    y = pd.Series([0, 1, 0, 1, 0])
    contract = infer_contract(test)
    hashes = row_hashes(test, y, contract)
    champion_trained = hash_set(
        row_hashes(test.iloc[[0, 2]], y.iloc[[0, 2]], contract)
    )  # a new split: two test rows were its training rows
    challenger_trained = hash_set(
        row_hashes(test.iloc[[2, 3]], y.iloc[[2, 3]], contract)
    )  # duplicates of its training rows
    keep, rows = unseen_rows(hashes, champion_trained, hashes, challenger_trained)
    assert list(keep) == [False, True, False, False, True]
    assert rows == {"test": 5, "used": 2, "champion_trained_on": 2, "challenger_trained_on": 2}
    # the same x with another label is another row
    relabelled = row_hashes(test, 1 - y, contract)
    assert unseen_rows(relabelled, champion_trained, relabelled, challenger_trained)[1]["used"] == 5


def test_change_checks_compare_the_metrics_on_the_unseen_rows_not_the_recorded_ones() -> None:
    cfg = gate(GateCheck("roc_auc", min=0.9, max_worse=0.0))
    recorded = {"roc_auc": 0.9974}  # the challenger's whole test split
    honest = Comparison(
        UNSEEN_ROWS,
        {"roc_auc": 0.99},
        {"roc_auc": 0.98},
        {"test": 114, "used": 40, "champion_trained_on": 74, "challenger_trained_on": 0},
    )
    value, change = run_checks(cfg, "binary", recorded, honest)
    assert (value.value, value.passed) == (0.9974, True)
    assert (change.value, change.champion, change.passed) == (0.99, 0.98, True)
    one_class = Comparison(
        UNSEEN_ROWS, {"accuracy": 1.0}, {"accuracy": 1.0}, honest.rows
    )  # roc_auc undefined on these rows
    undefined = run_checks(cfg, "binary", recorded, one_class)[1]
    assert not undefined.passed and "roc_auc is undefined on the rows neither model trained on" in undefined.sentence()


def test_too_few_unseen_rows_fail_naming_the_count_and_the_override() -> None:
    rows = {"test": 114, "used": 20, "champion_trained_on": 94, "challenger_trained_on": 0}
    assert too_few_rows(rows, 20) is None
    none_left = too_few_rows({**rows, "used": 0, "champion_trained_on": 114}, 30)
    assert (
        none_left is not None and "gate.min_rows=30; keep the champion's split" in none_left.reason
    )  # no override helps
    failed = too_few_rows(rows, 30)
    assert failed is not None and not failed.passed
    record = blessing(
        run_checks(gate(GateCheck("primary", max_worse=0.0)), "binary", {"roc_auc": 0.99}, failed), None, 1, failed
    )
    assert not record.passed and record.comparison is not None and record.comparison["rows"] == rows
    assert failure_summary(record) == (
        "only 20 of 114 test rows are unseen by both models (94 excluded: 94 the champion trained on, 0 the challenger "
        "trained on), fewer than gate.min_rows=30; accept a noisier comparison with gate.min_rows=20, or keep the "
        "champion's split (the same data, run.seed and data.split)"
    )


@pytest.mark.parametrize(
    ("policy", "passed", "champion_value"), [("fail", False, None), ("recorded", True, 0.95), ("skip", True, None)]
)
def test_an_incomparable_champion_is_decided_by_gate_incomparable(
    policy: str, passed: bool, champion_value: float | None
) -> None:
    comparison = incomparable(
        policy, "it cannot score this test split (input: missing column(s): age)", {"roc_auc": 0.96}, {"roc_auc": 0.95}
    )
    check = run_checks(gate(GateCheck("primary", max_worse=0.0)), "binary", {"roc_auc": 0.96}, comparison)[0]
    record = blessing([check], None, 4, comparison)
    assert (record.passed, check.passed, check.champion) == (passed, passed, champion_value)
    assert record.champion is not None and "missing column(s): age" in str(record.champion.scored_on)
    if policy == "fail":
        assert failure_summary(record) == (
            "it cannot score this test split (input: missing column(s): age); gate.incomparable=fail keeps the champion "
            "(set gate.incomparable=recorded to compare with its recorded metrics from another split, or skip to drop the "
            "change checks)"
        )
    elif policy == "recorded":
        assert record.comparison is not None and record.comparison["basis"] == "recorded"
        assert record.champion is not None and "from another split" in str(record.champion.scored_on)
    else:
        assert "change check skipped (not compared with the champion: skipped)" in check.sentence()


def test_a_metric_the_task_does_not_produce_is_named_with_the_ones_it_does() -> None:
    with pytest.raises(
        ConfigError, match=r"gate\.checks\[1\]\.metric: unknown value 'roc_auc'.*rmse.*\(metrics of a regression task\)"
    ):
        check_metric_names(gate(GateCheck("primary", max_worse=0), GateCheck("roc_auc", min=0.5)), "regression")


def test_bad_min_rows_and_incomparable_are_named_together() -> None:
    from automlops.checks import to_typed
    from automlops.config.compose import compose

    with pytest.raises(
        ConfigError,
        match=r"gate\.min_rows: must be >= 1 .*got 0; gate\.incomparable: unknown value 'recorde' "
        r"\(did you mean 'recorded'\?\); choose one of: fail, recorded, skip",
    ):
        to_typed(compose(["gate.min_rows=0", "gate.incomparable=recorde"]))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            "gate.checks=[{metric:roc_acu,min:0.5}]",
            "gate.checks[0].metric: unknown value 'roc_acu' (did you mean 'roc_auc'?)",
        ),
        ("gate.checks=[{metric:roc_auc,min:high}]", "gate.checks"),
        (
            "gate.checks=[{metric:roc_auc}]",
            "gate.checks[0]: checks nothing; give min, max, max_worse or max_worse_relative",
        ),
        ("gate.checks=[{metric:rmse,max_worse:-1}]", "gate.checks[0].max_worse: must be >= 0"),
        ("gate.infra.requests=0", "gate.infra.requests: must be >= 1"),
        ("deploy.targets=[bundle,dokcer]", "deploy.targets: unknown value 'dokcer' (did you mean 'docker'?)"),
        ("deploy.alias=v2", "deploy.alias: 'v2' must be a name"),
    ],
)
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
