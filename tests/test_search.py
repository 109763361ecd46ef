"""The Optuna engine and its parts, called directly on small real data: conditional spaces, pruning,
failing trials, stopping rules, cross-validation folds per split strategy, multi-objective selection,
searchable preprocessing, class weights and samplers. Every search runs in its own state dir."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import sparse

from automlops.config.schema import Config, DataConfig, RunConfig, SearchConfig, SplitConfig, ValidationConfig
from automlops.data.contract import infer_contract
from automlops.errors import ConfigError, SearchError
from automlops.pipeline import run_prepare, search_data
from automlops.search.engines import Candidate, SearchData
from automlops.search.leaderboard import update_leaderboard
from automlops.search.optuna_engine import plan, run_trials, search_optuna
from automlops.search.resampling import fold_indices

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
FOLDS = 5


# --- data and helpers --------------------------------------------------------------------------


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """The pipeline's stage functions read and write paths relative to the project root."""
    before = Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def prepared(root: Path, data: DataConfig, seed: int = 0) -> SearchData:
    """The prepare stage, then the splits exactly as a search (or a worker) sees them."""
    config = Config(run=RunConfig(seed=seed), data=data)
    with inside(root):
        run_prepare(config)
        return search_data(config)


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory: pytest.TempPathFactory) -> SearchData:
    return prepared(
        tmp_path_factory.mktemp("bc"), DataConfig(source="builtin", name="breast_cancer", target="target"), seed=3
    )


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> SearchData:
    data = DataConfig(source="builtin", name="penguins", target="species", task="multiclass")
    data.features.exclude = ["year"]
    return prepared(tmp_path_factory.mktemp("penguins"), data)


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> SearchData:
    data = DataConfig(
        source="builtin", name="diabetes", target="target", task="regression", split=SplitConfig(strategy="random")
    )
    return prepared(tmp_path_factory.mktemp("diabetes"), data)


def search_config(**kwargs) -> SearchConfig:
    kwargs.setdefault("progress", False)
    return SearchConfig(**kwargs)


def study_in(state_dir: Path) -> optuna.Study:
    """The one study a search left in its state dir's sqlite storage."""
    storage = f"sqlite:///{state_dir / 'optuna.db'}"
    names = optuna.get_all_study_names(storage)
    assert len(names) == 1, names
    return optuna.load_study(study_name=names[0], storage=storage)


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def fitted_estimator(pipeline):
    return pipeline.named_steps["model"]


MIXED_SPACE = {
    "lightgbm": {
        "n_estimators": {"type": "int", "low": 10, "high": 40},
        "num_leaves": {"type": "int", "low": 4, "high": 16},
        "subsample_freq": 1,  # fixed: not sampled, but part of the family's parameters
    },
    "linear": {"alpha": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
    "random_forest": {
        "n_estimators": {"type": "int", "low": 10, "high": 30},
        "max_depth": {"type": "int", "low": 2, "high": 6},
    },
}
LINEAR_ONLY = {"linear": {"alpha": {"type": "float", "low": 1e-2, "high": 10.0, "log": True}}}
# LightGBM refuses num_leaves=1 at fit time, every time: a family that always fails
BROKEN_LIGHTGBM = {"lightgbm": {"num_leaves": 1, "n_estimators": 10}, **LINEAR_ONLY}


# --- 1. conditional spaces ---------------------------------------------------------------------


@pytest.mark.slow  # fits models: seconds of CPU each
def test_each_trial_samples_and_fits_only_its_own_familys_parameters(breast_cancer: SearchData, tmp_path: Path) -> None:
    # no pruner: a pruned trial stops before its last fold, and what the test checks is every trial's parameters
    cfg = search_config(n_trials=8, sampler="random", pruner="none", space=MIXED_SPACE)
    result = search_optuna(cfg, breast_cancer, 0, tmp_path)
    study = study_in(tmp_path)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 8
    families = {t.params["family"] for t in complete}
    assert len(families) >= 2, f"the test needs trials of several families, got only {families}"

    for trial in complete:
        family = trial.params["family"]
        sampled = {f"{family}.{name}" for name, spec in MIXED_SPACE[family].items() if isinstance(spec, dict)}
        assert set(trial.params) == {"family"} | sampled, f"trial {trial.number} ({family}): {sorted(trial.params)}"
        others = [key for key in trial.params if key != "family" and not key.startswith(f"{family}.")]
        assert not others, f"trial {trial.number} ({family}) sampled another family's parameters: {others}"
        # the parameters given to the model: the sampled ones without their prefix, plus the fixed ones
        assert trial.user_attrs["record"]["family"] == family
        assert set(trial.user_attrs["record"]["params"]) == set(MIXED_SPACE[family])
        for key, value in trial.params.items():
            if key != "family":
                assert trial.user_attrs["record"]["params"][key.split(".", 1)[1]] == value

    # the kept fitted candidates are the family's estimator, fitted with exactly those values
    by_number = {c.trial: c for c in result.candidates}
    kept = [c for c in result.candidates if c.artifact]
    assert len(kept) == cfg.keep_top
    for candidate in kept:
        estimator = fitted_estimator(joblib.load(candidate.artifact))
        params = study.trials[candidate.trial].user_attrs["record"]["params"]
        assert candidate.params == params == by_number[candidate.trial].params
        if candidate.family == "linear":
            assert type(estimator).__name__ == "LogisticRegression"
            assert estimator.C == pytest.approx(1 / params["alpha"])
        else:
            assert (
                type(estimator).__name__
                == {"lightgbm": "LGBMClassifier", "random_forest": "RandomForestClassifier"}[candidate.family]
            )
            assert {k: estimator.get_params()[k] for k in params} == params


# --- 2. pruning --------------------------------------------------------------------------------

# Ridge with alpha up to 1e6 predicts little more than the mean: clearly bad candidates among good ones
PRUNABLE = {"linear": {"alpha": {"type": "float", "low": 1e-4, "high": 1e6, "log": True}}}


def cv_search(data: SearchData, state_dir: Path, pruner: str) -> optuna.Study:
    cfg = search_config(
        n_trials=8, sampler="random", pruner=pruner, validation=ValidationConfig("cv", FOLDS), space=PRUNABLE
    )
    return run_trials(cfg, plan(cfg, data.task), data, 0, state_dir)


def test_median_pruner_stops_bad_candidates_after_a_few_folds(diabetes: SearchData, tmp_path: Path) -> None:
    study = cv_search(diabetes, tmp_path, "median")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 8 and all(t.state in FINISHED for t in trials)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, f"no trial was pruned: {states(study)}"
    for trial in pruned:
        assert 1 <= len(trial.intermediate_values) < FOLDS, (trial.number, trial.intermediate_values)
    for trial in trials:
        if trial.state.name == "COMPLETE":
            assert sorted(trial.intermediate_values) == list(range(FOLDS))
            # the reported value is the running mean over folds; the last one is the trial's score
            assert trial.intermediate_values[FOLDS - 1] == pytest.approx(trial.value)


def test_without_a_pruner_every_trial_runs_every_fold(diabetes: SearchData, tmp_path: Path) -> None:
    study = cv_search(diabetes, tmp_path, "none")
    assert states(study) == ["COMPLETE"] * 8


# --- 3. failing trials -------------------------------------------------------------------------


@pytest.mark.slow  # fits models: seconds of CPU each
def test_a_failing_family_is_recorded_and_the_search_goes_on(breast_cancer: SearchData, tmp_path: Path) -> None:
    cfg = search_config(n_trials=6, sampler="random", max_failure_rate=0.9, space=BROKEN_LIGHTGBM)
    result = search_optuna(cfg, breast_cancer, 0, tmp_path)
    study = study_in(tmp_path)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6
    failed = [t for t in trials if t.state.name == "FAIL"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert failed and complete, states(study)
    for trial in failed:
        assert trial.params["family"] == "lightgbm"
        error = trial.user_attrs["record"]["error"]
        assert "num_leaves" in error and "\n" not in error and len(error) <= 500, error
    assert all(t.params["family"] == "linear" and "error" not in t.user_attrs["record"] for t in complete)

    assert result.winner.family == "linear" and result.winner.state == "COMPLETE"
    assert result.winner.trial in {t.number for t in complete}
    assert fitted_estimator(result.model).__class__.__name__ == "LogisticRegression"
    assert result.lineage["trials_finished"] == 6

    table = update_leaderboard(
        tmp_path / "history.csv", result.candidates, result.winner, result.metric, breast_cancer.data_hash
    )
    assert len(table) == 6 and table["winner"].sum() == 1
    assert table.loc[table["winner"], "family"].item() == "linear"
    failing_rows = table[table["state"] == "FAIL"]
    assert len(failing_rows) == len(failed)
    assert failing_rows["score"].isna().all()
    assert all("num_leaves" in error and "\n" not in error for error in failing_rows["error"])
    assert table.loc[table["state"] == "COMPLETE", "error"].fillna("").eq("").all()
    # the failures sort last: the leaderboard ranks by score
    assert list(table["state"].iloc[-len(failed) :]) == ["FAIL"] * len(failed)


def test_too_many_failures_stop_the_search_with_an_error_naming_the_setting(
    breast_cancer: SearchData, tmp_path: Path
) -> None:
    cfg = search_config(n_trials=8, sampler="random", max_failure_rate=0.2, space=BROKEN_LIGHTGBM)
    with pytest.raises(SearchError) as raised:
        search_optuna(cfg, breast_cancer, 0, tmp_path)
    message = str(raised.value)
    study = study_in(tmp_path)
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    failed = [t for t in finished if t.state.name == "FAIL"]
    assert any(t.state.name == "COMPLETE" for t in finished), "the test needs a working family among the trials"
    # the share is judged from the 5th finished trial on, and it was already too high by then
    assert len(finished) == 5, states(study)
    assert len(failed) / len(finished) > 0.2
    assert "search.max_failure_rate=0.2" in message
    assert f"{len(failed)}/{len(finished)}" in message
    assert "num_leaves" in message and "\n" not in message


# --- 4. patience and timeout -------------------------------------------------------------------


@pytest.mark.slow  # fits models: seconds of CPU each
def test_patience_stops_a_search_that_no_longer_improves(
    breast_cancer: SearchData, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="automlops")
    # one fixed candidate: no trial can beat the first one
    cfg = search_config(n_trials=8, sampler="random", patience=2, space={"linear": {"alpha": 1.0}})
    result = search_optuna(cfg, breast_cancer, 0, tmp_path)
    assert len(result.candidates) == 3  # trial 0, then 2 without improvement
    assert len(study_in(tmp_path).trials) == 3
    stopped = [r.getMessage() for r in caplog.records if "stopped early" in r.getMessage()]
    assert len(stopped) == 1 and "search.patience=2" in stopped[0] and "trial 0" in stopped[0], stopped


@pytest.mark.slow  # fits models: seconds of CPU each
def test_a_timeout_alone_bounds_the_search(breast_cancer: SearchData, tmp_path: Path) -> None:
    cfg = search_config(n_trials=None, timeout=3, sampler="random", space=MIXED_SPACE)
    started = time.perf_counter()
    result = search_optuna(cfg, breast_cancer, 0, tmp_path)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"a 3 s search took {elapsed:.1f} s"
    finished = [c for c in result.candidates if c.state in ("COMPLETE", "FAIL", "PRUNED")]
    assert len(finished) >= 1
    assert result.lineage["trials_finished"] == len(finished)


# --- 5. cross-validation folds follow data.split.strategy --------------------------------------


def frames(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n)}), pd.Series(np.where(np.arange(n) % 5 == 0, "yes", "no"))


def fold_data(x: pd.DataFrame, y: pd.Series, strategy: str, task: str = "binary", **kwargs) -> SearchData:
    cut = len(x) * 2 // 3
    return SearchData(
        x.iloc[:cut],
        y.iloc[:cut],
        x.iloc[cut:],
        y.iloc[cut:],
        infer_contract(x),
        task,
        "sha256:test",
        strategy,
        **kwargs,
    )


def assert_partition(
    folds: list[tuple[np.ndarray, np.ndarray]], rows: int, folds_wanted: int, every_row_scored: bool = True
) -> None:
    """Disjoint train/valid rows in each fold; k-fold schemes score every row exactly once."""
    assert len(folds) == folds_wanted
    for train, valid in folds:
        assert len(valid) and len(train) and not set(train) & set(valid)
        assert set(train) | set(valid) <= set(range(rows))
    if every_row_scored:
        assert sorted(np.concatenate([valid for _, valid in folds])) == list(range(rows))


def test_group_folds_never_put_a_group_on_both_sides() -> None:
    x, y = frames()
    groups = pd.Series(np.random.default_rng(1).choice([f"store{i}" for i in range(9)], len(x)))
    data = fold_data(x, y, "group", groups=groups)
    folds = fold_indices(data, x, y, 4, 0)
    assert_partition(folds, len(x), 4)
    for train, valid in folds:
        assert not set(groups.iloc[train]) & set(groups.iloc[valid])

    with pytest.raises(
        ConfigError, match=r"search\.validation\.folds: 10 folds need at least 10 groups, the data has 9"
    ):
        fold_indices(data, x, y, 10, 0)


@pytest.mark.parametrize("kind", ["number", "datetime"])
def test_time_folds_validate_on_later_rows_than_they_train_on(kind: str) -> None:
    x, y = frames()
    order = np.random.default_rng(2).permutation(len(x))  # rows are not stored in time order
    when = (
        pd.Series(order.astype(float))
        if kind == "number"
        else pd.Series(pd.Timestamp("2020-01-01") + pd.to_timedelta(order, "D"))
    )
    folds = fold_indices(fold_data(x, y, "time", time=when), x, y, 4, 0)
    assert_partition(folds, len(x), 4, every_row_scored=False)  # the earliest rows are only ever trained on
    for train, valid in folds:
        assert when.iloc[train].max() < when.iloc[valid].min()


def write_csv(path: Path, n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    days = pd.Timestamp("2019-11-15") + pd.to_timedelta(rng.permutation(n), "D")  # spans a new year
    frame = pd.DataFrame(
        {
            "when": days.strftime("%-m/%-d/%Y"),  # how a CSV export writes dates: text, not in sortable order
            "store": rng.choice([f"s{i}" for i in range(8)], n),
            "x": rng.normal(size=n).round(3),
            "y": np.where(np.arange(n) % 3 == 0, "yes", "no"),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


def test_time_folds_of_a_csv_date_column_follow_the_dates_not_the_text(tmp_path: Path) -> None:
    """The prepare stage orders a CSV's text dates as dates (tests/test_data.py); the search's
    cross-validation folds over the same data must too."""
    write_csv(tmp_path / "data.csv")
    data = prepared(
        tmp_path / "project",
        DataConfig(
            source="csv",
            path=str(tmp_path / "data.csv"),
            target="y",
            split=SplitConfig(strategy="time", time_column="when"),
        ),
    )
    x = pd.concat([data.x_train, data.x_valid], ignore_index=True)
    y = pd.concat([data.y_train, data.y_valid], ignore_index=True)
    assert data.time is not None and len(data.time) == len(x)
    when = pd.to_datetime(data.time, format="%m/%d/%Y")
    assert (
        when.iloc[: len(data.x_train)].max() < when.iloc[len(data.x_train) :].min()
    )  # the split itself is in time order
    folds = fold_indices(data, x, y, 3, 0)
    assert_partition(folds, len(x), 3, every_row_scored=False)
    for number, (train, valid) in enumerate(folds):
        latest_train, earliest_valid = when.iloc[train].max(), when.iloc[valid].min()
        assert latest_train < earliest_valid, (
            f"fold {number}: trains on {latest_train:%Y-%m-%d} but validates from {earliest_valid:%Y-%m-%d}"
        )


def test_group_folds_from_a_prepared_project_keep_groups_apart(tmp_path: Path) -> None:
    write_csv(tmp_path / "data.csv")
    data = prepared(
        tmp_path / "project",
        DataConfig(
            source="csv",
            path=str(tmp_path / "data.csv"),
            target="y",
            split=SplitConfig(strategy="group", group_column="store"),
        ),
    )
    x = pd.concat([data.x_train, data.x_valid], ignore_index=True)
    y = pd.concat([data.y_train, data.y_valid], ignore_index=True)
    assert "store" not in x.columns and data.groups is not None and len(data.groups) == len(x)
    folds = fold_indices(data, x, y, 3, 0)
    assert_partition(folds, len(x), 3)
    for train, valid in folds:
        assert not set(data.groups.iloc[train]) & set(data.groups.iloc[valid])


def test_stratified_folds_keep_the_class_shares(breast_cancer: SearchData) -> None:
    x = pd.concat([breast_cancer.x_train, breast_cancer.x_valid], ignore_index=True)
    y = pd.concat([breast_cancer.y_train, breast_cancer.y_valid], ignore_index=True)
    assert breast_cancer.split_strategy == "stratified"
    folds = fold_indices(breast_cancer, x, y, FOLDS, 0)
    assert_partition(folds, len(x), FOLDS)
    counts = y.value_counts()
    for _, valid in folds:
        in_fold = y.iloc[valid].value_counts()
        for label, total in counts.items():
            assert abs(in_fold[label] - total / FOLDS) <= 1, (label, in_fold[label], total / FOLDS)

    x, y = frames(n=12)  # 3 "yes" rows cannot be spread over 5 folds
    with pytest.raises(ConfigError, match=r"search\.validation\.folds: a class has fewer than 5 rows"):
        fold_indices(fold_data(x, y, "stratified"), x, y, FOLDS, 0)


# --- 6. multi-objective ------------------------------------------------------------------------

SIZED_SPACE = {  # model size grows with trees and depth, and so (mostly) does the score
    "lightgbm": {
        "n_estimators": {"type": "int", "low": 2, "high": 100, "log": True},
        "num_leaves": {"type": "int", "low": 2, "high": 31},
    },
    "random_forest": {
        "n_estimators": {"type": "int", "low": 2, "high": 50, "log": True},
        "max_depth": {"type": "int", "low": 1, "high": 8},
    },
}


def dominated(candidate: Candidate, others: list[Candidate]) -> bool:
    return any(
        o.score >= candidate.score
        and o.size_bytes <= candidate.size_bytes
        and (o.score > candidate.score or o.size_bytes < candidate.size_bytes)
        for o in others
    )


@pytest.mark.slow  # fits models: seconds of CPU each
def test_smallest_within_tolerance_picks_a_small_pareto_optimal_model(
    breast_cancer: SearchData, tmp_path: Path
) -> None:
    tolerance = 0.01
    cfg = search_config(
        n_trials=8,
        sampler="nsga2",
        objectives=["model_size"],
        select="smallest_within",
        select_tolerance=tolerance,
        space=SIZED_SPACE,
    )
    result = search_optuna(cfg, breast_cancer, 0, tmp_path)
    study = study_in(tmp_path)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert result.lineage["objectives"] == ["score", "model_size"]
    complete = [c for c in result.candidates if c.state == "COMPLETE"]
    assert len(complete) == 8
    for candidate in complete:  # the second objective is the size the candidate reports
        assert study.trials[candidate.trial].values[1] == candidate.size_bytes

    front = {c.trial for c in complete if not dominated(c, complete)}
    assert {c.trial for c in result.candidates if c.pareto} == front
    assert len(front) >= 2, "the test needs a trade-off between score and size"

    winner, best = result.winner, max(c.score for c in complete)
    close = [c for c in complete if c.score >= best - tolerance]
    assert winner.trial in front
    assert winner.score >= best - tolerance
    assert all(winner.size_bytes <= c.size_bytes for c in close), [(c.trial, c.score, c.size_bytes) for c in close]
    assert winner.score < best, "the test needs the smallest close model to differ from the best-scoring one"

    table = update_leaderboard(
        tmp_path / "history.csv", result.candidates, winner, result.metric, breast_cancer.data_hash
    )
    assert set(table.loc[table["pareto"], "trial"]) == front
    assert table.loc[table["winner"], "trial"].tolist() == [winner.trial]


# --- 7. preprocessing --------------------------------------------------------------------------

ENCODERS = {"target": "TargetEncoder", "onehot": "OneHotEncoder", "ordinal": "OrdinalEncoder"}


def step_names(transformer) -> set[str]:
    steps = getattr(transformer, "named_steps", None)
    return {type(transformer).__name__} | ({type(s).__name__ for s in steps.values()} if steps else set())


@pytest.mark.slow  # fits models: seconds of CPU each
@pytest.mark.filterwarnings("ignore:`TargetEncoder.shuffle`:FutureWarning")
@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_a_fixed_encoder_choice_is_used_by_every_family(penguins: SearchData, tmp_path: Path, encoder: str) -> None:
    # lightgbm defaults to ordinal codes and linear to one-hot: the choice overrides both
    space = {"lightgbm": {"n_estimators": 10, "min_child_samples": 5}, "linear": {}}
    cfg = search_config(n_trials=4, sampler="random", preprocess={"encoder": encoder}, space=space)
    result = search_optuna(cfg, penguins, 0, tmp_path)
    assert {c.family for c in result.candidates} == {"lightgbm", "linear"}, "the test needs both families"
    pipelines = [result.model] + [joblib.load(c.artifact) for c in result.candidates if c.artifact]
    assert len(pipelines) == 5
    for pipeline in pipelines:
        encoders = step_names(pipeline.named_steps["preprocess"].named_transformers_["categorical"]) & set(
            ENCODERS.values()
        )
        assert encoders == {ENCODERS[encoder]}, (encoder, encoders)
    assert all(c.params["preprocess.encoder"] == encoder for c in result.candidates)


@pytest.mark.parametrize("spec", ["hashing", {"type": "categorical", "choices": ["onehot", "hashing"]}])
def test_an_unknown_encoder_is_a_config_error_listing_the_valid_ones(spec) -> None:
    cfg = search_config(preprocess={"encoder": spec}, space=LINEAR_ONLY)
    with pytest.raises(ConfigError) as raised:
        plan(cfg, "binary")
    assert (
        str(raised.value)
        == "search.preprocess.encoder: unknown value 'hashing'; choose one of: onehot, ordinal, target"
    )


def rare_levels_data() -> SearchData:
    rng = np.random.default_rng(4)
    common = ["north"] * 60 + ["south"] * 60
    rare = [f"village{i}" for i in range(6) for _ in range(2)]  # 6 levels seen twice each
    city = rng.permutation(common + rare)
    x = pd.DataFrame({"city": city.astype(object), "x": rng.normal(size=len(city))})
    y = pd.Series(np.where((x["city"] == "north") ^ (x["x"] > 1), "a", "b"))
    return SearchData(x, y, x, y, infer_contract(x), "binary", "sha256:rare", "random")


@pytest.mark.slow  # fits models: seconds of CPU each
@pytest.mark.parametrize(("minimum", "city_columns"), [(1, 8), (5, 3)])
def test_rare_min_frequency_groups_rare_levels(tmp_path: Path, minimum: int, city_columns: int) -> None:
    """One-hot columns for the city: one per level, or north, south and one for the 6 rare villages."""
    data = rare_levels_data()
    cfg = search_config(
        n_trials=3,
        sampler="random",
        preprocess={"encoder": "onehot", "rare_min_frequency": minimum},
        space={"linear": {"alpha": 1.0}},
    )
    result = search_optuna(cfg, data, 0, tmp_path)
    columns = result.model.named_steps["preprocess"]
    names = [n for n in columns.get_feature_names_out() if n.startswith("city_")]
    assert len(names) == city_columns, names
    encoded = columns.transform(data.x_train.head(40))
    assert encoded.shape[1] == city_columns + 1
    rows = columns.transform(pd.DataFrame({"city": ["village0", "village5", "north"], "x": [0.0, 0.0, 0.0]}))
    rows = rows.toarray() if sparse.issparse(rows) else rows  # one-hot stays sparse where it saves memory
    city = rows[:, [list(columns.get_feature_names_out()).index(n) for n in names]]
    same_column = bool((city[0] == city[1]).all())
    assert same_column == (minimum > 1), "rare villages share one column exactly when they are grouped"
    assert not (city[0] == city[2]).all()


# --- 8. class weights --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imbalanced() -> SearchData:
    """breast cancer with most malignant rows dropped: 357 benign, 25 malignant."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    keep = np.r_[np.flatnonzero(y == 1), rng.choice(np.flatnonzero(y == 0), 25, replace=False)]
    x, y = x.iloc[keep].reset_index(drop=True), y.iloc[keep].map({0: "malignant", 1: "benign"}).reset_index(drop=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    return SearchData(
        x_train, y_train, x_valid, y_valid, infer_contract(x), "binary", "sha256:imbalanced", "stratified"
    )


def malignant_probability(data: SearchData, class_weight: str | None, state_dir: Path) -> np.ndarray:
    cfg = search_config(n_trials=3, sampler="random", class_weight=class_weight, space={"linear": {"alpha": 1.0}})
    result = search_optuna(cfg, data, 0, state_dir)
    classes = list(result.model.classes_)
    return result.model.predict_proba(data.x_valid)[:, classes.index("malignant")]


@pytest.mark.slow  # fits models: seconds of CPU each
def test_balanced_class_weight_changes_the_model_deterministically(imbalanced: SearchData, tmp_path: Path) -> None:
    plain = malignant_probability(imbalanced, None, tmp_path / "plain")
    balanced = malignant_probability(imbalanced, "balanced", tmp_path / "balanced")
    again = malignant_probability(imbalanced, "balanced", tmp_path / "again")
    np.testing.assert_array_equal(balanced, again)
    assert not np.allclose(plain, balanced)
    # weighting the rare class up moves probability towards it
    assert balanced.mean() > plain.mean()


# --- 9. samplers and determinism ---------------------------------------------------------------

SAMPLER_CLASSES = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "nsga2": "NSGAIISampler"}


@pytest.mark.slow  # fits models: seconds of CPU each
@pytest.mark.parametrize("sampler", list(SAMPLER_CLASSES))
def test_every_sampler_runs_a_search(breast_cancer: SearchData, tmp_path: Path, sampler: str) -> None:
    cfg = search_config(n_trials=3, sampler=sampler, space=MIXED_SPACE)
    study = run_trials(cfg, plan(cfg, breast_cancer.task), breast_cancer, 0, tmp_path)
    assert type(study.sampler).__name__ == SAMPLER_CLASSES[sampler]
    assert states(study) == ["COMPLETE"] * 3
    assert all(math.isfinite(t.value) for t in study.trials)


def test_cmaes_with_objectives_is_a_config_error() -> None:
    cfg = search_config(sampler="cmaes", objectives=["model_size"], space=LINEAR_ONLY)
    with pytest.raises(
        ConfigError, match=r"search\.sampler: cmaes is single-objective; use nsga2 or tpe with search\.objectives"
    ):
        plan(cfg, "binary")


@pytest.mark.parametrize(("key", "value"), [("sampler", "grid"), ("pruner", "patient")])
def test_an_unknown_sampler_or_pruner_is_a_config_error_not_tpe(tmp_path: Path, key: str, value: str) -> None:
    """The study is opened from a checked plan, then asked for search.sampler's sampler: an unknown name
    there (a worker, or a caller that skipped the checks) names the key instead of searching with TPE."""
    from dataclasses import replace

    from automlops.search.optuna_engine import open_study
    from automlops.search.samplers import PRUNERS, SAMPLERS

    cfg = search_config(n_trials=1, space=LINEAR_ONLY)
    the_plan = plan(cfg, "binary")
    valid = {"sampler": SAMPLERS, "pruner": PRUNERS}[key].names()
    with pytest.raises(
        ConfigError, match=rf"^search\.{key}: unknown value '{value}'; choose one of: {', '.join(valid)}$"
    ):
        open_study(replace(cfg, **{key: value}), the_plan, 0, "data", tmp_path)


ALL_KINDS = {  # every kind of parameter spec, in two families (a conditional space)
    "lightgbm": {
        "n_estimators": {"type": "int", "low": 10, "high": 50, "step": 10},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "reg_alpha": {"type": "float", "low": 0, "high": 1},
        "boosting_type": {"type": "categorical", "choices": ["gbdt", "goss"]},
        "subsample_freq": 1,
    },
    "linear": {"alpha": {"type": "float", "low": 0.1, "high": 10.0, "step": 0.1}},
}


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_space_as_optuna_distributions_samples_what_suggest_calls_sampled(sampler: str) -> None:
    """The YAML space becomes Optuna distributions; for a seed, trials draw exactly the values the
    hand-written suggest_* calls (the code before) drew, so seeded searches repeat across the change."""
    from automlops.search.space import suggest

    cfg = search_config(space=ALL_KINDS, sampler=sampler)
    the_plan = plan(cfg, "regression")

    def by_plan(trial: optuna.Trial) -> list:
        family = trial.suggest_categorical("family", sorted(the_plan.space))
        return [family, {p: suggest(trial, f"{family}.{p}", d) for p, d in the_plan.space[family].items()}]

    def by_hand(trial: optuna.Trial) -> list:
        family = trial.suggest_categorical("family", ["lightgbm", "linear"])
        if family == "linear":
            return [family, {"alpha": trial.suggest_float("linear.alpha", 0.1, 10.0, step=0.1)}]
        return [
            family,
            {
                "n_estimators": trial.suggest_int("lightgbm.n_estimators", 10, 50, step=10),
                "learning_rate": trial.suggest_float("lightgbm.learning_rate", 0.01, 0.3, log=True),
                "reg_alpha": trial.suggest_float("lightgbm.reg_alpha", 0.0, 1.0),
                "boosting_type": trial.suggest_categorical("lightgbm.boosting_type", ["gbdt", "goss"]),
                "subsample_freq": 1,
            },
        ]

    def drawn(draw) -> list:
        study = optuna.create_study(
            sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=4)
            if sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=3)
        )
        found = []
        for _ in range(10):
            trial = study.ask()
            found.append(draw(trial))
            study.tell(trial, float(len(str(found[-1]))))  # a deterministic score, so TPE's later draws depend on it
        return found

    assert drawn(by_plan) == drawn(by_hand)


def test_a_study_keeps_its_name_for_the_same_config(tmp_path: Path) -> None:
    """The study's name is a fingerprint of what shapes it: it must not change when the code around it
    does, or a killed search (or a larger n_trials) starts a new study instead of resuming."""
    from automlops.search.optuna_engine import open_study

    cfg = search_config(
        space={**ALL_KINDS, "random_forest": {}, "xgboost": None},
        n_trials=3,
        preprocess={
            "encoder": {"type": "categorical", "choices": ["onehot", "ordinal"]},
            "rare_min_frequency": {"type": "int", "low": 1, "high": 20},
            "max_levels": 50,
        },
    )
    assert open_study(cfg, plan(cfg, "regression"), 7, "abc", tmp_path).study_name == "automlops-c8ad8470874a"


@pytest.mark.slow  # fits models: seconds of CPU each
def test_the_same_config_and_seed_give_the_same_search(breast_cancer: SearchData, tmp_path: Path) -> None:
    cfg = search_config(n_trials=5, sampler="tpe", space=MIXED_SPACE)
    first = search_optuna(cfg, breast_cancer, 7, tmp_path / "first")
    second = search_optuna(cfg, breast_cancer, 7, tmp_path / "second")
    assert (first.winner.trial, first.winner.family, first.winner.params) == (
        second.winner.trial,
        second.winner.family,
        second.winner.params,
    )
    assert [(c.family, c.params, c.score) for c in first.candidates] == [
        (c.family, c.params, c.score) for c in second.candidates
    ]
    assert first.lineage["study_name"] == second.lineage["study_name"]
    np.testing.assert_array_equal(
        first.model.predict_proba(breast_cancer.x_valid), second.model.predict_proba(breast_cancer.x_valid)
    )
    other = search_optuna(cfg, breast_cancer, 8, tmp_path / "other")  # and the seed matters
    assert [c.params for c in other.candidates] != [c.params for c in first.candidates]
    timeless = [
        {k: v for k, v in run.lineage.items() if k != "budget"} for run in (first, second)
    ]  # budget: seconds spent
    assert json.dumps(timeless[0], sort_keys=True, default=str) == json.dumps(timeless[1], sort_keys=True, default=str)
    assert first.lineage["budget"].keys() == second.lineage["budget"].keys()


# --- the study a search resumes ----------------------------------------------------------------


@pytest.mark.slow  # fits models: seconds of CPU each
def test_a_search_on_another_validation_split_does_not_resume_the_old_study(
    breast_cancer: SearchData, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Same table, seed and space, but data.split.valid_size changed: the earlier trials were scored
    on other rows, so their scores cannot be ranked against new ones."""
    wider = prepared(
        tmp_path_factory.mktemp("bc_wider"),
        DataConfig(source="builtin", name="breast_cancer", target="target", split=SplitConfig(valid_size=0.3)),
        seed=3,
    )
    assert len(wider.x_valid) != len(breast_cancer.x_valid)
    cfg = search_config(n_trials=2, sampler="random", space=LINEAR_ONLY)
    first = search_optuna(cfg, breast_cancer, 0, tmp_path)
    cfg.n_trials = 3
    second = search_optuna(cfg, wider, 0, tmp_path)
    assert second.lineage["study_name"] != first.lineage["study_name"], (
        "the search resumed a study scored on another split"
    )
    assert second.lineage["trials_finished"] == 3


@pytest.mark.slow  # AutoGluon fits: seconds of CPU each
def test_autogluon_presets_that_bag_keep_the_validation_split_as_holdout(tmp_path: Path) -> None:
    """best_quality bags (and checks stacking on a sub-fit) by default: AutoGluon refuses tuning data
    in bagged mode unless it is the bag holdout, and used to fail with 'Learner is already fit'."""
    from automlops.config.schema import AutoGluonConfig
    from automlops.search.autogluon_engine import search_autogluon

    x, y = frames(n=150, seed=3)
    x["b"] = np.random.default_rng(4).normal(size=len(x))
    cfg = SearchConfig(
        engine="autogluon",
        timeout=70,  # 40: AutoGluon fitted no model in its 10 s on a machine loaded to 8 (the bag and its sub-fit)
        threads=1,  # fit(): 40 % of the 55 s left after the later stages; on 150 rows it ends long before
        autogluon=AutoGluonConfig(presets="best_quality", hyperparameters={"GBM": {"num_boost_round": 20}}),
    )
    result = search_autogluon(cfg, fold_data(x, y, "stratified"), seed=0, state_dir=tmp_path)
    assert result.lineage["presets"] == "best_quality"
    assert any("BAG" in c.family for c in result.candidates), [c.family for c in result.candidates]
    assert result.model.predict(x.head(3)).shape == (3,)


@pytest.mark.slow  # AutoGluon fits: seconds of CPU each
def test_autogluon_fits_catboost_and_xgboost_and_logs_how_it_spent_the_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """CatBoost and XGBoost are installed with automlops: AutoGluon fits them instead of skipping them
    ('import catboost failed'), and the search logs its plan and each phase's seconds in one line."""
    from automlops.config.schema import AutoGluonConfig
    from automlops.search.autogluon_engine import search_autogluon

    x, y = frames(n=150, seed=3)
    x["b"] = np.random.default_rng(4).normal(size=len(x))
    cfg = SearchConfig(
        engine="autogluon",
        timeout=30,  # auto: 11 s of fit is below the floor for bagging, so medium_quality
        threads=1,
        autogluon=AutoGluonConfig(hyperparameters={"CAT": {"iterations": 30}, "XGB": {"n_estimators": 20}}),
    )
    with caplog.at_level(logging.INFO, logger="automlops.search.autogluon_engine"):
        result = search_autogluon(cfg, fold_data(x, y, "stratified"), seed=0, state_dir=tmp_path)
    fitted = {c.family: c.state for c in result.candidates}
    assert fitted.get("CatBoost") == "COMPLETE" and fitted.get("XGBoost") == "COMPLETE", fitted
    budget = result.lineage["budget"]
    assert budget["plan"]["describe"] == "medium_quality" == result.lineage["plan"]
    phases = [p["phase"] for p in budget["phases"]]
    assert phases[0] == "fit" and "fit_extra" not in phases  # configured families are the whole search
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("autogluon: plan medium_quality for 100 rows x 30 s;")
    ]
    assert len(lines) == 1 and "; fit " in lines[0] and " left " in lines[0], caplog.text


@pytest.mark.slow  # AutoGluon fits: seconds of CPU each
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_autogluon_labels_from_its_probabilities_equal_its_predict(task: str, tmp_path: Path) -> None:
    """Evaluation and `?proba=1` take the labels from the probabilities instead of running the
    ensemble twice: they must be AutoGluon's own predict, threshold included, to the last row. A
    threshold set to one row's probability checks the strict comparison and the float32 precision."""
    from automlops.config.schema import AutoGluonConfig
    from automlops.evaluate.decision import predict_labels
    from automlops.search.autogluon_engine import AutoGluonModel, search_autogluon

    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.normal(size=240), "b": rng.normal(size=240)})
    score = x["a"] + 0.5 * x["b"] + rng.normal(scale=0.8, size=240)
    y = (
        pd.Series(np.where(score > 0.6, "yes", "no"))
        if task == "binary"
        else pd.Series(pd.cut(score, 3, labels=["lo", "mid", "hi"]).astype(str))
    )
    cfg = SearchConfig(
        engine="autogluon",
        timeout=20,
        threads=1,
        metric="f1" if task == "binary" else None,
        autogluon=AutoGluonConfig(hyperparameters={"GBM": {"num_boost_round": 30}, "RF": {"n_estimators": 20}}),
    )
    result = search_autogluon(cfg, fold_data(x, y, "stratified", task=task), seed=0, state_dir=tmp_path)
    model = result.model
    assert isinstance(model, AutoGluonModel)
    thresholds = [None]
    if task == "binary":
        thresholds.append(float(model.predictor.predict_proba(x, as_multiclass=True)[model.classes_[1]].iloc[7]))
    for threshold in thresholds:
        if threshold is not None:
            model.predictor.set_decision_threshold(threshold)
        proba = model.predict_proba(x)
        assert np.allclose(proba.sum(axis=1), 1.0)
        expected = model.predict(x)
        assert np.array_equal(predict_labels(model, x, task, proba=proba), expected), threshold
    if task == "binary":
        assert (proba[:, 1].astype(np.float32) == np.float32(threshold)).any()  # the tie row is really there


@pytest.mark.slow  # fits models: seconds of CPU each
def test_auto_validation_cross_validates_small_data_and_keeps_the_holdout_elsewhere(
    breast_cancer: SearchData, tmp_path: Path
) -> None:
    """auto: k-fold CV where the valid split is too small to rank candidates on, holdout on large
    data and where the folds cannot be drawn; the search records what it used."""
    from dataclasses import replace

    from automlops.search.resampling import AUTO_CV_MAX_ROWS, concrete_validation

    auto = search_config(n_trials=2, sampler="random", space=LINEAR_ONLY)
    assert auto.validation.method == "auto", "auto is the default"
    assert concrete_validation(auto, breast_cancer, 0).validation.method == "cv"
    rows = AUTO_CV_MAX_ROWS + 1
    x, y = frames(n=rows)
    assert concrete_validation(auto, fold_data(x, y, "stratified"), 0).validation.method == "holdout"
    rare = pd.Series(["a"] * 57 + ["b"] * 3)  # 3 rows of a class cannot fill 5 stratified folds
    assert concrete_validation(auto, fold_data(frames()[0], rare, "stratified"), 0).validation.method == "holdout"
    explicit = replace(auto, validation=ValidationConfig("holdout"))
    assert concrete_validation(explicit, breast_cancer, 0) is explicit
    result = search_optuna(auto, breast_cancer, 0, tmp_path)
    assert result.lineage["validation"] == {"method": "cv", "folds": 5}
    assert any(c.artifact for c in result.candidates), "a kept candidate under cv is its last fold's model"


# --- the rows the packaged model was fit on (the bundle records them; the gate never scores it on them) ---


@pytest.mark.slow  # fits models: seconds of CPU each
@pytest.mark.parametrize(("refit", "splits"), [(True, ("train", "valid")), (False, ("train",))])
def test_the_result_names_the_splits_the_winner_was_fit_on(
    breast_cancer: SearchData, tmp_path: Path, refit: bool, splits: tuple[str, ...]
) -> None:
    result = search_optuna(search_config(n_trials=1, space=LINEAR_ONLY, refit=refit), breast_cancer, 0, tmp_path)
    assert result.trained_on == splits and result.lineage["refit_on"] == "+".join(splits)
