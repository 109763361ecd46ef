"""The evaluate stage: held-out test metrics of the chosen model, for DVC's metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def evaluate(model: Any, x_test: pd.DataFrame, y_test: pd.Series, task: str) -> dict[str, float]:
    from sklearn.pipeline import Pipeline

    proba = model.predict_proba(x_test) if task != "regression" and hasattr(model, "predict_proba") else None
    if proba is not None and isinstance(model, Pipeline):
        predicted = model.classes_[proba.argmax(axis=1)]  # a scikit-learn classifier's predict is this argmax: infer once
    else:
        predicted = model.predict(x_test)  # AutoGluon may apply its own tuned decision threshold
    if task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y_test, predicted))),
            "mae": float(skm.mean_absolute_error(y_test, predicted)),
            "r2": float(skm.r2_score(y_test, predicted)),
        }
    result = {
        "accuracy": float(skm.accuracy_score(y_test, predicted)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_test, predicted)),
        "f1_macro": float(skm.f1_score(y_test, predicted, average="macro")),
    }
    if proba is not None:
        classes = list(model.classes_)
        result["log_loss"] = float(skm.log_loss(y_test, proba, labels=classes))
        if y_test.nunique() == len(classes):
            if task == "binary":
                result["roc_auc"] = float(skm.roc_auc_score(y_test == classes[1], proba[:, 1]))
            else:
                result["roc_auc_ovr"] = float(skm.roc_auc_score(y_test, proba, multi_class="ovr", labels=classes))
    return {name: round(value, 6) for name, value in result.items()}
