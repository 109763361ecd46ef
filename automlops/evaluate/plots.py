"""The tables behind the DVC plots under metrics/plots/ (dvc.yaml's evaluate stage says how each
renders). Every file is always written, so the stage's outputs never depend on the task: a plot
that does not apply (ROC for regression, residuals for classification) holds only its header,
and `dvc plots show` draws nothing for it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from automlops.evaluate.metrics import Predictions, calibration_table, predict, scores
from automlops.evaluate.names import HIGHER_IS_BETTER, primary_metric

PLOT_FILES: dict[str, list[str]] = {  # file -> its columns
    "confusion.csv": ["actual", "predicted"],  # one row per test row; DVC's confusion template counts them
    "roc.csv": ["fpr", "tpr", "threshold"],  # binary; threshold: the evaluate.threshold giving that point
    "precision_recall.csv": ["recall", "precision", "threshold"],  # binary
    "calibration.csv": [
        "predicted",
        "observed",
        "rows",
    ],  # per probability bin (binary: positive class; multiclass: top label)
    "residuals.csv": ["predicted", "residual"],  # regression: residual = actual - predicted
    "importance.csv": ["feature", "importance", "std"],  # permutation importance on the primary metric
}
MAX_POINTS = 5000  # residual points drawn at most; larger test splits are sampled (seeded)
MIN_IMPORTANCE_ROWS = 200  # the time cap shrinks importance's row sample no further (then it runs fewer repeats)
log = logging.getLogger(__name__)


def empty_tables() -> dict[str, pd.DataFrame]:
    """Every file of PLOT_FILES with its header only (what evaluate.plots=false writes)."""
    return {name: pd.DataFrame(columns=columns) for name, columns in PLOT_FILES.items()}


def plot_tables(
    p: Predictions, task: str, importance: pd.DataFrame | None = None, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """File name -> table, for every file of PLOT_FILES (empty, header only, when it does not apply)."""
    tables = empty_tables()
    if task == "regression":
        residuals = pd.DataFrame({"predicted": p.predicted, "residual": p.y - p.predicted})
        tables["residuals.csv"] = (
            residuals.sample(MAX_POINTS, random_state=seed) if len(residuals) > MAX_POINTS else residuals
        )
    else:
        tables["confusion.csv"] = pd.DataFrame({"actual": p.y, "predicted": p.predicted}).astype(str)
        tables["calibration.csv"] = calibration_table(p, task)
        if task == "binary" and p.proba is not None and p.classes is not None and len(np.unique(p.y)) == 2:
            tables.update(_curves(*p.positive_scores()))
    if importance is not None:
        tables["importance.csv"] = importance
    return {name: table[PLOT_FILES[name]].round(6) for name, table in tables.items()}


def _curves(positive: np.ndarray, score: np.ndarray) -> dict[str, pd.DataFrame]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, roc_thresholds = roc_curve(positive, score)
    precision, recall, pr_thresholds = precision_recall_curve(positive, score)
    pr_thresholds = np.append(pr_thresholds, np.nan)  # the last point (recall 0) has no threshold
    return {
        "roc.csv": pd.DataFrame(
            {"fpr": fpr, "tpr": tpr, "threshold": roc_thresholds}
        ),  # the first is inf: nothing positive
        "precision_recall.csv": pd.DataFrame({"recall": recall, "precision": precision, "threshold": pr_thresholds}),
    }


class _Fitted:
    """permutation_importance insists on an estimator with `fit`; an AutoGluon model has none, and
    the scorer below only needs the model to predict."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, *args: Any, **kwargs: Any) -> _Fitted:
        return self


def importance_table(
    model: Any,
    x: pd.DataFrame,
    y: pd.Series,
    task: str,
    threshold: float | None,
    repeats: int,
    seed: int,
    max_rows: int | None = None,
    seconds: float | None = None,
    positive: Any = None,
) -> pd.DataFrame:
    """Per feature: how much the primary metric worsens, on average over `repeats` shuffles of that
    column of (x, y), with its standard deviation; most important first. The primary metric must be
    defined on these rows (roc_auc needs both classes). It runs on a seeded sample of at most
    `max_rows` rows, fewer when one timed scoring pass shows the whole would take longer than
    `seconds`; the repeats run one round (every feature shuffled once) at a time, and no round starts
    after `seconds`, so the cap holds to within one round and at least one round always runs."""
    from sklearn.inspection import permutation_importance

    metric = primary_metric(task)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0

    def scorer(estimator: _Fitted, x_: pd.DataFrame, y_: Any) -> float:
        return sign * scores(predict(estimator.model, x_, y_, task, threshold, positive), task, digits=None).get(
            metric, math.nan
        )

    started = time.perf_counter()
    rows = len(x) if max_rows is None else min(len(x), max_rows)
    if seconds is not None:
        sample_x, sample_y = _sample(x, y, rows, seed)
        scorer(_Fitted(model), sample_x, sample_y)  # one pass, to see what the (1 + columns) x repeats passes cost
        one_pass = time.perf_counter() - started
        expected = one_pass * (1 + len(x.columns)) * repeats
        left = seconds - one_pass  # the cap includes this pass
        if expected > left:  # scoring time grows with the rows
            rows = min(rows, max(MIN_IMPORTANCE_ROWS, int(rows * max(left, 0.0) / expected)))
    x, y = _sample(x, y, rows, seed)
    rounds: list[np.ndarray] = []
    while len(rounds) < repeats:
        round_started = time.perf_counter()
        result = permutation_importance(
            _Fitted(model), x, y, scoring=scorer, n_repeats=1, random_state=seed + len(rounds)
        )
        rounds.append(result.importances[:, 0])
        now = time.perf_counter()
        if seconds is not None and now + (now - round_started) > started + seconds:
            break
    importances = np.column_stack(rounds)
    log.info(
        "permutation importance: %d features x %d repeats on %d test rows (%.1f s)",
        len(x.columns),
        len(rounds),
        len(x),
        time.perf_counter() - started,
    )
    table = pd.DataFrame({"feature": x.columns, "importance": importances.mean(axis=1), "std": importances.std(axis=1)})
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _sample(x: pd.DataFrame, y: pd.Series, rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """At most `rows` rows of (x, y), drawn the same way for the same seed."""
    if rows >= len(x):
        return x, y
    picked = np.sort(np.random.default_rng(seed).choice(len(x), size=rows, replace=False))
    return x.iloc[picked], y.iloc[picked]
