"""How a candidate is scored: holdout on the valid split, or k folds over train+valid drawn the way
the data was split (stratified, by group, in time order, or at random)."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit
from sklearn.utils.class_weight import compute_sample_weight

from automlops.config.schema import SearchConfig
from automlops.data.split import time_order
from automlops.errors import ConfigError
from automlops.search.base import SearchData
from automlops.search.ensemble import validation_response
from automlops.search.metrics import MetricError, resolve_metric

LATENCY_SAMPLE_ROWS = 1000
AUTO_CV_MAX_ROWS = 10_000  # validation.method=auto: k-fold CV up to this many train+valid rows, holdout above
Report = Callable[[float, int], None]  # (mean score so far, fold number): may raise optuna.TrialPruned
SEARCH_DEADLINE = "the search deadline"  # a Deadline's `what` unless it is a trial's own cap


class DeadlineReached(Exception):
    """A candidate ran into the search's deadline: it is cut, never scored."""


@dataclass(frozen=True)
class Deadline:
    """When a candidate's fitting must be over (time.monotonic()); None: no deadline. Checked before
    every fold after the first (against the folds left, at the mean fold's time: a trial that cannot
    finish stops there, not one fold short of it) and, inside a fit, where Deadline.fit can stop it, so
    an in-flight trial ends at the deadline rather than one whole fit after it. `what` names it in the cut's reason:
    the search's deadline, or the trial's own cap (search.max_trial_share)."""

    at: float | None = None
    what: str = SEARCH_DEADLINE

    def check(self, next_seconds: float = 0.0) -> None:
        """Raise DeadlineReached if the deadline has passed, or would pass `next_seconds` from now."""
        if self.at is not None and time.monotonic() + next_seconds > self.at:
            raise DeadlineReached(
                f"the folds left, about {next_seconds:.1f} s, would end past {self.what}"
                if next_seconds
                else f"{self.what} passed while fitting"
            )

    def fit(self, model: Any, x: Any, y: Any, fit_params: dict[str, Any]) -> None:
        """model.fit (a pipeline whose last step is the estimator, or the estimator), stopped at the
        deadline where the estimator lets it: LightGBM between boosting rounds (its callback raises),
        CatBoost between rounds (its callback ends the boosting, then this raises), a forest between
        chunks of trees. Any other estimator fits whole; the folds are its checks."""
        estimator = _estimator(model)
        if self.at is None:
            model.fit(x, y, **fit_params)
        elif _is_forest(estimator):
            self._grow_forest(model, estimator, x, y, fit_params)
        else:
            model.fit(x, y, **fit_params, **self._callbacks(estimator))
            if _is_catboost(estimator) and time.monotonic() > self.at:
                self.check()

    def _callbacks(self, estimator: Any) -> dict[str, Any]:
        """A per-round check for estimators that take callbacks: LightGBM's raises, CatBoost's stops the
        boosting (it does not let exceptions through)."""
        assert self.at is not None
        if type(estimator).__module__.startswith("lightgbm"):
            return {"model__callbacks": [lambda env: self.check()]}
        if _is_catboost(estimator):
            return {"model__callbacks": [_CatBoostStop(self.at)]}
        return {}

    def _grow_forest(self, model: Any, forest: Any, x: Any, y: Any, fit_params: dict[str, Any]) -> None:
        """One scikit-learn fit cannot be stopped: a 100-tree forest on 32,000 rows took 4 s of a 5 s
        search (search.timeout=10). The preprocessing is fitted once, then the forest grows in
        FOREST_CHUNKS steps with warm_start, which draws the random states a single fit would: the same
        trees. Its n_estimators and warm_start are restored, cut or not."""
        own = fit_params
        if hasattr(model, "steps"):
            prefix = f"{model.steps[-1][0]}__"
            own = {k.removeprefix(prefix): v for k, v in fit_params.items() if k.startswith(prefix)}
            if len(model.steps) > 1:
                head = {k: v for k, v in fit_params.items() if not k.startswith(prefix)}
                x = model[:-1].fit_transform(x, y, **head)
        total = forest.n_estimators
        forest.set_params(warm_start=True)
        try:
            for grown in np.unique(np.linspace(0, total, FOREST_CHUNKS + 1, dtype=int)[1:]):
                forest.set_params(n_estimators=int(grown))
                forest.fit(x, y, **own)
                if grown < total:
                    self.check()
        finally:
            forest.set_params(warm_start=False, n_estimators=total)


FOREST_CHUNKS = 8  # a forest under a deadline grows in this many steps, checked between them


def _estimator(model: Any) -> Any:
    """The estimator at the end of a pipeline (or the model itself)."""
    return model.steps[-1][1] if hasattr(model, "steps") else model


def _is_forest(estimator: Any) -> bool:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    return isinstance(
        estimator, (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
    )


def _is_catboost(estimator: Any) -> bool:
    return any(cls.__module__.startswith("catboost") for cls in type(estimator).__mro__)


@dataclass(frozen=True)
class _CatBoostStop:
    """CatBoost's per-iteration callback: False ends the boosting once `at` has passed."""

    at: float

    def after_iteration(self, info: Any) -> bool:
        return time.monotonic() <= self.at


@dataclass
class Scored:
    score: float
    fit_seconds: float  # summed over the folds
    predict_seconds_per_row: float
    size_bytes: int
    model: Any  # the fitted model scored last (holdout: the candidate itself)
    fits: int = 1  # models fitted: one per fold
    fit_rows: int = 0  # rows of one fit (the mean over folds)
    response: np.ndarray | None = None  # with `classes` given: validation predictions (ensemble.validation_response)


def concrete_validation(cfg: SearchConfig, data: SearchData, seed: int) -> SearchConfig:
    """search.validation.method=auto made concrete for this data. On up to AUTO_CV_MAX_ROWS rows a
    single valid split is too small to rank hundreds of candidates: the search learns its noise (at
    60 s, holdout picked a model with test roc_auc 0.966 on breast_cancer, k-fold CV one with 0.998).
    Above that, holdout is k times cheaper and its noise is small. FLAML decides the same way. Where
    the folds cannot be drawn (a class or group rarer than the folds), auto keeps the holdout."""
    if cfg.validation.method != "auto":
        return cfg
    method = "holdout"
    if len(data.x_train) + len(data.x_valid) <= AUTO_CV_MAX_ROWS:
        x, y = _train_and_valid(data)
        try:
            fold_indices(data, x, y, cfg.validation.folds, seed)
            method = "cv"
        except (ConfigError, ValueError):
            pass
    return replace(cfg, validation=replace(cfg.validation, method=method))


def score_candidate(
    build: Callable[[], Any],
    data: SearchData,
    cfg: SearchConfig,
    scorer: Any,
    seed: int,
    report: Report,
    deadline: Deadline = Deadline(),
    keep_response: bool = False,
) -> Scored:
    """The candidate's validation score (holdout or the mean over folds); raises DeadlineReached when
    `deadline` cuts it, and a MetricError naming search.metric when the scorer raises. With
    `keep_response`, also its validation predictions, in ensemble_target's row order (under cv: out of
    fold, NaN on rows no fold scores)."""
    fit = partial(
        _fit_and_score,
        build,
        cfg=cfg,
        scorer=scorer,
        task=data.task,
        deadline=deadline,
        keep_response=keep_response,
        classes=data.classes if keep_response else None,
    )
    if cfg.validation.method == "holdout":
        return fit(data.x_train, data.y_train, data.x_valid, data.y_valid)
    x, y = _train_and_valid(data)
    scores, fit_seconds, predict_seconds, fit_rows = [], 0.0, 0.0, 0
    scored = None
    response = None
    started = time.monotonic()
    folds = fold_indices(data, x, y, cfg.validation.folds, seed)
    for fold, (train_rows, valid_rows) in enumerate(folds):
        if fold:  # folds that would end past the deadline are not started: a trial that cannot finish stops now
            deadline.check((time.monotonic() - started) / fold * (len(folds) - fold))
        scored = fit(x.iloc[train_rows], y.iloc[train_rows], x.iloc[valid_rows], y.iloc[valid_rows])
        if scored.response is not None:
            if response is None:
                response = np.full((len(x), *scored.response.shape[1:]), np.nan)
            response[valid_rows] = scored.response
        scores.append(scored.score)
        fit_seconds += scored.fit_seconds
        predict_seconds += scored.predict_seconds_per_row
        fit_rows += len(train_rows)
        report(float(np.mean(scores)), fold)
    assert scored is not None
    return Scored(
        float(np.mean(scores)),
        fit_seconds,
        predict_seconds / len(scores),
        scored.size_bytes,
        scored.model,
        fits=len(scores),
        fit_rows=fit_rows // len(scores),
        response=response,
    )


@dataclass(frozen=True)
class EnsembleTarget:
    """What candidates' validation predictions are scored against: the labels, the folds as row numbers
    into them (under holdout, one fold: the valid split), and a classifier's classes (None: regression)."""

    y: np.ndarray
    folds: list[np.ndarray]
    classes: np.ndarray | None


def ensemble_target(data: SearchData, cfg: SearchConfig, seed: int) -> EnsembleTarget:
    """The rows and folds score_candidate scores on, for cfg's concrete validation method."""
    if cfg.validation.method == "holdout":
        return EnsembleTarget(data.y_valid.to_numpy(), [np.arange(len(data.y_valid))], data.classes)
    x, y = _train_and_valid(data)
    folds = [valid for _, valid in fold_indices(data, x, y, cfg.validation.folds, seed)]
    return EnsembleTarget(y.to_numpy(), folds, data.classes)


def _train_and_valid(data: SearchData) -> tuple[pd.DataFrame, pd.Series]:
    """The rows that k-fold CV draws its folds from, numbered from 0."""
    return (
        pd.concat([data.x_train, data.x_valid], ignore_index=True),
        pd.concat([data.y_train, data.y_valid], ignore_index=True),
    )


def fold_indices(
    data: SearchData, x: pd.DataFrame, y: pd.Series, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds over train+valid that respect data.split.strategy."""
    strategy = data.split_strategy
    if strategy == "time" and data.time is not None:
        order = np.asarray(time_order(data.time.reset_index(drop=True)))  # text dates parsed, as in the split
        return [(order[a], order[b]) for a, b in TimeSeriesSplit(n_splits=folds).split(order)]
    if strategy == "group" and data.groups is not None:
        if data.groups.nunique() < folds:
            raise ConfigError(
                f"search.validation.folds: {folds} folds need at least {folds} groups, the data has {data.groups.nunique()}"
            )
        return list(GroupKFold(n_splits=folds).split(x, y, groups=data.groups.to_numpy()))
    if strategy == "stratified" and data.task != "regression":
        if y.value_counts().min() < folds:
            raise ConfigError(
                f"search.validation.folds: a class has fewer than {folds} rows; lower the folds or use holdout"
            )
        return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))


def _fit_and_score(
    build: Callable[[], Any],
    x_fit: pd.DataFrame,
    y_fit: pd.Series,
    x_score: pd.DataFrame,
    y_score: pd.Series,
    cfg: SearchConfig,
    scorer: Any,
    task: str,
    deadline: Deadline,
    keep_response: bool = False,
    classes: np.ndarray | None = None,
) -> Scored:
    model = build()
    fit_params = (
        {"model__sample_weight": compute_sample_weight("balanced", y_fit)} if cfg.class_weight == "balanced" else {}
    )
    started = time.perf_counter()
    deadline.fit(model, x_fit, y_fit, fit_params)
    fit_seconds = time.perf_counter() - started
    sample = x_score.iloc[:LATENCY_SAMPLE_ROWS]  # enough rows to time; the scorer predicts them all anyway
    started = time.perf_counter()
    model.predict(sample)
    predict_seconds_per_row = (time.perf_counter() - started) / max(1, len(sample))
    try:
        score = float(scorer(model, x_score, y_score))
    except Exception as error:  # the model fitted and predicts: what failed is the metric
        raise MetricError(resolve_metric(cfg.metric, task), task, error) from error
    response = validation_response(model, x_score, classes) if keep_response else None
    return Scored(score, fit_seconds, predict_seconds_per_row, pickled_size(model), model, 1, len(x_fit), response)


class _ByteCounter:
    """A write-only file that keeps only the number of bytes written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, chunk: Any) -> int:
        written = memoryview(chunk).nbytes
        self.size += written
        return written


def pickled_size(model: Any) -> int:
    """The model's pickled size, counted as it streams: a forest of hundreds of MB is not copied."""
    counter = _ByteCounter()
    pickle.dump(model, counter)
    return counter.size
