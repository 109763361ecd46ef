"""Held-out test metrics: what metrics/test.json holds, what slices report per slice and what the
gate compares. Predictions are made once (`predict`), then every metric is computed from arrays."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from automlops.evaluate.decision import positive_index, predict_labels
from automlops.evaluate.names import known_task, metric_names

CALIBRATION_BINS = 10  # equal-width probability bins for ECE and the calibration plot
_NEED_EVERY_CLASS = ("f1", "roc_auc", "roc_auc_ovr", "pr_auc")  # left out when a class is absent from the rows


@dataclass(frozen=True)
class Predictions:
    """A model's answers on some rows, with the truth: everything a metric or plot needs."""

    y: np.ndarray
    predicted: np.ndarray  # labels (after any decision threshold) or regression values
    proba: np.ndarray | None  # classification: one column per class, in `classes` order
    classes: np.ndarray | None
    positive: Any = (
        None  # binary: the recorded positive class; None: classes[1] (bundles packaged before it was recorded)
    )

    def subset(self, mask: np.ndarray) -> Predictions:
        return Predictions(
            self.y[mask],
            self.predicted[mask],
            None if self.proba is None else self.proba[mask],
            self.classes,
            self.positive,
        )

    def positive_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Binary: whether each row is of the positive class, and the model's probability that it is."""
        assert self.proba is not None and self.classes is not None
        index = positive_index(self.classes, self.positive)
        return self.y == self.classes[index], self.proba[:, index]


def predict(
    model: Any, x: pd.DataFrame, y: Any, task: str, threshold: float | None = None, positive: Any = None
) -> Predictions:
    """Predict once; `threshold` and `positive` as in test_metrics."""
    if task == "regression":
        return Predictions(np.asarray(y, dtype=float), np.asarray(model.predict(x), dtype=float), None, None)
    proba = model.predict_proba(x) if hasattr(model, "predict_proba") else None
    predicted = predict_labels(model, x, task, threshold, proba, positive)
    return Predictions(
        np.asarray(y), predicted, proba, np.asarray(model.classes_), positive if task == "binary" else None
    )


def test_metrics(
    model: Any, x: pd.DataFrame, y: pd.Series, task: str, threshold: float | None = None, positive: Any = None
) -> dict[str, float]:
    """Flat test metrics of `model` on (x, y), rounded to 6 digits. Binary only: `positive` is the
    recorded positive class (meta.json, the manifest; None: classes_[1]); `threshold` predicts it
    when its probability is >= threshold, instead of the model's own decision."""
    return scores(predict(model, x, y, known_task(task), threshold, positive), task)


test_metrics.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def scores(p: Predictions, task: str, digits: int | None = 6) -> dict[str, float]:
    """The metrics of `metric_names(task)` that are defined on these rows (none is NaN)."""
    result = _regression(p) if task == "regression" else _classification(p, task)
    return {
        name: float(value) if digits is None else round(float(value), digits)
        for name, value in result.items()
        if math.isfinite(value)
    }


def _regression(p: Predictions) -> dict[str, float]:
    if not len(p.y):
        return {}
    with warnings.catch_warnings():  # r2 is undefined (NaN, then left out) on a single row
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return {
            "rmse": np.sqrt(skm.mean_squared_error(p.y, p.predicted)),
            "mae": skm.mean_absolute_error(p.y, p.predicted),
            "r2": skm.r2_score(p.y, p.predicted),
            "mape": skm.mean_absolute_percentage_error(p.y, p.predicted),
        }


def _classification(p: Predictions, task: str) -> dict[str, float]:
    if not len(p.y):
        return {}
    classes = p.classes if p.classes is not None else np.unique(p.y)
    present = np.unique(p.y)
    every = bool(np.isin(classes, present).all())
    with warnings.catch_warnings():  # on a slice missing a class, scikit-learn warns about the predicted-only classes
        warnings.simplefilter("ignore", UserWarning)
        result = {
            "accuracy": skm.accuracy_score(p.y, p.predicted),
            "balanced_accuracy": skm.balanced_accuracy_score(p.y, p.predicted),
            "f1": skm.f1_score(p.y, p.predicted, pos_label=classes[positive_index(classes, p.positive)])
            if task == "binary"
            else math.nan,
            "f1_macro": skm.f1_score(p.y, p.predicted, average="macro", labels=present, zero_division=0),
        }
    if p.proba is not None:
        order = np.argsort(classes)  # log_loss reads the columns in sorted label order, whatever `labels` says
        result["log_loss"] = skm.log_loss(p.y, p.proba[:, order], labels=classes[order])
        if task == "binary":
            hit, score = p.positive_scores()
            result["roc_auc"] = skm.roc_auc_score(hit, score) if every else math.nan
            result["pr_auc"] = skm.average_precision_score(hit, score) if every else math.nan
            result["brier"] = float(np.mean((score - hit) ** 2))
        elif every:
            result["roc_auc_ovr"] = skm.roc_auc_score(p.y, p.proba, multi_class="ovr", labels=classes)
        result["ece"] = expected_calibration_error(calibration_table(p, task))
    if not every:
        result = {name: value for name, value in result.items() if name not in _NEED_EVERY_CLASS}
    return {name: result[name] for name in metric_names(task) if name in result}


def calibration_table(p: Predictions, task: str) -> pd.DataFrame:
    """Per non-empty probability bin: mean predicted probability, observed frequency and rows.
    Binary: the positive class's probability against its frequency (as sklearn's calibration_curve);
    multiclass: the top label's probability against how often the top label is right."""
    if p.proba is None or p.classes is None:
        return pd.DataFrame(columns=["predicted", "observed", "rows"])
    if task == "binary":
        hit, score = p.positive_scores()
    else:
        score, hit = p.proba.max(axis=1), p.classes[p.proba.argmax(axis=1)] == p.y
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.searchsorted(edges[1:-1], score)  # the binning of sklearn.calibration.calibration_curve
    table = pd.DataFrame({"bin": bins, "predicted": score, "observed": hit.astype(float)})
    grouped = table.groupby("bin").agg(
        predicted=("predicted", "mean"), observed=("observed", "mean"), rows=("observed", "size")
    )
    return grouped.reset_index(drop=True)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """The row-weighted mean gap between predicted and observed over the calibration bins."""
    if table.empty:
        return math.nan
    return float(np.average((table["predicted"] - table["observed"]).abs(), weights=table["rows"]))
