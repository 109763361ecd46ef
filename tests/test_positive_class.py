"""The positive class of a binary task (data.positive_class): chosen in prepare, recorded in meta.json
and the manifest, and used by every metric that is about one class (search scorers, evaluate's
metrics, the decision threshold, the probability columns), on text, integer and boolean labels and
with the positive class first or second in the model's classes_.

The reference for every metric is the same model seen through `Relabelled`: labels renamed to 0/1
with 1 the positive class, scored by scikit-learn's own scorers (whose pos_label=1 is then right)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import cli, snapshot
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score, log_loss
from sklearn.metrics import get_scorer as sklearn_scorer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from automlops.bundle import Bundle
from automlops.config.schema import DataConfig, EvaluateConfig, SearchConfig, ValidationConfig
from automlops.data.contract import infer_contract
from automlops.data.positive import positive_class
from automlops.errors import ConfigError, DataError
from automlops.evaluate.evaluation import evaluate
from automlops.evaluate.metrics import test_metrics
from automlops.evaluate.names import metric_names
from automlops.records import Manifest
from automlops.scoring import predict_frame
from automlops.search.engines import SearchData
from automlops.search.metrics import check_metric_on_data, get_scorer, resolve_metric, scorer_names
from automlops.search.optuna_engine import search_optuna

LABELS = {  # how the two classes are spelled, in sorted order
    "text": ("benign", "malignant"),
    "integer": (0, 1),
    "boolean": (False, True),
    "integer_sorted_unlike_text": (2, 10),  # "10" < "2" as text: the default must follow numbers, as classes_ does
}
LINEAR = {"linear": {"alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}}}
LINEAR_ONLY_RUN = (
    "search.space.lightgbm=null",
    "search.space.random_forest=null",
    "evaluate.importance_repeats=0",
    "gate.infra.requests=5",
)  # the same run, cheaper: the point is the metric on text labels
POSITIVES = ("default", "second", "first")  # data.positive_class: null, classes_[1], classes_[0]


def binary_metrics() -> list[str]:
    """Every search.metric the config accepts for a binary task."""
    accepted = []
    for name in scorer_names():
        try:
            resolve_metric(name, "binary")
        except ConfigError:
            continue
        accepted.append(name)
    return accepted


class Relabelled(ClassifierMixin, BaseEstimator):
    """A fitted binary model whose classes are renamed to 0/1, 1 being `positive`: what scikit-learn's
    default pos_label=1 gets right, so its own scorers give the reference values."""

    def __init__(self, model: Any = None, positive: Any = None) -> None:
        self.model = model
        self.positive = positive

    def fit(self, x: Any, y: Any) -> Relabelled:
        return self

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])

    def _index(self) -> int:
        return list(self.model.classes_).index(self.positive)

    def predict(self, x: Any) -> np.ndarray:
        return (self.model.predict(x) == self.positive).astype(int)

    def predict_proba(self, x: Any) -> np.ndarray:
        score = self.model.predict_proba(x)[:, self._index()]
        return np.column_stack([1 - score, score])

    def decision_function(self, x: Any) -> np.ndarray:
        score = self.model.decision_function(x)
        return score if self._index() == 1 else -score


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    """Four breast_cancer features (a model that makes mistakes, so every metric has work to do)."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x[["mean radius", "mean texture", "mean smoothness", "mean symmetry"]], y.to_numpy()


def labelled(
    cancer: tuple[pd.DataFrame, np.ndarray], kind: str, which: str
) -> tuple[Any, pd.DataFrame, pd.Series, Any]:
    """(model fitted on the first half, test features, test labels, positive class or None for the default)."""
    x, codes = cancer
    y = pd.Series(
        np.array(LABELS[kind], dtype=object if kind == "text" else None)[1 - codes]
    )  # sklearn's 0 is malignant
    half = len(x) // 2
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x.iloc[:half], y.iloc[:half])
    positive = {"default": None, "second": model.classes_[1], "first": model.classes_[0]}[which]
    return model, x.iloc[half:].reset_index(drop=True), y.iloc[half:].reset_index(drop=True), positive


# --- prepare: which class is positive -----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_the_default_positive_class_is_the_models_second_class(cancer, kind: str) -> None:
    model, _, y, _ = labelled(cancer, kind, "default")
    assert positive_class(None, y, "binary") == model.classes_[1] == LABELS[kind][1]


@pytest.mark.parametrize(
    ("configured", "labels", "expected"),
    [
        ("malignant", ["benign", "malignant"], "malignant"),
        ("benign", ["benign", "malignant"], "benign"),
        (1, ["0", "1"], "1"),  # YAML's integer 1 names the text label "1"
        ("0", [0, 1], 0),  # and the text "0" the integer 0
        (1, [0.0, 1.0], 1.0),
        (True, ["no", "yes"], "yes"),  # YAML reads an unquoted `yes` as true
        (False, ["No", "Yes"], "No"),
        (True, [False, True], True),
        ("False", [False, True], False),
    ],
)
def test_a_configured_positive_class_is_matched_across_yaml_and_data_types(
    configured: Any, labels: list, expected: Any
) -> None:
    found = positive_class(configured, pd.Series(labels * 3), "binary")
    assert found == expected and type(found) is type(expected)


def test_a_positive_class_that_is_not_a_class_is_a_data_error_with_the_classes_listed() -> None:
    with pytest.raises(
        DataError,
        match=r"^data\.positive_class: 'malign' is not one of the target's classes "
        r"\(did you mean 'malignant'\?\); choose one of: benign, malignant$",
    ):
        positive_class("malign", pd.Series(["benign", "malignant"]), "binary")
    with pytest.raises(DataError, match=r"data\.positive_class: True .* quote the label"):
        positive_class(True, pd.Series(["benign", "malignant"]), "binary")
    with pytest.raises(DataError, match=r"data\.positive_class: .*task is multiclass.*binary tasks only"):
        positive_class("Adelie", pd.Series(["Adelie", "Gentoo", "Chinstrap"]), "multiclass")
    assert positive_class(None, pd.Series([1.5, 2.5, 3.5]), "regression") is None


@pytest.mark.parametrize("written", ['"yes"', "yes"])
def test_the_readmes_churn_data_file_makes_the_churners_positive(tmp_path: Path, written: str) -> None:
    """conf/data/churn.yaml as the README shows it, quoted or not (YAML reads a bare yes as true)."""
    from omegaconf import OmegaConf

    from automlops.data.prepare import prepare

    rng = np.random.default_rng(0)
    path = tmp_path / "churn.csv"
    pd.DataFrame({"tenure": rng.integers(1, 60, 90), "churned": np.where(np.arange(90) % 3 == 0, "yes", "no")}).to_csv(
        path, index=False
    )
    configured = OmegaConf.create(f"positive_class: {written}").positive_class
    cfg = DataConfig(source="csv", path=str(path), target="churned", task="binary", positive_class=configured)
    assert prepare(cfg, 0).meta.positive_class == "yes"
    assert (
        prepare(DataConfig(source="csv", path=str(path), target="churned"), 0).meta.positive_class == "yes"
    )  # the default


# --- search: every metric a binary search accepts ------------------------------------------------


def test_samplewise_metrics_are_refused_since_they_fail_on_every_single_label_target() -> None:
    with pytest.raises(ConfigError, match=r"search\.metric: 'f1_samples' is for multilabel targets.*'f1_macro'"):
        resolve_metric("f1_samples", "binary")


@pytest.mark.parametrize("which", POSITIVES)
@pytest.mark.parametrize("kind", sorted(LABELS))
def test_every_binary_search_metric_scores_the_positive_class(cancer, kind: str, which: str) -> None:
    model, x, y, configured = labelled(cancer, kind, which)
    positive = positive_class(configured, y, "binary")
    reference_model, reference_y = Relabelled(model, positive), (y == positive).astype(int)
    for name in binary_metrics():
        expected = (get_scorer(name) if name in ("gini", "pr_auc") else sklearn_scorer(name))(
            reference_model, x, reference_y
        )
        assert get_scorer(name, positive)(model, x, y) == pytest.approx(expected, rel=1e-12, abs=1e-12), name


def test_the_metric_is_checked_against_the_data_before_any_trial(cancer) -> None:
    """scikit-learn's own average_precision (pos_label=1) on text labels: what failed every trial on 627fad9."""
    _, x, y, _ = labelled(cancer, "text", "default")
    with pytest.raises(
        ConfigError,
        match=r"^search\.metric: 'average_precision' cannot score this binary data "
        r"\(ValueError: pos_label=1 is not a valid label.*data\.positive_class",
    ):
        check_metric_on_data("average_precision", sklearn_scorer("average_precision"), x, y, "binary")


@pytest.fixture(scope="module")
def cancer_search_data(cancer) -> SearchData:
    x, codes = cancer
    y = pd.Series(np.array(LABELS["text"], dtype=object)[1 - codes])
    cut = len(x) * 2 // 3
    return SearchData(
        x.iloc[:cut], y.iloc[:cut], x.iloc[cut:], y.iloc[cut:], infer_contract(x), "binary", "sha256:posclass"
    )


@pytest.mark.parametrize(("metric", "positive"), [("average_precision", None), ("f1", "benign"), ("pr_auc", "benign")])
def test_an_optuna_search_on_text_labels_ranks_by_the_positive_class(
    cancer_search_data: SearchData, tmp_path: Path, metric: str, positive: str | None
) -> None:
    data = SearchData(**{**cancer_search_data.__dict__, "positive_class": positive})
    cfg = SearchConfig(
        metric=metric,
        n_trials=2,
        refit=False,
        validation=ValidationConfig(method="holdout"),
        progress=False,
        space=LINEAR,
    )
    result = search_optuna(cfg, data, 0, tmp_path)
    assert [c.state for c in result.candidates] == ["COMPLETE", "COMPLETE"]
    model, wanted = result.model, positive or "malignant"  # refit=false: the winner as its trial fitted it
    index = list(model.classes_).index(wanted)
    if metric == "f1":
        expected = f1_score(data.y_valid, model.predict(data.x_valid), pos_label=wanted)
    else:
        expected = average_precision_score(data.y_valid == wanted, model.predict_proba(data.x_valid)[:, index])
    assert result.winner.score == pytest.approx(expected, rel=1e-9)


def test_a_trial_whose_metric_fails_is_a_config_error_naming_the_metric(cancer_search_data: SearchData) -> None:
    """What each trial met on 627fad9: scikit-learn's average_precision (pos_label=1) on text labels."""
    from automlops.search.families import build_pipeline
    from automlops.search.resampling import score_candidate

    data = cancer_search_data
    cfg = SearchConfig(metric="average_precision", validation=ValidationConfig(method="holdout"))
    with pytest.raises(
        ConfigError,
        match=r"^search\.metric: 'average_precision' cannot score this binary data \(ValueError: pos_label=1",
    ):
        score_candidate(
            lambda: build_pipeline("linear", {}, {}, data.contract, "binary", 0, 1),
            data,
            cfg,
            sklearn_scorer("average_precision"),
            0,
            lambda score, fold: None,
        )


def test_another_positive_class_is_another_study(cancer_search_data: SearchData, tmp_path: Path) -> None:
    """A resumed study must not mix scores about two different classes."""
    import optuna

    cfg = SearchConfig(
        metric="recall", n_trials=1, validation=ValidationConfig(method="holdout"), progress=False, space=LINEAR
    )
    for positive in ("benign", "malignant"):
        search_optuna(cfg, SearchData(**{**cancer_search_data.__dict__, "positive_class": positive}), 0, tmp_path)
    assert len(optuna.get_all_study_names(f"sqlite:///{tmp_path / 'optuna.db'}")) == 2


def test_a_stale_positive_class_stops_the_search_before_any_trial(
    cancer_search_data: SearchData, tmp_path: Path
) -> None:
    data = SearchData(**{**cancer_search_data.__dict__, "positive_class": "yes"})
    cfg = SearchConfig(
        metric="f1", n_trials=2, validation=ValidationConfig(method="holdout"), progress=False, space=LINEAR
    )
    with pytest.raises(ConfigError, match=r"^search\.metric: 'f1' cannot score this binary data .*pos_label=yes"):
        search_optuna(cfg, data, 0, tmp_path)
    assert not (tmp_path / "candidates").exists()


# --- evaluate, the decision threshold and predict ------------------------------------------------


@pytest.mark.parametrize("threshold", [None, 0.3])
@pytest.mark.parametrize("which", POSITIVES)
@pytest.mark.parametrize("kind", sorted(LABELS))
def test_every_evaluate_metric_is_about_the_recorded_positive_class(
    cancer, kind: str, which: str, threshold: float | None
) -> None:
    model, x, y, configured = labelled(cancer, kind, which)
    positive = positive_class(configured, y, "binary")
    got = test_metrics(model, x, y, "binary", threshold, positive)
    expected = test_metrics(Relabelled(model, positive), x, (y == positive).astype(int), "binary", threshold)
    assert list(got) == metric_names("binary")
    assert got == pytest.approx(expected, abs=1e-6)


def test_plots_and_slices_follow_the_positive_class_when_it_is_the_first(cancer) -> None:
    model, x, y, positive = labelled(cancer, "text", "first")
    cfg = EvaluateConfig(threshold=0.3, importance_repeats=0)
    got = evaluate(model, x.assign(target=y), list(x.columns), "target", "binary", cfg, 0, positive)
    reference = evaluate(
        Relabelled(model, positive),
        x.assign(target=(y == positive).astype(int)),
        list(x.columns),
        "target",
        "binary",
        cfg,
        0,
    )
    for name in ("roc.csv", "precision_recall.csv", "calibration.csv"):
        pd.testing.assert_frame_equal(got.plots[name], reference.plots[name])
    assert got.metrics == reference.metrics
    assert set(got.answers[(got.answers == positive).to_numpy()].index) == set(
        reference.answers[reference.answers == 1].index
    )


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_a_bundle_applies_its_threshold_to_its_positive_class_and_keeps_one_probability_per_class(
    cancer, kind: str
) -> None:
    model, x, y, positive = labelled(cancer, kind, "first")
    manifest = {"task": "binary", "positive_class": positive, "decision_threshold": 0.3, "input_schema": []}
    bundle = Bundle(Path("."), Manifest.from_dict(manifest), model)
    bundle.__dict__["contract"] = infer_contract(x)  # the cached contract, as load_bundle would read it
    out = predict_frame(bundle, x)
    assert list(out.columns) == ["prediction", *(f"proba_{c}" for c in model.classes_)]
    positive_proba = out[f"proba_{positive}"].to_numpy()
    assert np.array_equal(out["prediction"].to_numpy() == positive, positive_proba >= 0.3)
    assert np.allclose(positive_proba, model.predict_proba(x)[:, 0])


# --- AutoGluon ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_autogluon_fits_for_the_configured_text_positive_class(cancer_search_data: SearchData, tmp_path: Path) -> None:
    from automlops.search.autogluon_engine import search_autogluon

    data = SearchData(**{**cancer_search_data.__dict__, "positive_class": "benign"})  # the first class in sorted order
    cfg = SearchConfig(engine="autogluon", metric="f1", timeout=30, progress=False)
    cfg.autogluon.hyperparameters = {"LR": {}}
    cfg.autogluon.refit_full = False
    result = search_autogluon(cfg, data, 0, tmp_path)
    model = result.model
    assert model.predictor.positive_class == "benign"
    assert list(model.classes_) == ["malignant", "benign"]  # AutoGluon orders them negative, positive
    metrics = test_metrics(model, data.x_valid, data.y_valid, "binary", positive="benign")
    predicted = model.predict(data.x_valid)
    assert metrics["f1"] == pytest.approx(f1_score(data.y_valid, predicted, pos_label="benign"), abs=1e-6)
    hit, score = data.y_valid == "benign", model.predict_proba(data.x_valid)[:, 1]
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(hit, score), abs=1e-6)
    assert metrics["log_loss"] == pytest.approx(
        log_loss(hit, score), abs=1e-6
    )  # AutoGluon's columns are not in sorted order
    own = model.predictor.evaluate(
        data.x_valid.assign(__label__=data.y_valid), silent=True
    )  # AutoGluon's f1, for its positive class
    assert own["f1"] == pytest.approx(metrics["f1"], abs=1e-6)


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def average_precision_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One real `automlops run search.metric=average_precision` on the default data (breast_cancer:
    benign/malignant), which failed every trial on 627fad9."""
    from conftest import new_project

    project = new_project(tmp_path_factory.mktemp("average_precision") / "project")
    return project, cli("run", "search.metric=average_precision", "search.n_trials=2", *LINEAR_ONLY_RUN, cwd=project)


@pytest.mark.slow
def test_run_with_average_precision_on_the_default_text_labels_succeeds(average_precision_run) -> None:
    project, result = average_precision_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "positive class: 'malignant' (data.positive_class is null: the second class in sorted order)" in result.stderr
    )
    assert json.loads((project / "data" / "prepared" / "meta.json").read_text())["positive_class"] == "malignant"
    manifest = json.loads((project / "models" / "breast_cancer" / "versions" / "1" / "manifest.json").read_text())
    assert manifest["positive_class"] == "malignant"
    assert set(manifest["metrics"]["validation"]) == {"average_precision"}
    assert 0.5 < manifest["metrics"]["validation"]["average_precision"] <= 1


@pytest.mark.slow
def test_run_with_a_positive_class_that_is_not_a_class_stops_in_prepare_with_one_line(average_precision_run) -> None:
    project, _ = average_precision_run
    guarded = ("data/prepared", "models", "artifacts", "metrics")
    before = snapshot(project, guarded)
    result = cli("run", "data.positive_class=malign", "search.metric=f1", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: data.positive_class: 'malign' is not one of the target's classes (did you mean 'malignant'?); "
        "choose one of: benign, malignant"
    ]
    assert not re.search(r"\S", result.stderr[result.stderr.index(errors[0]) + len(errors[0]) :])
    assert snapshot(project, guarded) == before  # the last good run's outputs are untouched
