"""Which scikit-learn scorer ranks candidates, and whether it fits the task."""

from __future__ import annotations

from automlops.errors import ConfigError, did_you_mean

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "neg_log_loss", "regression": "neg_root_mean_squared_error"}
BINARY_ONLY = {"roc_auc", "average_precision", "f1", "precision", "recall", "jaccard", "neg_brier_score"}


def scorer_names() -> list[str]:
    from sklearn.metrics import get_scorer_names

    return list(get_scorer_names())


def is_regression_metric(name: str) -> bool:
    return name in ("r2", "explained_variance", "max_error") or "error" in name or "deviance" in name or name.startswith("d2_")


def check_metric_name(name: str) -> str | None:
    """A problem sentence for an unknown scorer name, else None."""
    names = scorer_names()
    if name in names:
        return None
    return f"search.metric: '{name}' is not a scikit-learn scorer{did_you_mean(name, names)}; e.g. roc_auc, accuracy, f1_macro, neg_log_loss, r2, neg_root_mean_squared_error"


def resolve_metric(name: str | None, task: str) -> str:
    if name is None:
        return DEFAULT_METRIC[task]
    problem = check_metric_name(name)
    if problem:
        raise ConfigError(problem)
    if (task == "regression") != is_regression_metric(name):
        raise ConfigError(f"search.metric: '{name}' does not fit a {task} task; e.g. {DEFAULT_METRIC[task]}")
    if task == "multiclass" and name in BINARY_ONLY:
        raise ConfigError(f"search.metric: '{name}' is for binary tasks; use '{name}_macro' or '{'roc_auc_ovr' if name == 'roc_auc' else name + '_weighted'}'")
    return name
