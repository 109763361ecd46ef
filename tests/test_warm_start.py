"""Issue 15, a search that uses its whole budget: a new study runs the portfolio's known-good
configurations first, cheapest first and inside the declared space; a resumed study is not given
them again; and no trial may run past its cap (search.max_trial_share of the search's time). Real
Optuna studies on breast_cancer with holdout validation: each test is a few fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from automlops.config.schema import DataConfig, SearchConfig, ValidationConfig
from automlops.errors import ConfigError
from automlops.search.engines import SearchData, search_seconds
from automlops.search.families import parse_space
from automlops.search.optuna_engine import CAPPED, LATER_STAGES_SECONDS, open_study, plan, run_trials, warm_start
from automlops.search.portfolio import PORTFOLIO, warm_start_points
from automlops.search.space import Fixed
from tests.test_search import prepared

SPACE = {
    "lightgbm": {
        "n_estimators": {"type": "int", "low": 10, "high": 40, "step": 10},  # the portfolio's 50 to 400: clipped
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "num_leaves": 8,  # fixed: the user's value wins over the portfolio's
        "boosting_type": {"type": "categorical", "choices": ["gbdt", "goss"]},  # not in the portfolio: sampled
    },
    "linear": {"alpha": {"type": "float", "low": 0.01, "high": 0.5, "log": True}},  # 1.0 clipped to 0.5
}


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> SearchData:
    return prepared(
        tmp_path_factory.mktemp("bc"), DataConfig(source="builtin", name="breast_cancer", target="target"), seed=3
    )


def config(**kwargs: Any) -> SearchConfig:
    kwargs.setdefault("space", SPACE)
    return SearchConfig(
        sampler="random", pruner="none", validation=ValidationConfig("holdout"), threads=1, progress=False, **kwargs
    )


def test_portfolio_points_run_first_and_lie_inside_the_declared_space(
    breast_cancer: SearchData, tmp_path: Path
) -> None:
    cfg = config(n_trials=8)
    study = run_trials(cfg, plan(cfg, "binary"), breast_cancer, 0, tmp_path)
    trials = study.get_trials(deepcopy=False)
    space = plan(cfg, "binary").space
    expected = warm_start_points(space, 4)
    assert [len(expected), len(trials)] == [3, 8]  # four lightgbm points clip to two: 40 trees at rate 0.1 and 0.05
    warm = [t for t in trials if t.user_attrs.get("warm_start")]
    assert [t.number for t in warm] == [0, 1, 2], "the portfolio runs before the sampler's own trials"
    # cheapest first: a small LightGBM, never the linear model the first trial was
    assert [t.params["family"] for t in warm] == ["lightgbm", "lightgbm", "linear"]
    assert warm[0].params["lightgbm.n_estimators"] == 40 and warm[0].params["lightgbm.learning_rate"] == 0.1
    assert warm[2].params["linear.alpha"] == 0.5
    for trial, point in zip(warm, expected, strict=True):
        assert trial.state.name == "COMPLETE"
        assert {k: trial.params[k] for k in point} == point
        family = trial.params["family"]
        for key, value in trial.params.items():
            if key != "family":
                assert trial.distributions[key]._contains(trial.distributions[key].to_internal_repr(value)), key
        if family == "lightgbm":
            assert trial.user_attrs["record"]["params"]["num_leaves"] == 8  # the fixed value, not 15 or 31
            assert trial.params["lightgbm.boosting_type"] in ("gbdt", "goss")  # left to the sampler


def test_points_of_families_outside_the_space_and_fixed_values_are_left_out() -> None:
    problems: list[str] = []
    space = parse_space(
        {"random_forest": {"n_estimators": 30, "max_depth": {"type": "int", "low": 2, "high": 4}}}, problems
    )
    assert not problems
    points = warm_start_points(space)
    assert points == [{"family": "random_forest"}]  # its portfolio values are all fixed or undeclared here
    assert isinstance(space["random_forest"]["n_estimators"], Fixed)
    assert {family for family, _ in PORTFOLIO} >= {"lightgbm", "catboost", "xgboost", "random_forest", "linear"}


def test_a_resumed_study_is_not_warm_started_again(breast_cancer: SearchData, tmp_path: Path) -> None:
    first = config(n_trials=4)
    run_trials(first, plan(first, "binary"), breast_cancer, 0, tmp_path)
    more = config(n_trials=7)  # the same study, extended
    study = run_trials(more, plan(more, "binary"), breast_cancer, 0, tmp_path)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 7
    assert [t.number for t in trials if t.user_attrs.get("warm_start")] == [0, 1]  # from the first run only
    assert warm_start(study, plan(more, "binary").space, None) == 0
    assert len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))) == 0


def test_warm_start_false_leaves_every_trial_to_the_sampler(breast_cancer: SearchData, tmp_path: Path) -> None:
    cfg = config(n_trials=3, warm_start=False)
    study = run_trials(cfg, plan(cfg, "binary"), breast_cancer, 0, tmp_path)
    assert not [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("warm_start")]


@pytest.mark.parametrize("family", ["lightgbm", "catboost"])  # stopped between boosting rounds: raised, or ended
def test_the_per_trial_cap_stops_a_trial_that_would_exceed_it(
    breast_cancer: SearchData, tmp_path: Path, family: str
) -> None:
    pytest.importorskip(family)
    rounds = {"type": "categorical", "choices": [10, 200_000]}
    space = {family: {"n_estimators": rounds, "learning_rate": 0.1}}
    # a first search leaves one COMPLETE trial (10 rounds): the cap, like the deadline, holds once a model exists
    first = config(n_trials=1, space=space)
    study = open_study(first, plan(first, "binary"), 0, breast_cancer.data_hash, tmp_path)
    study.enqueue_trial({"family": family, f"{family}.n_estimators": 10})
    run_trials(first, plan(first, "binary"), breast_cancer, 0, tmp_path)
    # then far more rounds than a 0.12 s cap allows on any machine: the cap, not the clock, decides the cut
    capped = config(n_trials=2, timeout=20, max_trial_share=0.01, space=space)
    study.enqueue_trial({"family": family, f"{family}.n_estimators": 200_000})
    run_trials(capped, plan(capped, "binary"), breast_cancer, 0, tmp_path)
    done, trial = study.get_trials(deepcopy=False)
    assert done.state.name == "COMPLETE"
    record = trial.user_attrs["record"]
    cap = 0.01 * search_seconds(20, LATER_STAGES_SECONDS)
    assert trial.state.name == "PRUNED" and record["params"]["n_estimators"] == 200_000
    assert record["error"].startswith(CAPPED), record["error"]
    assert f"cap of {cap:.1f} s (search.max_trial_share=0.01" in record["error"], record["error"]
    assert record["trial_seconds"] < 60  # stopped, not the minutes 200,000 rounds take


@pytest.mark.parametrize("share", [0, 1.5, -0.2])
def test_a_trial_share_outside_zero_to_one_is_a_config_error(share: float) -> None:
    with pytest.raises(ConfigError, match=r"search.max_trial_share: must be a share in \(0, 1\]"):
        plan(config(max_trial_share=share), "binary")


@pytest.mark.parametrize("family", sorted({family for family, _ in PORTFOLIO}))
def test_every_portfolio_point_names_its_familys_real_parameters(family: str) -> None:
    # a misspelt name would be dropped silently by warm_start_points: the point would run with defaults
    from automlops.search.families import FAMILIES

    if family in ("xgboost", "catboost"):
        pytest.importorskip(family)
    known = FAMILIES.get(family).param_names()
    for point_family, values in PORTFOLIO:
        if point_family == family:
            assert set(values) <= known, sorted(set(values) - known)
