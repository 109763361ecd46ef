"""The gate over real runs, as a user re-running with a new seed meets it: a champion trained on one
split, then a challenger on another split of the same data (run.seed=5), whose test rows are partly
the champion's training rows. The champion must never be scored on those."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import champion, cli

from automlops.bundle import load_bundle
from automlops.data.contract import enforce_contract
from automlops.deploy.package import seal
from automlops.evaluate.metrics import test_metrics
from automlops.records import Manifest

pytestmark = pytest.mark.slow

# half the rows are test rows, so that a new split leaves ~100 rows neither model trained on (more than
# gate.min_rows); the log_loss check never blocks, it shows which rows the champion was scored on
SETTINGS = (
    "search.n_trials=2",
    "gate.infra.enabled=false",
    "data.split.test_size=0.5",
    "gate.checks=[{metric:primary,max_worse:0.0},{metric:log_loss,max_worse:1.0}]",
)
SECOND = ("run.seed=5", *SETTINGS)
RUN2_BLESSING = "run2_blessing.json"
RUN2_STDERR = "run2_stderr.txt"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 on the default split; then the same data split with run.seed=5, gated against v1. Keeps
    v1's prepared splits (what it trained on) and the second run's blessing and log."""
    from conftest import new_project

    project = new_project(tmp_path_factory.mktemp("gate") / "project")
    first = cli("run", *SETTINGS, cwd=project)
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copytree(project / "data" / "prepared", project / "champion_prepared")
    second = cli("run", *SECOND, cwd=project)
    assert second.returncode in (0, 1), second.stderr[-3000:]  # 1: the challenger was refused, fairly or not
    shutil.copy(project / "metrics" / "blessing.json", project / RUN2_BLESSING)
    (project / RUN2_STDERR).write_text(second.stderr)
    if second.returncode == 0:  # the challenger was blessed: v1 stays the champion the tests below gate against
        assert cli("models", "rollback", "breast_cancer", cwd=project).returncode == 0
    assert champion(project, "breast_cancer").name == "1"
    return project


def split(folder: Path, *names: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(folder / f"{name}.parquet") for name in names], ignore_index=True)


def seen(rows: pd.DataFrame, among: pd.DataFrame) -> pd.Series:
    """Which of `rows` are also in `among`, every column equal: found without the gate's row hashes."""
    marked = rows.merge(among.drop_duplicates().assign(_seen=True), how="left", on=list(rows.columns))
    return marked["_seen"].notna()


def gate_stage(project: Path, *overrides: str) -> tuple[int, str, dict]:
    composed = cli("compose", *overrides, cwd=project)
    assert composed.returncode == 0, composed.stderr[-2000:]
    gated = cli("stage", "gate", cwd=project)
    return gated.returncode, gated.stderr, json.loads((project / "metrics" / "blessing.json").read_text())


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_the_champion_is_scored_only_on_rows_neither_model_trained_on(two_runs: Path) -> None:
    test = split(two_runs / "data" / "prepared", "test")
    champion_rows = split(two_runs / "champion_prepared", "train", "valid")  # search.refit: the winner fits train+valid
    by_champion = seen(test, champion_rows)
    by_challenger = seen(test, split(two_runs / "data" / "prepared", "train", "valid"))
    clean = ~(by_champion | by_challenger)
    assert by_champion.sum() > 50 and clean.sum() >= 30, (by_champion.sum(), clean.sum())  # the finding's situation

    record = json.loads((two_runs / RUN2_BLESSING).read_text())
    meta = json.loads((two_runs / "data" / "prepared" / "meta.json").read_text())
    features, target = meta["features"], meta["target"]
    v1, candidate = load_bundle(champion(two_runs, "breast_cancer")), load_bundle(two_runs / "artifacts" / "bundle")

    def on_clean_rows(bundle: object) -> dict[str, float]:
        x = enforce_contract(test.loc[clean, features], bundle.contract)  # type: ignore[attr-defined]
        return test_metrics(bundle.model, x, test.loc[clean, target], "binary", bundle.manifest.decision_threshold)  # type: ignore[attr-defined]

    champion_scores, challenger_scores = on_clean_rows(v1), on_clean_rows(candidate)
    checks = {check["metric"]: check for check in record["checks"] if check["kind"] == "max_worse"}
    for metric in ("roc_auc", "log_loss"):  # both models judged on the same clean rows, the challenger too
        assert checks[metric]["champion"] == champion_scores[metric], (metric, checks[metric], champion_scores)
        assert checks[metric]["value"] == challenger_scores[metric], (metric, checks[metric], challenger_scores)
    rows = {
        "test": len(test),
        "used": int(clean.sum()),
        "champion_trained_on": int(by_champion.sum()),
        "challenger_trained_on": int(by_challenger.sum()),
    }
    assert record["comparison"]["basis"] == "unseen_rows" and record["comparison"]["rows"] == rows
    assert record["champion"]["scored_on"].startswith(
        f"{rows['used']} of {rows['test']} test rows neither model trained on"
    )
    log = (two_runs / RUN2_STDERR).read_text()
    assert f"gate: champion v1 comparison (unseen_rows): {rows['used']} of {rows['test']} test rows" in log, log[-3000:]

    # the champion's record of its training rows is what it trained on, and none of the rows used is among them
    from automlops.data.row_hashes import hash_set, row_hashes  # here: the assertions above run on any automlops

    recorded = v1.training_rows
    assert (
        recorded is not None
        and v1.manifest.training_rows is not None
        and v1.manifest.training_rows.rows == len(champion_rows)
    )
    assert v1.manifest.training_rows.splits == ["train", "valid"] and "training_rows.npy" in v1.manifest.files
    assert list(recorded) == list(hash_set(row_hashes(champion_rows, champion_rows[target], v1.contract)))
    used = row_hashes(test.loc[clean], test.loc[clean, target], v1.contract)
    assert not set(used) & set(recorded)


def test_too_few_unseen_rows_fail_in_one_line_and_gate_min_rows_lowers_the_bar(two_runs: Path) -> None:
    used = json.loads((two_runs / RUN2_BLESSING).read_text())["comparison"]["rows"]["used"]
    code, stderr, record = gate_stage(two_runs, *SECOND, f"gate.min_rows={used + 1}")
    line = error_line(stderr)
    assert code == 1 and not record["passed"] and record["comparison"]["basis"] == "failed"
    for part in (
        f"only {used} of ",
        f"fewer than gate.min_rows={used + 1}",
        f"gate.min_rows={used},",
        "champion v1 stays",
    ):
        assert part in line, line
    code, stderr, record = gate_stage(two_runs, *SECOND, f"gate.min_rows={used}")
    assert record["comparison"]["basis"] == "unseen_rows" and record["comparison"]["rows"]["used"] == used, stderr[
        -2000:
    ]


def test_a_champion_that_cannot_score_the_split_fails_the_gate_unless_gate_incomparable_says_otherwise(
    two_runs: Path, tmp_path: Path
) -> None:
    project = tmp_path / "p"
    shutil.copytree(two_runs, project, symlinks=True)
    narrower = (*SECOND, "data.features.exclude=['mean radius']")  # the champion needs this column
    run = cli("run", *narrower, cwd=project)
    line = error_line(run.stderr)
    assert run.returncode == 1, run.stderr[-3000:]
    for part in (
        "it cannot score this test split",
        "mean radius",
        "gate.incomparable=fail keeps the champion",
        "gate.incomparable=recorded",
        "skip",
        "champion v1 stays",
    ):
        assert part in line, line
    assert "gate: champion v1 comparison (failed)" in run.stderr

    code, stderr, record = gate_stage(project, *narrower, "gate.incomparable=recorded")
    theirs = load_bundle(champion(project, "breast_cancer")).manifest.metrics.test
    mine = json.loads((project / "artifacts" / "bundle" / "manifest.json").read_text())["metrics"]["test"]
    check = next(c for c in record["checks"] if c["metric"] == "roc_auc" and c["kind"] == "max_worse")
    assert record["comparison"]["basis"] == "recorded" and (check["champion"], check["value"]) == (
        theirs["roc_auc"],
        mine["roc_auc"],
    )
    assert code == (0 if check["passed"] else 1) and "comparison (recorded)" in stderr

    code, stderr, record = gate_stage(project, *narrower, "gate.incomparable=skip")
    assert code == 0 and record["passed"] and record["comparison"]["basis"] == "skipped", stderr[-2000:]
    assert all(c["passed"] and c["champion"] is None for c in record["checks"] if c["kind"] == "max_worse")
    deployed = cli("stage", "deploy", cwd=project)
    assert deployed.returncode == 0, deployed.stderr[-2000:]
    card = (champion(project, "breast_cancer") / "model_card.md").read_text()
    assert "- **Compared on:** not compared (gate.incomparable=skip: it cannot score this test split" in card, card
    assert "- **Training rows:** 284 rows of train+valid, their hashes in training_rows.npy" in card, card


def test_a_champion_packaged_before_training_rows_were_recorded_is_incomparable(two_runs: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(two_runs, project, symlinks=True)
    current = champion(project, "breast_cancer")
    manifest = json.loads((current / "manifest.json").read_text())
    (current / manifest.pop("training_rows")["file"]).unlink()
    seal(current, Manifest.from_dict(manifest))  # as an older automlops sealed it
    code, stderr, record = gate_stage(project, *SECOND)
    line = error_line(stderr)
    assert code == 1 and record["comparison"]["basis"] == "failed"
    assert "its bundle does not record which rows it trained on" in line and "gate.incomparable=fail" in line, line
