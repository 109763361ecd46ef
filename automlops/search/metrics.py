"""Which scorer ranks candidates, and whether it fits the task.

Any scikit-learn scorer name works, plus a few domain metrics. Every scorer is maximised, so
losses appear negated (neg_...), as in scikit-learn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from automlops.errors import ConfigError, did_you_mean

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
BINARY_ONLY = {
    "roc_auc",
    "average_precision",
    "f1",
    "precision",
    "recall",
    "jaccard",
    "neg_brier_score",
    "gini",
    "pr_auc",
    "positive_likelihood_ratio",
    "neg_negative_likelihood_ratio",
}
# about one class, the positive one: built on the recorded positive class (data.positive_class), not scikit-learn's pos_label=1
POSITIVE_CLASS_METRICS = (
    "average_precision",
    "pr_auc",
    "f1",
    "precision",
    "recall",
    "jaccard",
    "neg_brier_score",
    "positive_likelihood_ratio",
    "neg_negative_likelihood_ratio",
)


def _gini(y_true: Any, y_score: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(2 * roc_auc_score(y_true, y_score) - 1)


def _rmsle(y_true: Any, y_pred: Any) -> float:
    clipped = np.clip(np.asarray(y_pred, dtype=float), 0, None)  # log1p needs non-negative predictions
    return float(np.sqrt(np.mean((np.log1p(clipped) - np.log1p(np.asarray(y_true, dtype=float))) ** 2)))


def _likelihood_ratio(y_true: Any, y_pred: Any, positive: Any, which: int) -> float:
    """class_likelihood_ratios()[which] with `positive` as the positive class (scikit-learn takes the
    second of `labels`, sorted by default)."""
    from sklearn.metrics import class_likelihood_ratios

    others = [
        label for label in np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)])) if label != positive
    ]
    return float(class_likelihood_ratios(y_true, y_pred, labels=[*others[:1], positive])[which])


def _positive_class_scorer(name: str, positive: Any) -> Any:
    """A binary scorer of POSITIVE_CLASS_METRICS about `positive`. With a probability response, scikit-learn
    takes the probability of the class named by pos_label, wherever it sits in the model's classes_."""
    from sklearn import metrics as skm

    ranking = ("decision_function", "predict_proba")
    if name in ("average_precision", "pr_auc"):
        return skm.make_scorer(skm.average_precision_score, response_method=ranking, pos_label=positive)
    if name == "neg_brier_score":
        return skm.make_scorer(
            skm.brier_score_loss, greater_is_better=False, response_method="predict_proba", pos_label=positive
        )
    if name == "positive_likelihood_ratio":
        return skm.make_scorer(_likelihood_ratio, positive=positive, which=0)
    if name == "neg_negative_likelihood_ratio":
        return skm.make_scorer(_likelihood_ratio, greater_is_better=False, positive=positive, which=1)
    label_metric = {
        "f1": skm.f1_score,
        "precision": skm.precision_score,
        "recall": skm.recall_score,
        "jaccard": skm.jaccard_score,
    }
    return skm.make_scorer(label_metric[name], pos_label=positive)


def _domain_scorers() -> dict[str, Callable[[], Any]]:
    from sklearn.metrics import average_precision_score, make_scorer

    return {
        "gini": lambda: make_scorer(
            _gini, response_method=("decision_function", "predict_proba")
        ),  # 2*AUC-1, credit scoring
        "pr_auc": lambda: make_scorer(average_precision_score, response_method=("decision_function", "predict_proba")),
        "neg_rmsle": lambda: make_scorer(_rmsle, greater_is_better=False),  # counts and prices
    }


DOMAIN_METRICS = ("gini", "pr_auc", "neg_rmsle")


def scorer_names() -> list[str]:
    from sklearn.metrics import get_scorer_names

    return [*get_scorer_names(), *DOMAIN_METRICS]


def get_scorer(name: str, positive: Any = None) -> Any:
    """The scorer called `name`; `positive`, for a binary task, the class the metrics of
    POSITIVE_CLASS_METRICS are about (None: scikit-learn's own pos_label=1)."""
    from sklearn.metrics import get_scorer as sklearn_scorer

    if positive is not None and name in POSITIVE_CLASS_METRICS:
        return _positive_class_scorer(name, positive)
    domain = _domain_scorers()
    return domain[name]() if name in domain else sklearn_scorer(name)


def is_regression_metric(name: str) -> bool:
    return (
        name in ("r2", "explained_variance", "max_error")
        or "error" in name
        or "deviance" in name
        or name.startswith("d2_")
        or name == "neg_rmsle"
    )


def check_metric_name(name: str) -> str | None:
    """A problem sentence for an unknown scorer name, else None."""
    names = scorer_names()
    if name in names:
        return None
    return (
        f"search.metric: '{name}' is not a known scorer{did_you_mean(name, names)}; e.g. roc_auc, accuracy, "
        "f1_macro, neg_log_loss, r2, neg_root_mean_squared_error, gini, pr_auc, neg_rmsle"
    )


def resolve_metric(name: str | None, task: str) -> str:
    if name is None:
        return DEFAULT_METRIC[task]
    problem = check_metric_name(name)
    if problem:
        raise ConfigError(problem)
    if name.endswith("_samples"):
        raise ConfigError(
            f"search.metric: '{name}' is for multilabel targets, which automlops does not fit; "
            f"use e.g. '{name.removesuffix('_samples')}_macro'"
        )
    if (task == "regression") != is_regression_metric(name):
        raise ConfigError(f"search.metric: '{name}' does not fit a {task} task; e.g. {DEFAULT_METRIC[task]}")
    if task == "multiclass" and name in BINARY_ONLY:
        suggestion = "roc_auc_ovr" if name in ("roc_auc", "gini") else f"{name}_macro"
        suggestion = suggestion if suggestion in scorer_names() else DEFAULT_METRIC[task]
        raise ConfigError(f"search.metric: '{name}' is for binary tasks; use e.g. '{suggestion}'")
    return name


class MetricError(ConfigError):
    """search.metric cannot score this data (raised before the first trial, or by a trial)."""

    def __init__(self, name: str, task: str, error: Exception) -> None:
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        super().__init__(
            f"search.metric: '{name}' cannot score this {task} data ({reason}); choose another search.metric "
            f"(e.g. {DEFAULT_METRIC[task]}), check data.positive_class, or use search.validation.method=holdout "
            "if a fold lacks a class"
        )


def check_metric_on_data(name: str, scorer: Any, x: pd.DataFrame, y: pd.Series, task: str) -> None:
    """Score a constant model (the class shares, or the mean) with the search metric before any trial:
    a metric that cannot score this data fails here, once, naming search.metric, instead of failing
    every trial."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    model = DummyRegressor() if task == "regression" else DummyClassifier(strategy="prior")
    with warnings.catch_warnings():  # a constant model makes some metrics undefined; only errors matter here
        warnings.simplefilter("ignore")
        try:
            scorer(model.fit(x, y), x, y)
        except Exception as error:  # whatever scikit-learn raises, the cause is the metric on this data
            raise MetricError(name, task, error) from error
