"""Greedy ensemble selection over the search's best candidates (Caruana et al., 2004), as AutoGluon's
WeightedEnsemble does: starting from the best candidate, add, with replacement, the one whose averaged
validation predictions score best, for `rounds` rounds, and keep the best-scoring prefix. The weights are
how often each candidate was picked. Scores are the trials' own: the mean over the same folds (or the valid
split) of the same scorer, so an ensemble is chosen only when it beats the best single candidate on them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

POOL = 10  # the best complete candidates, by score, that the selection may pick from


def validation_response(model: Any, x: Any, classes: np.ndarray | None) -> np.ndarray:
    """What an ensemble averages: class probabilities in the order of `classes` (a fold may lack a
    rare class; its column is then 0), or the regression predictions."""
    if classes is None:
        return np.asarray(model.predict(x), dtype=float)
    proba = np.asarray(model.predict_proba(x), dtype=float)
    full = np.zeros((len(proba), len(classes)))
    full[:, np.searchsorted(classes, np.asarray(model.classes_))] = proba
    return full


class _ReplayClassifier(ClassifierMixin, BaseEstimator):
    """Stored probabilities behind the scikit-learn estimator API, so any scorer (its response method,
    pos_label, thresholds) scores a blend exactly as it scores a fitted model: X holds row numbers."""

    def __init__(self, proba: np.ndarray, classes: np.ndarray) -> None:
        self.proba = proba
        self.classes = classes
        self.classes_ = classes

    def fit(self, x: Any, y: Any) -> _ReplayClassifier:  # pragma: no cover: never fitted
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.proba[np.asarray(x).ravel()]

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


class _ReplayRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def fit(self, x: Any, y: Any) -> _ReplayRegressor:  # pragma: no cover: never fitted
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.values[np.asarray(x).ravel()]


@dataclass(frozen=True)
class Selection:
    weights: list[float]  # per pool member, summing to 1 (0: not picked)
    score: float  # the blend's score, on the trials' basis
    single_score: float  # the best trial's (responses[0]) on the same basis: its recorded score

    @property
    def members(self) -> list[int]:
        return [i for i, w in enumerate(self.weights) if w > 0]


def blend_scorer(
    scorer: Any, y: np.ndarray, folds: Sequence[np.ndarray], classes: np.ndarray | None
) -> Callable[[np.ndarray], float]:
    """score(response) = the mean over `folds` (row numbers into `y`) of `scorer` on the blended response."""

    def score(response: np.ndarray) -> float:
        if classes is None:
            replay: Any = _ReplayRegressor(response)
        else:
            replay = _ReplayClassifier(response, classes)
        return float(np.mean([scorer(replay, rows.reshape(-1, 1), y[rows]) for rows in folds]))

    return score


def greedy_selection(
    responses: Sequence[np.ndarray],
    select_score: Callable[[np.ndarray], float],
    trial_score: Callable[[np.ndarray], float],
    rounds: int,
) -> Selection:
    """Caruana's forward selection with replacement, picking by `select_score` (one pass over every
    scored row: five times cheaper than per fold, as AutoGluon selects on its out-of-fold predictions);
    the best-scoring prefix's blend and responses[0] (the best trial) are then scored by `trial_score`,
    the basis the trials were ranked on. Ties go to the earlier (better-ranked) member."""
    total = np.zeros_like(responses[0])
    counts = np.zeros(len(responses))
    best_score, best_counts = -np.inf, counts
    for picked in range(1, rounds + 1):
        scores = [select_score((total + r) / picked) for r in responses]
        choice = int(np.argmax(scores))
        total += responses[choice]
        counts[choice] += 1
        if scores[choice] > best_score:
            best_score, best_counts = scores[choice], counts.copy()
    weights = best_counts / best_counts.sum()
    blended = sum(w * r for w, r in zip(weights, responses) if w > 0)
    return Selection([float(w) for w in weights], trial_score(blended), trial_score(responses[0]))


class _Ensemble(BaseEstimator):
    """Fitted members and their weights: what is packaged, served and monitored as one model."""

    def __init__(self, members: list[Any], weights: list[float]) -> None:
        self.members = members
        self.weights = weights


class EnsembleClassifier(ClassifierMixin, _Ensemble):
    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.members[0].classes_)

    def fit(self, x: Any, y: Any) -> EnsembleClassifier:  # pragma: no cover: the members come fitted
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        classes = self.classes_
        return sum(w * validation_response(m, x, classes) for m, w in zip(self.members, self.weights))  # type: ignore[return-value]

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


class EnsembleRegressor(RegressorMixin, _Ensemble):
    def fit(self, x: Any, y: Any) -> EnsembleRegressor:  # pragma: no cover: the members come fitted
        return self

    def predict(self, x: Any) -> np.ndarray:
        return sum(w * np.asarray(m.predict(x), dtype=float) for m, w in zip(self.members, self.weights))  # type: ignore[return-value]


def make_ensemble(members: list[Any], weights: list[float], task: str) -> _Ensemble:
    cls = EnsembleRegressor if task == "regression" else EnsembleClassifier
    return cls(members, weights)
