"""Every model family is a classifier for any labels the data contract accepts: text, booleans and
integers that do not start at 0 (issue 13: the xgboost family refused text labels, so a space
naming it failed every trial on the default data)."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pandas as pd
import pytest

from automlops.data.contract import infer_contract
from automlops.search.families import FAMILIES, build_pipeline

LABELS = {
    "text": np.array(["stayed", "churned"], dtype=object),
    "boolean": np.array([False, True]),
    "offset integers": np.array([3, 7]),
    "three text classes": np.array(["a", "b", "c"], dtype=object),
}
INSTALLED = [f for f in FAMILIES.names() if f != "xgboost" or importlib.util.find_spec("xgboost") is not None]


@pytest.mark.parametrize("kind", LABELS)
@pytest.mark.parametrize("family", INSTALLED)
def test_every_family_answers_in_the_training_labels(family: str, kind: str) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(np.array(["u", "v"], dtype=object), 300)})
    labels = LABELS[kind]
    y = labels[np.digitize(x["a"], np.quantile(x["a"], np.linspace(0, 1, len(labels) + 1)[1:-1]))]
    task = "binary" if len(labels) == 2 else "multiclass"
    model = build_pipeline(family, {}, {}, infer_contract(x), task, 0, 1).fit(x, y)
    model = pickle.loads(pickle.dumps(model))  # as the bundle stores it
    assert list(model.classes_) == sorted(labels.tolist())
    predicted = model.predict(x)
    assert set(predicted.tolist()) <= set(labels.tolist())
    assert (predicted == y).mean() > 0.8
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), len(labels))
    assert (model.classes_[proba.argmax(axis=1)] == predicted).mean() > 0.99  # columns follow classes_
