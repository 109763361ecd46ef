"""Gate, infra validation and the local registry, end to end: real runs of the CLI in a throwaway
project, a real `automlops serve` subprocess for infra validation, real files in models/<name>/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cli, snapshot

from automlops.bundle import verify_bundle
from automlops.config.schema import InfraConfig
from automlops.deploy.package import seal
from automlops.errors import BundleError
from automlops.model_registry import read_aliases, resolve
from automlops.records import Manifest
from automlops.serving_check import check_serving

pytestmark = pytest.mark.slow

# A deliberately weak model: one LightGBM tree with two leaves, no other family.
WEAK = """# @package _global_
search:
  space:
    lightgbm: {n_estimators: 1, num_leaves: 2, learning_rate: 0.01, min_child_samples: 50}
    random_forest: null
    linear: null
"""
FAST = (
    "search.n_trials=1",
    "gate.infra.requests=5",
)  # one trial: the weak space is one fixed setting, and trial 0 of the default space (linear) beats it


def registry_state(project: Path) -> dict[str, str]:
    return snapshot(project, ("models",))


def champion_version(project: Path) -> int:
    return read_aliases(project / "models" / "breast_cancer")["aliases"]["champion"]


def blessing_of(project: Path, version: int) -> dict:
    return json.loads((project / "models" / "breast_cancer" / "versions" / str(version) / "blessing.json").read_text())


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project taken through: weak model (v1, no champion yet) -> better model (v2) -> weak
    model again (refused). Tests read it; the ones that change it work on a copy."""
    from conftest import new_project

    project = new_project(tmp_path_factory.mktemp("registry") / "project")
    (project / "conf" / "experiment" / "weak.yaml").write_text(WEAK)
    first = cli("run", "+experiment=weak", "run.name=breast_cancer", *FAST, cwd=project)
    assert first.returncode == 0, first.stderr[-3000:]
    second = cli("run", *FAST, cwd=project)
    assert second.returncode == 0, second.stderr[-3000:]
    before = registry_state(project)
    third = cli("run", "+experiment=weak", "run.name=breast_cancer", *FAST, cwd=project)
    (project / "third_run.txt").write_text(f"{third.returncode}\n{third.stderr}")
    assert registry_state(project) == before, "a refused challenger changed models/"
    return project


def test_the_first_model_passes_change_checks_for_want_of_a_champion(history: Path) -> None:
    record = blessing_of(history, 1)
    assert record["passed"] and record["champion"] is None
    change = [c for c in record["checks"] if c["kind"] == "max_worse"]
    assert change and change[0]["champion"] is None and "no champion" in change[0]["summary"]
    assert record["infra"]["passed"] and record["infra"]["requests"] == 5 and record["infra"]["p95_ms"] > 0


def test_a_better_challenger_is_promoted_with_the_numbers_that_let_it_through(history: Path) -> None:
    assert champion_version(history) == 2
    record = blessing_of(history, 2)
    check = next(c for c in record["checks"] if c["kind"] == "max_worse")
    assert check["metric"] == "roc_auc" and check["value"] > check["champion"], check
    # the same split: no test row was a training row of either, so all of them are compared
    assert record["champion"] == {
        "version": 1,
        "scored_on": "114 of 114 test rows neither model trained on (none excluded)",
    }
    assert record["comparison"]["basis"] == "unseen_rows" and record["comparison"]["rows"]["used"] == 114
    manifest = verify_bundle(history / "models" / "breast_cancer" / "versions" / "2")
    assert manifest.version == 2 and manifest.blessing is not None and manifest.blessing.passed
    # the champion is what `--model models/<name>` and `@champion` resolve to
    assert resolve(history / "models" / "breast_cancer") == resolve(f"{history}/models/breast_cancer@champion")
    assert resolve(history / "models" / "breast_cancer").name == "2"
    history_entries = read_aliases(history / "models" / "breast_cancer")["history"]
    assert [(e["action"], e["version"], e["previous"]) for e in history_entries] == [
        ("promote", 1, None),
        ("promote", 2, 1),
    ]


def test_a_worse_challenger_is_refused_and_the_champion_stays(history: Path) -> None:
    code, stderr = (history / "third_run.txt").read_text().split("\n", 1)
    assert code == "1", stderr
    error = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in stderr, stderr
    assert "gate: the candidate was not blessed (roc_auc" in error[0] and "champion v2 stays" in error[0], error[0]
    blessing = json.loads((history / "metrics" / "blessing.json").read_text())
    assert not blessing["passed"]
    assert champion_version(history) == 2
    assert sorted(p.name for p in (history / "models" / "breast_cancer" / "versions").iterdir()) == ["1", "2"]


def test_a_gate_that_is_not_required_warns_and_publishes_nothing(history: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(history, project, symlinks=True)
    before = registry_state(project)
    result = cli("run", "+experiment=weak", "run.name=breast_cancer", "gate.required=false", *FAST, cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "not published (not blessed by the gate)" in result.stdout
    assert registry_state(project) == before


def test_rollback_and_promote_move_the_alias_and_nothing_else(history: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(history, project, symlinks=True)
    versions = snapshot(project, ("models/breast_cancer/versions",))

    back = cli("models", "rollback", "breast_cancer", cwd=project)
    assert back.returncode == 0 and "rolled back to v1" in back.stdout, back.stderr
    assert champion_version(project) == 1
    again = cli("models", "rollback", "breast_cancer", cwd=project)
    assert again.returncode == 1 and "no earlier version to roll back to" in again.stderr, again.stderr
    assert champion_version(project) == 1

    forward = cli("models", "promote", "models/breast_cancer", "2", cwd=project)
    assert forward.returncode == 0 and "champion -> v2 (was v1)" in forward.stdout, forward.stderr
    listing = cli("models", "list", "breast_cancer", cwd=project)
    assert listing.returncode == 0
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert set(rows) == {"1", "2"} and rows["2"].rstrip().endswith("champion") and "roc_auc=" in rows["2"]
    assert snapshot(project, ("models/breast_cancer/versions",)) == versions, "alias moves must not touch versions"

    missing = cli("models", "promote", "breast_cancer", "7", cwd=project)
    assert missing.returncode == 1 and "has no version 7" in missing.stderr
    unknown = cli(
        "predict", "--model", "models/breast_cancer@champoin", "--input", "x.csv", "--output", "y.csv", cwd=project
    )
    assert unknown.returncode == 1 and "no alias 'champoin' (did you mean 'champion'?)" in unknown.stderr, (
        unknown.stderr
    )


def test_a_tampered_version_is_refused_before_unpickling(history: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(history, project, symlinks=True)
    model_file = project / "models" / "breast_cancer" / "versions" / "1" / "model" / "model.joblib"
    model_file.write_bytes(b"not a pickle, and running it would be bad")
    promote = cli("models", "promote", "breast_cancer", "1", cwd=project)
    assert promote.returncode == 1 and "does not match its sha256" in promote.stderr, promote.stderr
    assert champion_version(project) == 2
    example = project / "models" / "breast_cancer" / "versions" / "2" / "input_example.json"
    predict = cli(
        "predict", "--model", "models/breast_cancer@1", "--input", str(example), "--output", "out.csv", cwd=project
    )
    assert (
        predict.returncode == 1 and "does not match its sha256" in predict.stderr and not (project / "out.csv").exists()
    )
    ok = cli("predict", "--model", "models/breast_cancer", "--input", str(example), "--output", "out.csv", cwd=project)
    assert ok.returncode == 0, ok.stderr


def test_a_registry_that_cannot_be_written_fails_deploy_and_keeps_the_champion(history: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(history, project, symlinks=True)
    (project / "blocked").write_text("a file where the registry folder should be\n")
    result = cli("run", *FAST, "deploy.dir=blocked", cwd=project)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "deploy.dir: cannot write to blocked/breast_cancer" in result.stderr, result.stderr
    assert champion_version(project) == 2


def test_infra_validation_fails_a_bundle_whose_server_does_not_start(history: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(history / "artifacts" / "bundle", bundle)
    (bundle / "model" / "model.joblib").write_bytes(b"garbage that no unpickler accepts")
    manifest = Manifest.read(bundle / "manifest.json")
    seal(bundle, manifest)  # hashes match again: only serving can tell the model is broken
    record = check_serving(bundle, InfraConfig(requests=2, startup_timeout=60))
    assert not record["passed"]
    assert record["error"].startswith("the server did not start (exited with"), record["error"]


def test_infra_validation_fails_a_bundle_slower_than_the_limit(history: Path) -> None:
    record = check_serving(history / "artifacts" / "bundle", InfraConfig(requests=3, p95_ms=0.001))
    assert not record["passed"] and "is above gate.infra.p95_ms=0.001" in record["error"], record


def test_a_modified_candidate_is_not_blessed(history: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(history, project, symlinks=True)
    example = project / "artifacts" / "bundle" / "input_example.json"
    example.write_text(example.read_text().replace("[", "[ ", 1))
    result = cli("stage", "gate", cwd=project)
    assert result.returncode == 1 and "does not match its sha256" in result.stderr, result.stderr
    with pytest.raises(BundleError, match="does not match its sha256"):
        verify_bundle(project / "artifacts" / "bundle")


def test_a_bundle_pickled_under_another_major_version_is_refused_naming_both(history: Path, tmp_path: Path) -> None:
    from importlib import metadata

    from automlops.bundle import load_bundle, read_manifest

    bundle = tmp_path / "old"
    shutil.copytree(history / "models" / "breast_cancer" / "versions" / "2", bundle)
    manifest = read_manifest(bundle)
    manifest.lineage.packages["scikit-learn"] = "0.24.2"
    seal(bundle, manifest)
    installed = metadata.version("scikit-learn")
    with pytest.raises(
        BundleError,
        match=rf"trained with scikit-learn 0\.24\.2, this environment has {installed}.*install scikit-learn==0\.24\.2",
    ):
        load_bundle(bundle)
    assert read_manifest(bundle).version == 2  # the metadata stays readable without loading the model
