"""From class probabilities to a label: one rule, shared by evaluation and serving, so that a bundle
predicts exactly what its test metrics measured."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def predict_labels(model: Any, x: pd.DataFrame, task: str, threshold: float | None = None,
                   proba: np.ndarray | None = None) -> np.ndarray:
    """The predicted label (regression: value) of each row of `x`.

    Binary with a threshold: `classes_[1]` where its probability is >= threshold, else `classes_[0]`.
    Otherwise the model's own decision. `proba` (the model's predict_proba of `x`, when the caller
    has it) saves a scikit-learn classifier a second inference: its predict is the argmax (so is a
    wrapper's that says `argmax_predict`, e.g. serve.direct.DirectPipeline). AutoGluon is always
    asked for its own predict, which may apply a decision threshold it tuned itself."""
    from sklearn.base import BaseEstimator

    if task == "regression":
        return np.asarray(model.predict(x))
    classes = np.asarray(model.classes_)
    if threshold is not None and task == "binary":
        positive = (model.predict_proba(x) if proba is None else proba)[:, 1]
        return np.where(positive >= threshold, classes[1], classes[0])
    if proba is not None and (isinstance(model, BaseEstimator) or getattr(model, "argmax_predict", False)):
        return classes[proba.argmax(axis=1)]
    return np.asarray(model.predict(x))
