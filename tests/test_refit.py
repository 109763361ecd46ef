"""deploy.refit_all_rows: once the gate blesses the candidate, deploy publishes the same family and
settings refit on train+valid+test. The refit rebuilds exactly the search's winner (fast test, a real
search); the published model answers as that refit does, through predict and a real server, and was fit
on every labelled row; the recorded test metrics stay the candidate's, labelled so; a refit champion
cannot be scored on its own test rows, which gate.incomparable decides (slow tests, real runs)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import champion, cli, new_project, runs_pipeline
from test_config import in_repo, typed  # noqa: F401 - in_repo is a fixture
from test_search import breast_cancer, search_config  # noqa: F401 - breast_cancer is a fixture
from test_serve import running_server

from automlops.bundle import MANIFEST, load_bundle, read_manifest, verify_bundle
from automlops.config.schema import DeployConfig, RunConfig, SigningConfig, ValidationConfig
from automlops.data.row_hashes import hash_set, row_hashes
from automlops.deploy.package import PackageInput, write_bundle
from automlops.deploy.refit import write_refit_bundle
from automlops.errors import BundleError, ConfigError
from automlops.pipeline import load_prepared
from automlops.records import PreparedMeta, Refit, SearchBest
from automlops.scoring import predict_frame
from automlops.search.engines import AllRows, SearchData
from automlops.search.optuna_engine import refit_all_rows, search_optuna
from automlops.signing import Signer, generate_keys, signer, trusted_keys

NAME = "penguins"
SEED = RunConfig().seed
RUN = (
    "+experiment=penguins",
    "search.n_trials=2",
    "search.space.lightgbm=null",
    "search.space.random_forest=null",
    "+search.preprocess.scaler={type: categorical, choices: [standard, robust]}",
    "search.class_weight=balanced",
    "deploy.refit_all_rows=true",
    "evaluate.plots=false",
    "search.progress=false",
)


def best_json(result, cfg) -> SearchBest:  # as run_search writes it
    winner = result.winner
    return SearchBest(
        engine=winner.engine,
        format=result.model_format,
        family=winner.family,
        params=winner.params,
        metric=result.metric,
        valid_score=winner.score,
        config=asdict(cfg),
    )


def test_the_refit_rebuilds_the_searchs_winner_from_best_json(breast_cancer: SearchData, tmp_path: Path) -> None:  # noqa: F811
    """Given the rows the search refit its winner on, the refit from best.json is that model, bit for bit
    (family, params, preprocessing choice, class weights, seed); given more rows, another model."""
    cfg = search_config(
        n_trials=2,
        space={"lightgbm": {"n_estimators": 20, "num_leaves": {"type": "int", "low": 4, "high": 16}}},
        preprocess={"numeric_imputer": {"type": "categorical", "choices": ["median", "none"]}},
        class_weight="balanced",
        validation=ValidationConfig(method="holdout"),
    )
    result = search_optuna(cfg, breast_cancer, 7, tmp_path / "state")
    best = best_json(result, cfg)
    assert any(key.startswith("preprocess.") for key in best.params)
    x = pd.concat([breast_cancer.x_train, breast_cancer.x_valid])
    y = pd.concat([breast_cancer.y_train, breast_cancer.y_valid])
    same_rows = refit_all_rows(AllRows(best, x, y, breast_cancer.contract, breast_cancer.task), 7)
    np.testing.assert_array_equal(same_rows.predict_proba(x), result.model.predict_proba(x))
    fewer = refit_all_rows(
        AllRows(best, breast_cancer.x_train, breast_cancer.y_train, breast_cancer.contract, breast_cancer.task), 7
    )
    assert not np.array_equal(fewer.predict_proba(x), result.model.predict_proba(x))


def test_autogluon_is_refused_with_one_line_naming_the_key(in_repo: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match=r"deploy\.refit_all_rows: supported for the optuna engine only"):
        typed("search=autogluon", "deploy.refit_all_rows=true")
    assert typed("deploy.refit_all_rows=true").deploy.refit_all_rows is True


def candidate_bundle(folder: Path, signing: Signer | None = None) -> Path:
    """A small sealed candidate, as the package stage writes it (its model: a stand-in file)."""
    model = folder / "model"
    model.mkdir(parents=True)
    (model / "model.joblib").write_bytes(b"model")
    meta = {"task": "binary", "target": "y", "contract": [], "data_hash": "h", "source": "s", "rows": {"train": 1}}
    search = {"engine": "optuna", "format": "sklearn", "family": "f", "params": {}, "metric": "roc_auc"}
    return write_bundle(
        PackageInput(
            name="m",
            model_dir=model,
            prepared=PreparedMeta.from_dict(meta),
            search=SearchBest.from_dict(search),
            metrics={"roc_auc": 0.9},
            example=pd.DataFrame({"x": [1.0]}),
            training_rows=np.arange(2, dtype=np.uint64),
            trained_on=("train", "valid"),
        ),
        DeployConfig(),
        folder / "bundle",
        signing,
    )


def test_the_refit_bundle_is_sealed_and_signed_again(tmp_path: Path) -> None:
    """The candidate's signature does not cover the refit model: the refit is sealed and signed anew, and
    verifies with the same public key; a model swapped afterwards is refused."""
    from sklearn.dummy import DummyClassifier

    private, public, _ = generate_keys(tmp_path / "keys")
    signing = signer(SigningConfig(private_key=str(private)))
    keys = trusted_keys(SigningConfig(public_keys=[str(public)]))
    candidate = candidate_bundle(tmp_path, signing)
    refit = Refit(rows=5, splits=["train", "valid", "test"], candidate_sha256="c")
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    written = write_refit_bundle(candidate, tmp_path / "refit", model, np.arange(5, dtype=np.uint64), refit, signing)
    manifest = verify_bundle(tmp_path / "refit", keys=keys)
    assert manifest.files == written.files and manifest.refit == replace(refit, candidate_rows=2)
    assert manifest.training_rows is not None and manifest.training_rows.rows == 5
    assert manifest.metrics.estimate_from is not None and "fit on 2 rows" in manifest.metrics.estimate_from
    assert manifest.files["model/model.joblib"] != read_manifest(candidate).files["model/model.joblib"]
    (tmp_path / "refit" / "model" / "model.joblib").write_bytes(b"another model")
    with pytest.raises(BundleError, match="model.joblib"):
        verify_bundle(tmp_path / "refit", keys=keys)


def test_a_failed_refit_leaves_the_last_refit_bundle_as_it_was(tmp_path: Path) -> None:
    candidate = candidate_bundle(tmp_path)
    target = tmp_path / "refit"
    target.mkdir()
    (target / "manifest.json").write_text("the last good refit")
    refit = Refit(rows=3, splits=["train", "valid", "test"], candidate_sha256="x")
    with pytest.raises(Exception, match="pickle"):  # noqa: B017 - whatever the pickler raises
        write_refit_bundle(candidate, target, lambda x: x, np.arange(3, dtype=np.uint64), refit)
    assert [p.name for p in target.iterdir()] == ["manifest.json"]
    assert (target / "manifest.json").read_text() == "the last good refit"


# ---- real runs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
@runs_pipeline
def refit_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One `automlops run` with deploy.refit_all_rows=true (the gate's serving check on: the refit is served too)."""
    root = new_project(tmp_path_factory.mktemp("refit") / "project")
    return root, cli("run", *RUN, cwd=root, timeout=300)


def test_the_published_model_is_the_winner_refit_on_every_labelled_row(refit_run) -> None:
    root, run = refit_run
    assert run.returncode == 0, run.stderr[-3000:]
    with contextlib.chdir(root):
        frames, meta = load_prepared()
    rows = pd.concat([frames[split] for split in ("train", "valid", "test")], ignore_index=True)
    x, y = rows[meta.features], rows[meta.target]
    published = load_bundle(champion(root, NAME))
    candidate = read_manifest(root / "artifacts" / "bundle")

    # fit on every labelled row: the manifest, the training row hashes, and the deploy record say so
    manifest = published.manifest
    assert manifest.training_rows is not None and manifest.refit is not None
    assert manifest.training_rows.rows == manifest.refit.rows == len(rows) == sum(meta.rows.values())
    assert manifest.training_rows.splits == manifest.refit.splits == ["train", "valid", "test"]
    assert manifest.refit.candidate_rows == meta.rows["train"] + meta.rows["valid"]
    from automlops.data.contract import contract_from_dicts

    assert np.array_equal(published.training_rows, hash_set(row_hashes(x, y, contract_from_dicts(meta.contract))))
    blessing = json.loads((root / "metrics" / "blessing.json").read_text())
    assert manifest.refit.candidate_sha256 == blessing["candidate"]["sha256"]
    deployed = json.loads((root / "metrics" / "deploy.json").read_text())
    assert deployed["published"] is True and deployed["refit"]["rows"] == len(rows)

    # the recorded estimate is the candidate's, and labelled so in the manifest and the model card
    assert manifest.metrics.test == candidate.metrics.test == json.loads((root / "metrics" / "test.json").read_text())
    assert manifest.metrics.estimate_from is not None and "pre-refit candidate" in manifest.metrics.estimate_from
    assert candidate.metrics.estimate_from is None and candidate.refit is None
    card = (published.path / "model_card.md").read_text()
    assert "Estimated from the pre-refit candidate" in card and f"on all {len(rows)} labelled rows" in card

    # parity: the published model answers as the winner refit here on every row, in process and served
    reference = refit_all_rows(
        AllRows(
            SearchBest.read(root / "artifacts" / "search" / "best.json"),
            x,
            y,
            contract_from_dicts(meta.contract),
            meta.task,
        ),
        SEED,
    )
    classes = [str(c) for c in reference.classes_]
    expected = reference.predict_proba(x)
    out = predict_frame(published, x)
    assert out["prediction"].tolist() == reference.predict(x).tolist()
    np.testing.assert_allclose(out[[f"proba_{c}" for c in classes]].to_numpy(), expected, rtol=0, atol=1e-9)
    pre_refit = load_bundle(root / "artifacts" / "bundle").model.predict_proba(x)
    assert not np.allclose(pre_refit, expected, rtol=0, atol=1e-9)  # the refit is another model
    records = json.loads(x.to_json(orient="records", double_precision=15))
    with running_server(champion(root, NAME), cwd=root, log_file=root / "serve.log") as (client, _):
        got = client.post("/predict?proba=1", json=records).json()
    assert got["predictions"] == reference.predict(x).tolist()
    np.testing.assert_allclose([[r[c] for c in classes] for r in got["probabilities"]], expected, rtol=0, atol=1e-9)


def test_a_refit_champion_cannot_be_scored_on_its_own_test_rows(refit_run) -> None:
    """Rerun on the same split: the champion trained on every test row, so gate.incomparable decides;
    with `recorded` the candidate passes, and its refit is the champion's, bit for bit: no new version."""
    root, first = refit_run
    assert first.returncode == 0, first.stderr[-3000:]
    refused = cli("run", *RUN, cwd=root, timeout=300)
    assert refused.returncode != 0
    assert "refit on every labelled row (deploy.refit_all_rows)" in refused.stderr, refused.stderr[-2000:]
    assert "gate.incomparable=fail keeps the champion" in refused.stderr
    assert read_manifest(champion(root, NAME)).version == 1
    accepted = cli("run", *RUN, "gate.incomparable=recorded", cwd=root, timeout=300)
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    deployed = json.loads((root / "metrics" / "deploy.json").read_text())
    assert deployed.get("unchanged") is True and deployed["version"] == 1, deployed
    assert (root / "models" / NAME / "versions").is_dir()
    assert (champion(root, NAME) / MANIFEST).is_file()
