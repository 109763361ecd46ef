"""Which scorer ranks candidates, and whether it fits the task.

Any scikit-learn scorer name works, plus a few domain metrics. Every scorer is maximised, so
losses appear negated (neg_...), as in scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from automlops.errors import ConfigError, did_you_mean

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
BINARY_ONLY = {"roc_auc", "average_precision", "f1", "precision", "recall", "jaccard", "neg_brier_score", "gini", "pr_auc"}


def _gini(y_true: Any, y_score: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(2 * roc_auc_score(y_true, y_score) - 1)


def _rmsle(y_true: Any, y_pred: Any) -> float:
    clipped = np.clip(np.asarray(y_pred, dtype=float), 0, None)  # log1p needs non-negative predictions
    return float(np.sqrt(np.mean((np.log1p(clipped) - np.log1p(np.asarray(y_true, dtype=float))) ** 2)))


def _domain_scorers() -> dict[str, Callable[[], Any]]:
    from sklearn.metrics import average_precision_score, make_scorer

    return {
        "gini": lambda: make_scorer(_gini, response_method=("decision_function", "predict_proba")),  # 2*AUC-1, credit scoring
        "pr_auc": lambda: make_scorer(average_precision_score, response_method=("decision_function", "predict_proba")),
        "neg_rmsle": lambda: make_scorer(_rmsle, greater_is_better=False),  # counts and prices
    }


DOMAIN_METRICS = ("gini", "pr_auc", "neg_rmsle")


def scorer_names() -> list[str]:
    from sklearn.metrics import get_scorer_names

    return [*get_scorer_names(), *DOMAIN_METRICS]


def get_scorer(name: str) -> Any:
    from sklearn.metrics import get_scorer as sklearn_scorer

    domain = _domain_scorers()
    return domain[name]() if name in domain else sklearn_scorer(name)


def is_regression_metric(name: str) -> bool:
    return name in ("r2", "explained_variance", "max_error") or "error" in name or "deviance" in name or name.startswith("d2_") or name == "neg_rmsle"


def check_metric_name(name: str) -> str | None:
    """A problem sentence for an unknown scorer name, else None."""
    names = scorer_names()
    if name in names:
        return None
    return (f"search.metric: '{name}' is not a known scorer{did_you_mean(name, names)}; e.g. roc_auc, accuracy, "
            "f1_macro, neg_log_loss, r2, neg_root_mean_squared_error, gini, pr_auc, neg_rmsle")


def resolve_metric(name: str | None, task: str) -> str:
    if name is None:
        return DEFAULT_METRIC[task]
    problem = check_metric_name(name)
    if problem:
        raise ConfigError(problem)
    if (task == "regression") != is_regression_metric(name):
        raise ConfigError(f"search.metric: '{name}' does not fit a {task} task; e.g. {DEFAULT_METRIC[task]}")
    if task == "multiclass" and name in BINARY_ONLY:
        suggestion = "roc_auc_ovr" if name in ("roc_auc", "gini") else f"{name}_macro"
        raise ConfigError(f"search.metric: '{name}' is for binary tasks; use e.g. '{suggestion}'")
    return name
