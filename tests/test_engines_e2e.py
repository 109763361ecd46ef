"""The search engines through the real command line: bad search input refused before any trial,
the AutoGluon engine's bundle, `automlops predict` on it, and one leaderboard across engines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import champion, cli, new_project, snapshot

from automlops.bundle import load_bundle
from automlops.data.contract import enforce_contract

pytestmark = pytest.mark.slow

GUARDED = ("models", "artifacts", "metrics", ".automlops", "params.yaml")
AG_HYPERPARAMETERS = {"GBM": {}, "LR": {}}
AG_FAMILIES = {"LightGBM", "LinearModel", "WeightedEnsemble_L2"}  # what GBM and LR (and their ensemble) are called
AG_EXPERIMENT = """\
# @package _global_
# AutoGluon with a small budget and two model families
defaults:
  - override /search: autogluon
search:
  timeout: 20
  autogluon:
    presets: medium_quality
    hyperparameters: {GBM: {}, LR: {}}
"""


def the_error_line(stderr: str) -> str:
    """A failed run ends with exactly one `error:` line (progress lines may come before it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, f"expected one error line, got:\n{stderr}"
    assert lines[-1] == errors[0], f"the error is not the last line:\n{stderr}"
    return errors[0]


@pytest.fixture(scope="module")
def optuna_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One project for the module, with a finished optuna run on the default data (breast cancer):
    a bundle, a study and a leaderboard that later commands must leave alone or build on.
    Returns (project root, that bundle's manifest)."""
    root = new_project(tmp_path_factory.mktemp("engines") / "project")
    result = cli("run", "search.n_trials=3", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((champion(root, "breast_cancer") / "manifest.json").read_text())
    assert manifest["model"]["engine"] == "optuna"
    return root, manifest


@pytest.fixture
def engines_project(optuna_run: tuple[Path, dict]) -> Path:
    return optuna_run[0]


NO_FAMILY = ["search.space.lightgbm=null", "search.space.random_forest=null", "search.space.linear=null"]
BAD_SEARCH_INPUT = [
    pytest.param(NO_FAMILY, ["search.space: no model family to search"], id="empty-space"),
    pytest.param(
        ["+search.space.lightgmb={}"],
        ["search.space family", "'lightgmb'", "did you mean 'lightgbm'"],
        id="unknown-family",
    ),
    pytest.param(
        ["+search.space.lightgbm.n_estimator=100"],
        ["search.space.lightgbm.n_estimator", "did you mean 'n_estimators'"],
        id="unknown-param",
    ),
    pytest.param(
        ["data=diabetes", "search.metric=roc_auc"],
        ["search.metric", "'roc_auc'", "regression"],
        id="metric-for-another-task",
    ),
    pytest.param(["search.n_trials=0"], ["search.n_trials", "must be >= 1, got 0"], id="zero-budget"),
    pytest.param(
        ["search.storage=postgresql+psycopg://nobody@127.0.0.1:1/x"],
        ["search.storage", "postgresql+psycopg://nobody@127.0.0.1:1/x", "check the URL"],
        id="unreachable-storage",
    ),
    pytest.param(
        ["search.sampler=cmaes", "search.objectives=[model_size]"],
        ["search.sampler: cmaes is single-objective"],
        id="cmaes-multi-objective",
    ),
    pytest.param(
        ["search.engine=autogluon", "search.timeout=null"],
        ["search.timeout", "autogluon"],
        id="autogluon-without-timeout",
    ),
    pytest.param(
        ["search=autogluon", "search.autogluon.hyperparameters=zeroshoot"],
        ["search.autogluon.hyperparameters", "'zeroshoot'", "did you mean 'zeroshot'"],
        id="unknown-autogluon-portfolio",
    ),
    pytest.param(
        ["search.ensemble_size=-5"],
        ["search.ensemble_size: must be >= 0 rounds, got -5; 0 for no ensemble"],
        id="negative-ensemble-size",
    ),
    pytest.param(
        ["search.ensemble_size=20", "search.objectives=[model_size]"],
        ["search.ensemble_size: an ensemble is chosen by score alone"],
        id="ensemble-with-objectives",
    ),
    pytest.param(
        ["search=autogluon", "search.ensemble_size=20"],
        ["search.ensemble_size: the autogluon engine already ensembles its own models"],
        id="ensemble-size-for-autogluon",
    ),
    pytest.param(
        ["search=autogluon", "search.autogluon.presets=hihg_quality"],
        ["search.autogluon.presets", "'hihg_quality'", "did you mean 'high_quality'"],
        id="unknown-autogluon-presets",
    ),
]


@pytest.mark.parametrize(("overrides", "named"), BAD_SEARCH_INPUT)
def test_bad_search_input_is_refused_before_any_trial(
    engines_project: Path, overrides: list[str], named: list[str]
) -> None:
    before = snapshot(engines_project, GUARDED)
    result = cli("run", "search.n_trials=2", *overrides, cwd=engines_project, timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr)
    line = the_error_line(result.stderr)
    for part in named:
        assert part in line, f"{part!r} not in: {line}"
    assert "Traceback" not in result.stdout
    assert not any(line.startswith("trial ") for line in result.stderr.splitlines()), "a trial ran"
    # no study, no trial, no candidate, no bundle, no search output: nothing guarded changed. A metric that
    # does not fit the task is caught right after prepare, whose own outputs (data/prepared and
    # metrics/validation.json, the data validation report) a finished prepare may rewrite
    assert (engines_project / ".automlops" / "optuna.db").is_file() and (
        engines_project / "models" / "breast_cancer"
    ).is_dir()
    after = snapshot(engines_project, GUARDED)
    for state in (before, after):
        state.pop("metrics/validation.json", None)
    assert after == before


def test_autogluon_dict_override_from_the_command_line_composes(engines_project: Path) -> None:
    """The hyperparameters example in conf/search/autogluon.yaml, given on the command line."""
    result = cli(
        "run",
        "--cfg",
        "search=autogluon",
        "search.timeout=20",
        "search.autogluon.hyperparameters={GBM: {}, LR: {}}",
        cwd=engines_project,
    )
    assert result.returncode == 0, result.stderr
    assert "internal error" not in result.stderr
    composed = result.stdout[result.stdout.index("autogluon:") :]
    assert "hyperparameters:\n      GBM: {}\n      LR: {}" in composed, composed[:400]


def leaderboard(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "metrics" / "leaderboard.csv", keep_default_na=False, na_values=[""])


def test_autogluon_bundle_predicts_and_joins_the_optuna_leaderboard(
    optuna_run: tuple[Path, dict], tmp_path: Path
) -> None:
    project, optuna_manifest = optuna_run
    study = optuna_manifest["lineage"]["search"]["study_name"]

    (project / "conf" / "experiment" / "ag_small.yaml").write_text(AG_EXPERIMENT)
    result = cli(
        "run", "+experiment=ag_small", "gate.checks=[]", cwd=project
    )  # published whatever its score: the gate has its own tests
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    bundle = champion(project, "breast_cancer")
    loaded = load_bundle(bundle)  # every file's sha256 checked
    manifest = loaded.manifest.to_dict()
    assert manifest["model"]["engine"] == "autogluon" and manifest["model"]["format"] == "autogluon"
    assert manifest["model"]["family"] in AG_FAMILIES
    search = manifest["lineage"]["search"]
    assert search["engine"] == "autogluon" and search["time_limit"] == 20
    assert search["autogluon_config"]["hyperparameters"] == AG_HYPERPARAMETERS
    assert manifest["config"]["search"]["engine"] == "autogluon"
    assert (bundle / "model" / "predictor").is_dir() and not (bundle / "model" / "model.joblib").exists()
    assert manifest["metrics"]["test"]["roc_auc"] > 0.9
    if manifest["model"]["family"] == "WeightedEnsemble_L2":  # its members and their weights, not its settings
        weights = manifest["model"]["params"]["ensemble_weights"]
        assert set(weights) <= AG_FAMILIES - {"WeightedEnsemble_L2"} and sum(weights.values()) == pytest.approx(
            1, abs=1e-3
        )

    # `automlops predict` on the bundle gives what the bundle's model gives in memory
    rows = pd.DataFrame.from_records(json.loads((bundle / "input_example.json").read_text()))
    out = tmp_path / "predictions.csv"
    done = cli(
        "predict",
        "--model",
        str(bundle),
        "--input",
        str(bundle / "input_example.json"),
        "--output",
        str(out),
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(rows)} prediction(s)" in done.stdout
    predicted = pd.read_csv(out, float_precision="round_trip")
    x = enforce_contract(rows, loaded.contract)
    np.testing.assert_array_equal(predicted["prediction"].to_numpy(), loaded.model.predict(x))
    proba_columns = [f"proba_{label}" for label in loaded.model.classes_]
    assert [c for c in predicted.columns if c.startswith("proba_")] == proba_columns
    np.testing.assert_allclose(predicted[proba_columns].to_numpy(), loaded.model.predict_proba(x), rtol=0, atol=1e-12)
    assert sorted(map(str, loaded.model.classes_)) == sorted(map(str, manifest["classes"]))

    # one leaderboard: the optuna trials and the AutoGluon models, same data and metric, one winner
    table = leaderboard(project)
    meta = json.loads((project / "data" / "prepared" / "meta.json").read_text())
    assert set(table["engine"]) == {"optuna", "autogluon"}
    hashes = set(table["data_hash"])  # the data and its train/valid split
    assert (
        set(table["metric"]) == {"roc_auc"}
        and len(hashes) == 1
        and hashes.pop().startswith(meta["data_hash"] + "/split:")
    )
    optuna_rows, ag_rows = table[table["engine"] == "optuna"], table[table["engine"] == "autogluon"]
    assert len(optuna_rows) == 3 and set(optuna_rows["source"]) == {study}
    assert set(ag_rows["source"]) == {search["fit_id"]}
    assert set(ag_rows["family"]) <= AG_FAMILIES and len(ag_rows) == search["models_fitted"]
    winners = table[table["winner"]]
    assert len(winners) == 1
    winner = winners.iloc[0]
    assert (winner["engine"], winner["source"], winner["family"]) == (
        "autogluon",
        search["fit_id"],
        manifest["model"]["family"],
    )
    assert winner["score"] == pytest.approx(manifest["metrics"]["validation"]["roc_auc"])
    scores = table["score"].dropna().to_numpy()
    assert (np.diff(scores) <= 0).all(), "the leaderboard is ranked best first"
    assert json.loads((project / "metrics" / "search.json").read_text())["engine"] == "autogluon"
