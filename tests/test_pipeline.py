"""End to end: `automlops run` on each shipped experiment, the bundle it packages, `automlops predict`
on that bundle, sweeps (-m), determinism across fresh projects, and refusal of a tampered bundle."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import champion, cli, new_project

from automlops.bundle import load_bundle
from automlops.data.contract import contract_from_dicts, enforce_contract
from automlops.errors import BundleError
from automlops.model_registry import resolve

pytestmark = pytest.mark.slow

CLASSIFICATION_METRICS = {"accuracy", "balanced_accuracy", "f1_macro", "log_loss"}
EXPERIMENTS = {
    # name: (task, test metrics, (a metric, the least value a working model reaches on it))
    "breast_cancer": ("binary", CLASSIFICATION_METRICS | {"f1", "roc_auc", "pr_auc", "brier", "ece"}, ("roc_auc", 0.9)),
    "penguins": ("multiclass", CLASSIFICATION_METRICS | {"roc_auc_ovr", "ece"}, ("accuracy", 0.9)),
    "diabetes": ("regression", {"rmse", "mae", "r2", "mape"}, ("r2", 0.2)),
}


@pytest.fixture(scope="module")
def _runs() -> dict:
    return {}


@pytest.fixture
def experiment_run(request: pytest.FixtureRequest, _runs: dict, tmp_path_factory: pytest.TempPathFactory):
    """`automlops run +experiment=NAME search.n_trials=2` in a fresh project, once per module and name."""

    def get(name: str) -> tuple[Path, object]:
        if name not in _runs:
            if name == "penguins":  # shared with test_serve.py and the tamper test
                _runs[name] = request.getfixturevalue("penguins_run")
            else:
                root = new_project(tmp_path_factory.mktemp(name) / "project")
                result = cli("run", f"+experiment={name}", "search.n_trials=2", cwd=root)
                assert result.returncode == 0, result.stderr[-3000:]
                _runs[name] = (root, result)
        return _runs[name]

    return get


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def next_command(stdout: str, verb: str) -> list[str]:
    """The `automlops <verb> ...` command the run printed as a next step, as argv."""
    lines = [line.strip() for line in stdout.strip().splitlines() if line.strip()]
    tail = lines[-4:]
    found = [line for line in tail if line.startswith(f"automlops {verb} ")]
    assert found, f"no `automlops {verb}` among the last stdout lines: {tail}"
    return shlex.split(found[0].split("#")[0])


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def replace_option(argv: list[str], name: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(name) + 1] = value
    return out


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_run_packages_a_verified_bundle(name: str, experiment_run) -> None:
    root, result = experiment_run(name)
    task, metric_names, (quality_metric, least) = EXPERIMENTS[name]
    bundle = champion(root, name)

    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["name"] == name
    assert manifest["task"] == task
    # every file in the bundle but the manifest is listed, with its true sha256
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == set(manifest["files"]) >= {"model/model.joblib", "input_example.json"}
    for file, digest in manifest["files"].items():
        assert sha256(bundle / file) == digest, f"{file}: sha256 in manifest.json does not match the file"

    # the held-out metrics of the task, the same in metrics/ and in the manifest, from a model that learned
    test_metrics = json.loads((root / "metrics" / "test.json").read_text())
    assert set(test_metrics) == metric_names
    assert manifest["metrics"]["test"] == test_metrics
    assert test_metrics[quality_metric] > least, test_metrics

    # the input example: raw feature rows, exactly the model's input columns, target excluded
    example = json.loads((bundle / "input_example.json").read_text())
    meta = json.loads((root / "data" / "prepared" / "meta.json").read_text())
    assert isinstance(example, list) and len(example) == 5  # deploy.example_rows
    assert all(list(record) == meta["features"] for record in example)
    assert [c["name"] for c in manifest["input_schema"]] == meta["features"]
    assert meta["target"] not in example[0]

    # the run ends by naming the bundle and the commands to use it
    lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    assert f"model {name} v1 is the champion at models/{name}/versions/1/" in lines[-6], lines[-6:]
    for verb in ("predict", "serve"):
        argv = next_command(result.stdout, verb)
        assert resolve(root / option(argv, "--model")).resolve() == bundle.resolve()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_predict_cli_matches_in_memory_model(name: str, experiment_run, tmp_path: Path) -> None:
    root, result = experiment_run(name)
    bundle = champion(root, name)
    rows = pd.DataFrame.from_records(json.loads((bundle / "input_example.json").read_text()))
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet", index=False)

    # what the search stage fitted, scoring the same rows typed by the input contract
    model = joblib.load(root / "artifacts" / "search" / "model" / "model.joblib")
    meta = json.loads((root / "data" / "prepared" / "meta.json").read_text())
    x = enforce_contract(rows, contract_from_dicts(meta["contract"]))
    expected = model.predict(x)

    # the command the run printed, as printed (bar the output file), then on the rows as CSV and as Parquet
    printed = next_command(result.stdout, "predict")
    runs = [(None, "printed.parquet"), ("rows.csv", "from_csv.parquet"), ("rows.parquet", "from_parquet.csv")]
    outputs = {}
    for source, target in runs:
        argv = replace_option(printed, "--output", str(tmp_path / target))
        if source is not None:
            argv = replace_option(argv, "--input", str(tmp_path / source))
        done = cli(*argv[1:], cwd=root)
        assert done.returncode == 0, done.stderr
        assert f"wrote {len(rows)} prediction(s)" in done.stdout
        path = tmp_path / target
        outputs[target] = (
            pd.read_parquet(path) if target.endswith(".parquet") else pd.read_csv(path, float_precision="round_trip")
        )

    for target, out in outputs.items():
        assert len(out) == len(rows), target
        # another process, maybe other chunk sizes: BLAS may round the last bits of floats differently
        probability_columns = [c for c in out.columns if c.startswith("proba_")]
        if EXPERIMENTS[name][0] == "regression":
            np.testing.assert_allclose(out["prediction"].to_numpy(), expected, rtol=1e-12, atol=0, err_msg=target)
            assert probability_columns == [], target
        else:
            np.testing.assert_array_equal(out["prediction"].to_numpy(), expected, err_msg=target)
            assert probability_columns == [f"proba_{label}" for label in model.classes_], target
            np.testing.assert_allclose(
                out[probability_columns].to_numpy(), model.predict_proba(x), rtol=1e-12, atol=0, err_msg=target
            )


def test_sweep_packages_every_job_and_runs_are_deterministic(project: Path, experiment_run) -> None:
    """`run -m` over two experiments gives both bundles; each equals the single run of the same
    experiment, with the same seed, in another fresh project (same best params, same test metrics)."""
    result = cli("run", "-m", "+experiment=breast_cancer,diabetes", "search.n_trials=2", cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" v1 is the champion at ") == 2

    for name, task in (("breast_cancer", "binary"), ("diabetes", "regression")):
        swept = load_bundle(project / "models" / name)  # verifies every sha256 before loading
        assert swept.manifest.task == task
        assert set(swept.manifest.metrics.test) == EXPERIMENTS[name][1]
        single_root, _ = experiment_run(name)
        single = json.loads((champion(single_root, name) / "manifest.json").read_text())
        assert swept.manifest.model.to_dict() == single["model"], f"{name}: best params differ between identical runs"
        assert swept.manifest.metrics.to_dict() == single["metrics"], name
        assert swept.manifest.lineage.search["study_name"] == single["lineage"]["search"]["study_name"]

    # the sweep's last job left its search artifacts: the same best.json as the single diabetes run
    swept_best = json.loads((project / "artifacts" / "search" / "best.json").read_text())
    single_root, _ = experiment_run("diabetes")
    single_best = json.loads((single_root / "artifacts" / "search" / "best.json").read_text())
    for key in ("family", "params", "metric", "valid_score"):
        assert swept_best[key] == single_best[key], key
    # the classifier bundle holds the classifier, not the regressor fitted after it in the same process
    classifier = load_bundle(project / "models" / "breast_cancer")
    example = pd.DataFrame.from_records(json.loads((classifier.path / "input_example.json").read_text()))
    assert set(classifier.model.predict(enforce_contract(example, classifier.contract))) <= set(
        classifier.manifest.classes or []
    )


def test_tampered_bundle_is_refused(penguins_run, tmp_path: Path) -> None:
    root, _ = penguins_run
    bundle = tmp_path / "penguins"
    shutil.copytree(champion(root, "penguins"), bundle)
    load_bundle(bundle)  # the intact copy loads
    rows = pd.DataFrame.from_records(json.loads((bundle / "input_example.json").read_text()))
    rows.to_csv(tmp_path / "rows.csv", index=False)

    model_file = bundle / "model" / "model.joblib"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))

    with pytest.raises(BundleError, match="sha256"):
        load_bundle(bundle)
    out = tmp_path / "out.csv"
    done = cli(
        "predict", "--model", str(bundle), "--input", str(tmp_path / "rows.csv"), "--output", str(out), cwd=tmp_path
    )
    assert done.returncode != 0
    message = done.stderr.strip()
    assert "\n" not in message, f"expected a one-line error, got:\n{message}"
    assert "sha256" in message and "model/model.joblib" in message
    assert "Traceback" not in done.stderr
    assert not out.exists()
