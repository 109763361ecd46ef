"""CatBoost's classifier answers `predict` as a column, shape (n, 1), for more than two classes;
scikit-learn's classifiers (and the evaluate and serve stages) expect a flat array of labels."""

from __future__ import annotations

from typing import Any

import numpy as np
from catboost import CatBoostClassifier


class FlatCatBoostClassifier(CatBoostClassifier):  # type: ignore[misc]
    """CatBoostClassifier whose `predict` is one label per row, in the training labels."""

    def predict(self, data: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        return np.asarray(super().predict(data, *args, **kwargs)).ravel()
