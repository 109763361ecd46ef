"""The DVC pipeline in a real git+DVC project: `dvc repro` reruns exactly the stages a change touches,
refuses a stale params.yaml, `dvc exp run -S` composes through Hydra, and `dvc repro` reproduces
`automlops run` exactly."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import champion, cli, dvc, new_project, snapshot
from sklearn.datasets import load_breast_cancer

from automlops.stages import STAGE_NAMES

pytestmark = pytest.mark.slow

ALL_STAGES = list(STAGE_NAMES)
NO_CHANGE_CHECK = "gate.checks=[]"  # these tests are about what reruns; the gate has its own tests


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def stages_run(result: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"^Running stage '([^']+)'", result.stdout + "\n" + result.stderr, flags=re.M)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.timeout(1200)  # five dvc repro cycles of the whole pipeline: minutes on a loaded 2-core machine
def test_repro_reruns_exactly_the_stages_a_change_touches(project: Path) -> None:
    ok(cli("compose", "search.n_trials=2", NO_CHANGE_CHECK, cwd=project))
    first = ok(dvc("repro", cwd=project))
    assert stages_run(first) == ALL_STAGES
    assert read_json(project / "metrics" / "search.json")["trials"] == 2
    assert len(read_json(champion(project, "breast_cancer") / "input_example.json")) == 5

    again = ok(dvc("repro", cwd=project))
    assert stages_run(again) == [], again.stdout

    # a packaging change repackages the same model, which is gated and published as v2
    model_before = (project / "artifacts" / "search" / "model" / "model.joblib").read_bytes()
    ok(cli("compose", "search.n_trials=2", "deploy.example_rows=2", NO_CHANGE_CHECK, cwd=project))
    package_only = ok(dvc("repro", cwd=project))
    assert stages_run(package_only) == ["package", "gate", "deploy", "monitor"]
    assert champion(project, "breast_cancer").name == "2"
    assert len(read_json(champion(project, "breast_cancer") / "input_example.json")) == 2
    assert (project / "artifacts" / "search" / "model" / "model.joblib").read_bytes() == model_before

    # the candidate's manifest records the whole deploy section: a model card edit repackages (it was stale
    # before); a publishing change (deploy.alias) repackages the same model and publishes it again; nothing
    # further upstream reruns (one repro for both keeps the test within its time limit on a loaded machine)
    ok(
        cli(
            "compose",
            "search.n_trials=2",
            "deploy.example_rows=2",
            "deploy.card.intended_use=triage",
            "deploy.alias=production",
            NO_CHANGE_CHECK,
            cwd=project,
        )
    )
    deploy_only = ok(dvc("repro", cwd=project))
    assert stages_run(deploy_only) == ["package", "gate", "deploy", "monitor"]  # the gate compares with deploy.alias's
    assert (
        read_json(project / "artifacts" / "bundle" / "manifest.json")["config"]["deploy"]["card"]["intended_use"]
        == "triage"
    )
    assert read_json(project / "models" / "breast_cancer" / "aliases.json")["aliases"] == {
        "champion": 2,
        "production": 3,
    }

    ok(cli("compose", "search.n_trials=3", "deploy.example_rows=2", NO_CHANGE_CHECK, cwd=project))
    search_change = ok(dvc("repro", cwd=project))
    assert stages_run(search_change) == ["search", "evaluate", "package", "gate", "deploy", "monitor"]
    assert read_json(project / "metrics" / "search.json")["trials"] == 3
    assert read_json(project / "artifacts" / "bundle" / "manifest.json")["lineage"]["search"]["trials_finished"] == 3
    # a new version only for a new model: the same winner, packaged the same way, adds none (whether the third
    # trial wins depends on the sampler's draws, which the warm-start portfolio changed)
    if (project / "artifacts" / "search" / "model" / "model.joblib").read_bytes() == model_before:
        assert read_json(project / "metrics" / "deploy.json").get("unchanged")
        assert champion(project, "breast_cancer").name == "2"
    else:
        assert not read_json(project / "metrics" / "deploy.json").get("unchanged")
        assert champion(project, "breast_cancer").name == "4"  # v3 holds the production alias

    # conf/ edited but params.yaml not recomposed: stop before any work, saying how to fix it
    optuna_yaml = project / "conf" / "search" / "optuna.yaml"
    text = optuna_yaml.read_text()
    assert "n_trials: 20" in text
    optuna_yaml.write_text(text.replace("n_trials: 20", "n_trials: 30"))
    registry_before = snapshot(project, ("models",))
    stale = dvc("repro", cwd=project)
    assert stale.returncode != 0
    assert "automlops compose" in stale.stdout + stale.stderr
    assert stages_run(stale) == ["check_conf"]
    assert snapshot(project, ("models",)) == registry_before

    # recomposed with the same overrides: the composed params did not change, so nothing retrains
    ok(cli("compose", "search.n_trials=3", "deploy.example_rows=2", NO_CHANGE_CHECK, cwd=project))
    recomposed = ok(dvc("repro", cwd=project))
    assert stages_run(recomposed) == ["check_conf"]
    assert snapshot(project, ("models",)) == registry_before

    # a batch lands in data/incoming: only the monitor reruns; drift fails it, after writing its report
    assert read_json(project / "metrics" / "monitor" / "monitor.json")["batch"]["rows"] == 0  # nothing had arrived
    rows = load_breast_cancer(as_frame=True).data.sample(200, random_state=0)
    (rows * 1.5).to_csv(project / "data" / "incoming" / "2026-11-28.csv", index=False)  # every measurement 50 % larger
    drifted = dvc("repro", cwd=project)
    assert drifted.returncode != 0 and stages_run(drifted) == ["monitor"]
    assert "monitor: drift: dataset drifted (30 of 30 input columns drifted" in drifted.stdout + drifted.stderr
    report = read_json(project / "metrics" / "monitor" / "monitor.json")
    assert report["dataset_drift"]["drifted"] and len(report["dataset_drift"]["drifted_columns"]) == 30
    assert (project / "metrics" / "monitor" / "monitor.html").is_file()
    assert snapshot(project, ("models",)) == registry_before
    ok(
        cli(
            "compose",
            "search.n_trials=3",
            "deploy.example_rows=2",
            NO_CHANGE_CHECK,
            "monitor.fail_on_drift=false",
            cwd=project,
        )
    )
    assert stages_run(ok(dvc("repro", cwd=project))) == ["monitor"]  # a monitor setting reruns the monitor alone

    # after a manual promote or rollback, the README's command re-checks the candidate and retrains nothing
    ok(cli("models", "rollback", "breast_cancer", cwd=project))
    assert stages_run(ok(dvc("repro", "-f", "-s", "gate", cwd=project))) == ["gate"]


def test_exp_run_composes_hydra_overrides(project: Path) -> None:
    ok(dvc("exp", "run", "-S", "+experiment=diabetes", "-S", "search.n_trials=2", cwd=project))
    params = (project / "params.yaml").read_text()
    assert re.search(r"^run:\n  name: diabetes$", params, flags=re.M)
    manifest = read_json(champion(project, "diabetes") / "manifest.json")
    assert manifest["task"] == "regression"
    assert manifest["lineage"]["search"]["trials_finished"] == 2

    shown = ok(dvc("metrics", "show", cwd=project))
    assert "rmse" in shown.stdout
    assert "roc_auc" not in shown.stdout
    assert set(read_json(project / "metrics" / "test.json")) == {"rmse", "mae", "r2", "mape"}


def test_repro_reproduces_automlops_run(penguins_run, tmp_path: Path) -> None:
    """The in-process `automlops run` (the session's `+experiment=penguins search.n_trials=2`) and the
    stage-by-stage `dvc repro`, each in a fresh project, compose the same params.yaml and arrive at the
    same model and test metrics."""
    project, _ = penguins_run

    other = new_project(tmp_path / "other")
    ok(cli("compose", "+experiment=penguins", "search.n_trials=2", cwd=other))
    assert stages_run(ok(dvc("repro", cwd=other))) == ALL_STAGES

    assert (project / "params.yaml").read_text() == (other / "params.yaml").read_text()
    run_best = read_json(project / "artifacts" / "search" / "best.json")
    repro_best = read_json(other / "artifacts" / "search" / "best.json")
    for key in ("family", "params", "metric", "valid_score"):
        assert run_best[key] == repro_best[key], key
    assert read_json(project / "metrics" / "test.json") == read_json(other / "metrics" / "test.json")
    # every trial alike, bar its fit time
    boards = [
        pd.read_csv(root / "metrics" / "leaderboard.csv").drop(
            columns=["fit_seconds", "predict_seconds_per_row", "recorded_at", "artifact"]
        )
        for root in (project, other)
    ]
    assert len(boards[0]) == 2
    pd.testing.assert_frame_equal(boards[0], boards[1])
