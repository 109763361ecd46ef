"""The metrics by name: which exist per task, which ranks models, which direction is better. No
scikit-learn here: the config checks and the gate's rules read these before any model exists."""

from __future__ import annotations

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1": True,
    "f1_macro": True,
    "log_loss": False,
    "roc_auc": True,
    "roc_auc_ovr": True,
    "pr_auc": True,
    "brier": False,
    "ece": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
}
_NAMES = {
    "binary": ["accuracy", "balanced_accuracy", "f1", "f1_macro", "log_loss", "roc_auc", "pr_auc", "brier", "ece"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr", "ece"],
    "regression": ["rmse", "mae", "r2", "mape"],
}
_PRIMARY = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def metric_names(task: str) -> list[str]:
    """Every name test_metrics can produce for the task, in its order."""
    return list(_NAMES[known_task(task)])


def primary_metric(task: str) -> str:
    """The metric that ranks models of this task: binary roc_auc, multiclass log_loss, regression rmse."""
    return _PRIMARY[known_task(task)]


def known_task(task: str) -> str:
    if task not in _NAMES:
        raise ValueError(f"task must be one of {', '.join(_NAMES)}, got {task!r}")
    return task
