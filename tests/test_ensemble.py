"""Issue 15, ensembles across candidates: search.ensemble_size > 0 blends the best trials by greedy
(Caruana) selection on their validation predictions, and packages the blend only when it beats the best
single candidate on the trials' own basis. Real Optuna studies and real fits on the built-in tables;
the replayed scores are checked against scikit-learn's scorers on the fitted models themselves."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_search import breast_cancer, diabetes, penguins, search_config  # noqa: F401 - fixtures

from automlops.config.schema import ValidationConfig
from automlops.records import ENSEMBLE, SearchBest
from automlops.search.engines import AllRows, SearchData
from automlops.search.ensemble import (
    EnsembleClassifier,
    EnsembleRegressor,
    blend_scorer,
    greedy_selection,
    validation_response,
)
from automlops.search.families import build_pipeline
from automlops.search.metrics import get_scorer
from automlops.search.optuna_engine import coded_target, plan, refit_all_rows, search_optuna
from automlops.search.resampling import EnsembleTarget, ensemble_target

DEFAULT_SPACE = yaml.safe_load((Path(__file__).parents[1] / "conf" / "search" / "optuna.yaml").read_text())["space"]


def fitted(data: SearchData, family: str, params: dict) -> object:
    model = build_pipeline(family, params, {}, data.contract, data.task, 0, 1)
    return model.fit(data.x_train, data.y_train)


@pytest.mark.parametrize(
    ("fixture", "metric", "positive"),
    [
        ("breast_cancer", "roc_auc", None),
        ("breast_cancer", "accuracy", None),
        ("breast_cancer", "pr_auc", "benign"),  # about a named class, not scikit-learn's pos_label=1
        ("penguins", "neg_log_loss", None),
        ("diabetes", "neg_root_mean_squared_error", None),
    ],
)
def test_a_replayed_response_scores_as_the_fitted_model(
    request: pytest.FixtureRequest, fixture: str, metric: str, positive: str | None
) -> None:
    """The blend is scored through stored predictions; for one member that must be the scorer's own value."""
    data = request.getfixturevalue(fixture)
    scorer = get_scorer(metric, positive)
    model = fitted(data, "lightgbm", {"n_estimators": 30})
    classes = data.classes
    response = validation_response(model, data.x_valid, classes)
    replayed = blend_scorer(scorer, data.y_valid.to_numpy(), [np.arange(len(data.y_valid))], classes)(response)
    assert replayed == pytest.approx(scorer(model, data.x_valid, data.y_valid), abs=1e-12)


def test_greedy_selection_blends_candidates_that_err_on_different_rows() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    truth = np.column_stack([1 - y, y]).astype(float)
    noise = [rng.normal(scale=0.9, size=400) for _ in range(2)]
    responses = [np.clip(truth + np.column_stack([-n, n]), 0, 1) for n in noise]  # equally good, independent errors
    scorer = get_scorer("roc_auc", 1)
    by_fold = blend_scorer(scorer, y, [np.arange(200), np.arange(200, 400)], np.array([0, 1]))
    pooled = blend_scorer(scorer, y, [np.arange(400)], np.array([0, 1]))
    selection = greedy_selection(responses, pooled, by_fold, rounds=10)
    assert selection.members == [0, 1]
    assert 0.3 <= selection.weights[1] <= 0.7
    assert selection.single_score == by_fold(responses[0])  # the best trial, on the basis trials are ranked on
    blend = sum(w * r for w, r in zip(selection.weights, responses))
    assert selection.score == pytest.approx(by_fold(blend)) and selection.score > selection.single_score


def test_a_candidate_no_blend_improves_on_is_kept_alone() -> None:
    y = np.array([0, 1] * 50)
    perfect = np.column_stack([1 - y, y]).astype(float)
    coin = np.full_like(perfect, 0.5)
    score = blend_scorer(get_scorer("neg_log_loss", None), y, [np.arange(100)], np.array([0, 1]))
    selection = greedy_selection([perfect, coin], score, score, rounds=10)
    assert selection.members == [0] and selection.score == selection.single_score


@pytest.mark.parametrize("method", ["cv", "holdout"])
def test_the_search_packages_a_blend_that_beats_its_best_trial(
    breast_cancer: SearchData,  # noqa: F811
    tmp_path: Path,
    method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = search_config(
        n_trials=10, space=DEFAULT_SPACE, ensemble_size=20, threads=1, validation=ValidationConfig(method=method)
    )
    with caplog.at_level("INFO", logger="automlops.search.optuna_engine"):
        result = search_optuna(cfg, breast_cancer, 3, tmp_path / "state")
    best_trial = max((c for c in result.candidates if c.trial >= 0 and c.score is not None), key=lambda c: c.score)
    ensemble = result.lineage["ensemble"]
    assert ensemble is not None, "the default space's families blend better than any one on this table"
    assert result.winner.family == ENSEMBLE and result.winner.trial == -1
    assert isinstance(result.model, EnsembleClassifier)
    # scored on the trials' own basis: the best single member's replayed score is its trial's recorded one
    assert ensemble["best_single_valid_score"] == pytest.approx(best_trial.score, abs=1e-12)
    assert result.winner.score == ensemble["valid_score"] > best_trial.score
    members = result.winner.params["members"]
    assert len(members) >= 2 and sum(m["weight"] for m in members) == pytest.approx(1.0, abs=1e-5)
    assert members[0]["trial"] in {c.trial for c in result.candidates if c.score == best_trial.score}
    # the packaged model is the weighted mean of its members, each refit on train+valid as a single winner is
    x = pd.concat([breast_cancer.x_train, breast_cancer.x_valid])
    expected = sum(m["weight"] * fitted_on(breast_cancer, x, m).predict_proba(breast_cancer.x_valid) for m in members)
    np.testing.assert_allclose(result.model.predict_proba(breast_cancer.x_valid), expected, atol=1e-12)
    labels = result.model.predict(breast_cancer.x_valid)
    assert set(labels) <= set(result.model.classes_)
    # the budget line says what the search did and what the refit was
    complete = sum(c.state == "COMPLETE" for c in result.candidates if c.trial >= 0)
    assert f"optuna: the study holds 10 trials ({complete} complete, " in caplog.text
    assert re.search(rf"this run searched [0-9.]+ s, {len(members)}-member ensemble refit [0-9.]+ s", caplog.text)
    # only the pool's predictions stay on disk
    assert len(list((tmp_path / "state" / "candidates").rglob("*.valid.npy"))) <= 10


def fitted_on(data: SearchData, x: pd.DataFrame, member: dict) -> object:
    y = pd.concat([data.y_train, data.y_valid])
    params = {k: v for k, v in member["params"].items() if not k.startswith("preprocess.")}
    choices = {k.removeprefix("preprocess."): v for k, v in member["params"].items() if k.startswith("preprocess.")}
    return build_pipeline(member["family"], params, choices, data.contract, data.task, 3, 1).fit(x, y)


def test_a_regression_blend_refits_on_every_labelled_row(diabetes: SearchData, tmp_path: Path) -> None:  # noqa: F811
    cfg = search_config(
        n_trials=10, space=DEFAULT_SPACE, ensemble_size=20, threads=1, validation=ValidationConfig(method="holdout")
    )
    result = search_optuna(cfg, diabetes, 3, tmp_path / "state")
    assert isinstance(result.model, EnsembleRegressor), result.lineage["ensemble"]
    best = SearchBest(
        engine="optuna",
        format="sklearn",
        family=result.winner.family,
        params=result.winner.params,
        metric=result.metric,
        valid_score=result.winner.score,
        config={"threads": 1},
    )
    x = pd.concat([diabetes.x_train, diabetes.x_valid])
    y = pd.concat([diabetes.y_train, diabetes.y_valid])
    same_rows = refit_all_rows(AllRows(best, x, y, diabetes.contract, diabetes.task), 3)
    assert isinstance(same_rows, EnsembleRegressor)
    np.testing.assert_allclose(same_rows.predict(x), result.model.predict(x), atol=1e-9)


def test_no_blend_is_packaged_when_the_best_trial_stays_ahead(penguins: SearchData, tmp_path: Path) -> None:  # noqa: F811
    """On penguins a linear model is near perfect: the search packages it, as without ensembling."""
    cfg = search_config(
        n_trials=10, space=DEFAULT_SPACE, ensemble_size=20, threads=1, validation=ValidationConfig(method="holdout")
    )
    result = search_optuna(cfg, penguins, 3, tmp_path / "state")
    assert result.lineage["ensemble"] is None
    assert result.winner.family != ENSEMBLE and result.winner.trial == result.lineage["best_trial"]
    plain = search_optuna(replace(cfg, ensemble_size=0), penguins, 3, tmp_path / "state")
    assert (plain.winner.trial, plain.winner.score) == (result.winner.trial, result.winner.score)


def test_time_ordered_folds_score_only_the_rows_a_fold_predicts(breast_cancer: SearchData) -> None:  # noqa: F811
    """Under a time split the first rows are never a fold's validation rows: their predictions stay NaN,
    and the folds the blend is scored on leave them out."""
    data = replace(breast_cancer, split_strategy="time", time=pd.Series(np.arange(455)))
    cfg = search_config(validation=ValidationConfig(method="cv", folds=4))
    target = ensemble_target(data, cfg, 0)
    scored = np.concatenate(target.folds)
    assert len(scored) == len(set(scored)) < len(target.y)
    assert 0 not in scored


def test_trials_without_predictions_never_join_a_blend(
    breast_cancer: SearchData,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A study extended after search.ensemble_size was set: its first trials kept no validation predictions,
    so they cannot be members; when one of them is the best, the best trial is packaged and the log says why."""
    cfg = search_config(n_trials=4, space=DEFAULT_SPACE, threads=1, validation=ValidationConfig(method="holdout"))
    search_optuna(cfg, breast_cancer, 3, tmp_path / "state")
    with caplog.at_level("INFO", logger="automlops.search.optuna_engine"):
        result = search_optuna(replace(cfg, n_trials=8, ensemble_size=20), breast_cancer, 3, tmp_path / "state")
    ensemble = result.lineage["ensemble"]
    if ensemble is None:
        assert result.winner.trial == result.lineage["best_trial"]
        if result.lineage["best_trial"] < 4:
            assert f"the best trial ({result.lineage['best_trial']}) has no validation predictions here" in caplog.text
    else:
        assert all(member["trial"] >= 4 for member in ensemble["members"])
    # the best trial's predictions gone (as when a worker on another machine ran it): no blend, the log says why
    best = result.lineage["best_trial"]
    next((tmp_path / "state" / "candidates").rglob(f"trial_{best}.valid.npy")).unlink()
    caplog.clear()
    with caplog.at_level("INFO", logger="automlops.search.optuna_engine"):
        again = search_optuna(replace(cfg, n_trials=8, ensemble_size=20), breast_cancer, 3, tmp_path / "state")
    assert again.lineage["ensemble"] is None and again.winner.trial == best
    assert f"the best trial ({best}) has no validation predictions here" in caplog.text


@pytest.mark.parametrize(("metric", "positive"), [("f1", "benign"), ("pr_auc", "malignant"), ("roc_auc", "benign")])
def test_labels_as_codes_score_as_the_labels(breast_cancer: SearchData, metric: str, positive: str) -> None:  # noqa: F811
    """The selection scores codes 0..k-1 (faster); with a positive class first or second in sorted order."""
    the_plan = plan(search_config(metric=metric, space=DEFAULT_SPACE), "binary", positive)
    classes = breast_cancer.classes
    response = validation_response(fitted(breast_cancer, "linear", {}), breast_cancer.x_valid, classes)
    target = EnsembleTarget(breast_cancer.y_valid.to_numpy(), [np.arange(len(breast_cancer.y_valid))], classes)
    scorer, y, codes = coded_target(the_plan, target)
    assert list(codes) == [0, 1] and set(y) == {0, 1}
    on_labels = blend_scorer(the_plan.scorer, target.y, target.folds, classes)(response)
    assert blend_scorer(scorer, y, target.folds, codes)(response) == pytest.approx(on_labels, abs=1e-12)
