"""search.timeout is a deadline the run keeps: an in-flight trial is cut at it and never counts as
COMPLETE, the search stage records how it spent the budget, and permutation importance keeps to its
row sample and time cap. No wall-clock assertions here (they flake on a shared machine): deadlines
are set in the past, so what is cut is decided by the code, not by the clock. The budget's figures
live in benchmarks/search_quality.py --budget-table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from automlops.config.schema import DataConfig, EvaluateConfig, SearchConfig, ValidationConfig
from automlops.evaluate.evaluation import evaluate
from automlops.evaluate.plots import MIN_IMPORTANCE_ROWS
from automlops.search.engines import SearchData, search_seconds
from automlops.search.optuna_engine import CUT, plan, refit_seconds_estimate, run_trials, search_optuna
from tests.test_search import prepared

FOLDS = 5
SPACES = {  # one fixed candidate per family: the deadline's three checks
    "lightgbm": {"lightgbm": {"n_estimators": 50, "num_leaves": 7}},  # between boosting rounds
    "random_forest": {"random_forest": {"n_estimators": 20, "max_depth": 4}},  # between chunks of trees
    "linear": {"linear": {"alpha": 1.0}},  # between folds
}


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> SearchData:
    return prepared(
        tmp_path_factory.mktemp("bc"), DataConfig(source="builtin", name="breast_cancer", target="target"), seed=3
    )


def cv_config(family: str, **kwargs: Any) -> SearchConfig:
    return SearchConfig(
        sampler="random",
        pruner="none",
        validation=ValidationConfig("cv", FOLDS),
        space=SPACES[family],
        threads=1,
        progress=False,
        **kwargs,
    )


@pytest.mark.parametrize("family", sorted(SPACES))
def test_a_trial_running_past_the_deadline_is_cut_and_never_complete(
    breast_cancer: SearchData, tmp_path: Path, family: str
) -> None:
    # a first search (no budget) leaves one COMPLETE trial: the model a cut search still ends with
    first = cv_config(family, n_trials=1)
    run_trials(first, plan(first, "binary"), breast_cancer, 0, tmp_path)
    # the same study resumed with a budget whose deadline has passed: its next trial starts (Optuna's
    # own timeout counts from now) and must be cut in flight, at the first check it reaches
    late = cv_config(family, n_trials=3, timeout=30)
    study = run_trials(late, plan(late, "binary"), breast_cancer, 0, tmp_path, started=time.monotonic() - 60)
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]  # cut, then the search stopped: no time left
    cut = trials[1]
    assert cut.values is None and study.best_trial.number == 0  # it cannot win
    record = cut.user_attrs["record"]
    assert record["error"].startswith(CUT) and "deadline" in record["error"], record
    assert "fit_seconds" not in record  # never scored
    expected = "the folds left, about" if family == "linear" else "while fitting"  # one fit: only between folds
    assert expected in record["error"], record["error"]


@pytest.mark.parametrize("balanced", [False, True])
def test_a_forest_grown_in_chunks_under_a_deadline_is_the_forest_one_fit_grows(
    breast_cancer: SearchData, balanced: bool
) -> None:
    """Deadline.fit grows a forest in chunks (warm_start) so it can be cut between them; when it is not
    cut, the model is the one a single fit makes: same trees, same predictions, its settings restored."""
    from sklearn.utils.class_weight import compute_sample_weight

    from automlops.search.families import build_pipeline
    from automlops.search.resampling import Deadline

    def forest() -> Any:
        params = {"n_estimators": 20, "max_features": 0.5, "min_samples_leaf": 2}
        return build_pipeline("random_forest", params, {}, breast_cancer.contract, "binary", 7, 1)

    x, y = breast_cancer.x_train, breast_cancer.y_train
    fit_params = {"model__sample_weight": compute_sample_weight("balanced", y)} if balanced else {}
    plain, chunked = forest(), forest()
    plain.fit(x, y, **fit_params)
    Deadline(time.monotonic() + 600).fit(chunked, x, y, fit_params)
    estimator = chunked.steps[-1][1]
    assert len(estimator.estimators_) == 20  # grown to the full count
    assert estimator.get_params()["warm_start"] is False and estimator.n_estimators == 20
    np.testing.assert_array_equal(
        plain.predict_proba(breast_cancer.x_valid), chunked.predict_proba(breast_cancer.x_valid)
    )


def test_the_search_records_how_it_spent_the_budget(breast_cancer: SearchData, tmp_path: Path) -> None:
    cfg = SearchConfig(n_trials=2, timeout=600, sampler="random", space={"linear": {"alpha": 1.0}}, progress=False)
    budget = search_optuna(cfg, breast_cancer, 0, tmp_path).lineage["budget"]
    assert budget["timeout"] == 600 and budget["trials_cut_at_deadline"] == 0
    assert budget["search_limit"] == 540  # a tenth is kept for the rest of the run: evaluate, package, the gate
    assert budget["search_seconds"] > 0 and budget["refit_seconds"] > 0 and budget["refit_estimate_seconds"] > 0
    spent = budget["search_seconds"] + budget["refit_seconds"] + budget["left_seconds"]
    assert spent == pytest.approx(540, abs=0.03)  # three roundings of 0.005 at most


def test_the_refit_estimate_scales_one_fit_to_the_refit_rows() -> None:
    record = {"fit_seconds": 10.0, "fits": 5, "fit_rows": 800}  # five folds of 2 s on 800 rows each
    assert refit_seconds_estimate(record, 1000) == pytest.approx(2.0 * 1000 / 800 * 1.25)
    assert refit_seconds_estimate({"fit_seconds": 4.0}, 1000) == pytest.approx(4.0 * 1.25)  # an older record: its total


class RowsSeen:
    """A fitted model that records how many rows each prediction was asked for."""

    def __init__(self, model: Any) -> None:
        self.model, self.rows = model, []
        self.classes_ = model.classes_

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        self.rows.append(len(x))
        return self.model.predict(x)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        self.rows.append(len(x))
        return self.model.predict_proba(x)


@pytest.fixture(scope="module")
def binary_test() -> tuple[Any, pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.iloc[:, :4]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x.iloc[:200], y.iloc[:200])
    return model, x.iloc[200:], y.iloc[200:]  # 369 test rows


def importance_rows(model: Any, x: pd.DataFrame, y: pd.Series, cfg: EvaluateConfig) -> tuple[list[int], pd.DataFrame]:
    seen = RowsSeen(model)
    plots = evaluate(seen, x.assign(target=y), list(x.columns), "target", "binary", cfg, seed=0).plots
    assert sorted(plots["importance.csv"]["feature"]) == sorted(x.columns)
    return seen.rows, plots["importance.csv"]


def test_importance_runs_on_its_row_sample(binary_test: tuple[Any, pd.DataFrame, pd.Series]) -> None:
    model, x, y = binary_test
    rows, _ = importance_rows(
        model, x, y, EvaluateConfig(importance_repeats=2, importance_rows=100, importance_seconds=None)
    )
    per_pass = rows.count(len(x))  # the test metrics see every row, in one scoring pass
    assert per_pass and sorted(set(rows)) == [100, len(x)]
    assert rows.count(100) == per_pass * 2 * (1 + 4)  # per repeat: a baseline pass, then each feature shuffled


def test_importance_time_cap_shrinks_the_sample_then_the_repeats(
    binary_test: tuple[Any, pd.DataFrame, pd.Series],
) -> None:
    model, x, y = binary_test
    # a cap no scoring pass can meet: the sample falls to its floor and the repeats to one
    cfg = EvaluateConfig(importance_repeats=3, importance_rows=300, importance_seconds=1e-9)
    rows, _ = importance_rows(model, x, y, cfg)
    per_pass = rows.count(len(x))
    assert sorted(set(rows)) == [MIN_IMPORTANCE_ROWS, 300, len(x)]
    assert rows.count(300) == per_pass  # one pass on the configured sample tells what the whole would cost
    assert rows.count(MIN_IMPORTANCE_ROWS) == per_pass * (1 + 4 * 1)


@pytest.mark.parametrize(
    ("timeout", "later", "limit"),
    [(60, 5.0, 54.0), (60, 8.0, 52.0), (60, 15.0, 45.0), (300, 15.0, 270.0), (10, 15.0, 5.0), (None, 5.0, None)],
)
def test_the_search_keeps_part_of_the_timeout_for_the_stages_after_it(
    timeout: float | None, later: float, limit: float | None
) -> None:
    assert search_seconds(timeout, later) == limit


# --- the AutoGluon engine's plan: presets auto, bagging from rows x seconds x cores (pure, no fit) ---


@pytest.mark.parametrize(
    ("rows", "seconds", "cores", "presets", "folds"),
    [
        (3_819, 45.0, 2, "medium_quality", None),  # fair at search.timeout=60: 18 core-s per 1k rows in 34 s
        (3_819, 450.0, 2, "best_quality", 8),  # fair at 500 s
        (12_114, 270.0, 2, "medium_quality", None),  # randhie at 300 s: 202 s of fit, below the floor
        (12_114, 450.0, 2, "best_quality", 8),  # randhie at 500 s: 56 core-s per 1k rows
        (200_000, 450.0, 2, "medium_quality", None),  # 3 core-s per 1k rows: too few to bag
        (200_000, 450.0, 16, "best_quality", 8),  # more cores, more folds fit in the same seconds
        (50_000, None, 2, "best_quality", 8),  # no time limit: bag
    ],
)
def test_auto_bags_when_the_fit_has_core_seconds_for_every_fold(
    rows: int, seconds: float | None, cores: int, presets: str, folds: int | None
) -> None:
    from automlops.search.autogluon_plan import BAGGED_FIT_SHARE_WITH_REFIT, FIT_SHARE_WITH_REFIT, plan_fit

    chosen = plan_fit("auto", rows, seconds, cores)
    assert (chosen.presets, chosen.num_bag_folds) == (presets, folds), chosen
    if folds:  # one level, no DyStack sub-fit: at these budgets it would take a quarter of the fit
        assert chosen.num_stack_levels == 0 and chosen.dynamic_stacking is False
        assert (
            chosen.fit_share == BAGGED_FIT_SHARE_WITH_REFIT and chosen.describe() == f"best_quality (bag {folds} folds)"
        )
        assert chosen.fit_kwargs()["dynamic_stacking"] is False
    else:
        assert chosen.fit_share == FIT_SHARE_WITH_REFIT and "too little to bag" in chosen.reason
        assert "dynamic_stacking" not in chosen.fit_kwargs()  # fit()'s own default


def test_configured_presets_and_bagging_win_over_the_plan() -> None:
    from automlops.search.autogluon_plan import plan_fit

    named = plan_fit("best_quality", 100, 45.0, 2)
    assert (named.presets, named.num_bag_folds, named.dynamic_stacking, named.fit_share) == (
        "best_quality",
        None,
        None,
        0.4,
    )  # as configured: AutoGluon's presets decide, and the refit keeps its unbagged share
    assert plan_fit("auto", 3_819, 450.0, 2, num_bag_folds=0).presets == "medium_quality"  # bagging off
    five = plan_fit("auto", 3_819, 450.0, 2, num_bag_folds=5)
    assert (five.presets, five.num_bag_folds) == ("best_quality", 5)
    short = plan_fit("auto", 12_114, 45.0, 2, num_bag_folds=5)  # too little to bag, but asked for: kept
    assert (short.presets, short.num_bag_folds, short.fit_share) == ("medium_quality", 5, 0.75)


@pytest.mark.parametrize(
    ("limit", "fitted", "extra"), [(30.0, 10.0, 20.0), (30.0, 25.0, None), (10.0, 6.0, None), (None, 5.0, None)]
)
def test_fit_extra_gets_what_an_early_fit_left(limit: float | None, fitted: float, extra: float | None) -> None:
    from automlops.search.autogluon_plan import extra_seconds, rest_seconds

    assert extra_seconds(limit, fitted) == extra  # at least a fifth of fit()'s limit and 5 s, else nothing
    # when the refit does not fit in what is left: most of it (AutoGluon overshoots), if 5 s or more
    assert rest_seconds(20.0) == pytest.approx(16.0) and rest_seconds(6.0) is None and rest_seconds(None) is None


def test_a_bags_refit_is_estimated_as_one_fit_on_all_rows() -> None:
    from automlops.search.autogluon_engine import REFIT_MARGIN, _refit_estimate
    from automlops.search.autogluon_plan import Plan

    board = pd.DataFrame({"model": ["WeightedEnsemble_L2"], "fit_time": [16.0]})
    bag = Plan("best_quality", num_bag_folds=8)  # 8 fits of 2 s on 700 of 800 rows each
    assert _refit_estimate(board, "WeightedEnsemble_L2", 1000, 800, bag) == pytest.approx(
        2.0 * 1000 / 700 * REFIT_MARGIN
    )
    flat = Plan("medium_quality")
    assert _refit_estimate(board, "WeightedEnsemble_L2", 1000, 800, flat) == pytest.approx(
        16.0 * 1000 / 800 * REFIT_MARGIN
    )


def test_the_budget_line_names_the_plan_and_every_phase() -> None:
    from automlops.search.autogluon_plan import BudgetLog, Plan

    budget = BudgetLog(Plan("best_quality", 8, 0, False, 0.75), 4_000, 60.0, 45.0)
    budget.add("fit", 33.94, 33.75, models=12)
    budget.add("refit_full", 2.5, 11.0)
    assert budget.line(39.1) == (
        "autogluon: plan best_quality (bag 8 folds) for 4,000 rows x 60 s; fit 33.9 of 33.8 s; refit_full 2.5 of 11.0 s; left 5.9 s"
    )
    record = budget.to_dict()
    assert record["plan"]["describe"] == "best_quality (bag 8 folds)"
    assert [p["phase"] for p in record["phases"]] == ["fit", "refit_full"] and record["phases"][0]["models"] == 12
