"""XGBoost's classifier accepts only labels 0..k-1; every other family (and the data contract) takes
any labels: text, booleans, integers that do not start at 0. This subclass encodes them on fit and
answers in the original labels, so an xgboost model is a drop-in classifier like the others."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier


class LabelledXGBClassifier(XGBClassifier):  # type: ignore[misc]
    """XGBClassifier with `classes_` and `predict` in the training labels; `predict_proba`'s columns
    follow `classes_`, as scikit-learn's classifiers do."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> LabelledXGBClassifier:
        self.__dict__.pop("labels_", None)  # XGBClassifier.fit checks y against its own 0..k-1 classes_
        encoder = LabelEncoder().fit(np.asarray(y))
        super().fit(X, encoder.transform(np.asarray(y)), **kwargs)
        self.labels_ = encoder.classes_
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = self.__dict__.get("labels_")
        return labels if labels is not None else super().classes_

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        codes = np.asarray(super().predict(X, **kwargs)).astype(int)
        labels = self.__dict__.get("labels_")
        return labels[codes] if labels is not None else codes
