"""From class probabilities to a label: one rule, shared by evaluation and serving, so that a bundle
predicts exactly what its test metrics measured."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def positive_index(classes: Any, positive: Any = None) -> int:
    """The column of the positive class in a binary model's classes_ (and predict_proba). `positive`
    is the recorded positive class (meta.json, the manifest); None, in bundles packaged before it
    was recorded, means the old rule: classes_[1]."""
    if positive is None:
        return 1
    matches = [i for i, label in enumerate(list(classes)) if label == positive]
    if not matches:
        raise ValueError(f"the positive class {positive!r} is not among the model's classes {list(classes)}")
    return matches[0]


def predict_labels(
    model: Any,
    x: pd.DataFrame,
    task: str,
    threshold: float | None = None,
    proba: np.ndarray | None = None,
    positive: Any = None,
) -> np.ndarray:
    """The predicted label (regression: value) of each row of `x`.

    Binary with a threshold: the positive class (see positive_index) where its probability is >=
    threshold, else the other class. Otherwise the model's own decision. `proba` (the model's
    predict_proba of `x`, when the caller has it) saves a second inference: a scikit-learn
    classifier's predict is the argmax, and a model that knows its own rule says so with
    `labels_from_proba` (AutoGluon's applies the decision threshold it may have tuned;
    serve.direct.DirectPipeline's is the argmax)."""
    from sklearn.base import BaseEstimator

    if task == "regression":
        return np.asarray(model.predict(x))
    classes = np.asarray(model.classes_)
    if threshold is not None and task == "binary":
        index = positive_index(classes, positive)
        score = (model.predict_proba(x) if proba is None else proba)[:, index]
        return np.where(score >= threshold, classes[index], classes[1 - index])
    if proba is not None and isinstance(model, BaseEstimator):
        return classes[proba.argmax(axis=1)]
    if proba is not None and hasattr(model, "labels_from_proba"):
        return np.asarray(model.labels_from_proba(proba))
    return np.asarray(model.predict(x))
