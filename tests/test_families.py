"""Conformance suite for model families: every family in the registry (FAMILIES) passes the same
checks, so a newly registered family is tested without new tests. Each is a classifier for any
labels the data contract accepts: text, booleans and integers that do not start at 0 (issue 13: the
xgboost family refused text labels, so a space naming it failed every trial on the default data);
a regressor; and fits rows with gaps, whether the model takes NaN itself or is given imputation."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automlops.data.contract import infer_contract
from automlops.search.families import FAMILIES, build_pipeline, parse_space

LABELS = {
    "text": np.array(["stayed", "churned"], dtype=object),
    "boolean": np.array([False, True]),
    "offset integers": np.array([3, 7]),
    "three text classes": np.array(["a", "b", "c"], dtype=object),
}
OPTIONAL = {"xgboost", "catboost"}  # families whose library may be missing
INSTALLED = [f for f in FAMILIES.names() if f not in OPTIONAL or importlib.util.find_spec(f) is not None]


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


def _frame(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(np.array(["u", "v"], dtype=object), n)})


@pytest.mark.parametrize("family", INSTALLED)
def test_every_family_is_a_regressor(family: str) -> None:
    x = _frame(np.random.default_rng(1))
    y = 3.0 * x["a"] + (x["b"] == "u") + 10.0
    model = build_pipeline(family, {}, {}, infer_contract(x), "regression", 0, 1).fit(x, y)
    model = pickle.loads(pickle.dumps(model))
    predicted = np.asarray(model.predict(x), dtype=float)
    assert predicted.shape == (len(x),) and np.isfinite(predicted).all()
    assert np.corrcoef(predicted, y)[0, 1] > 0.9


@pytest.mark.parametrize("family", INSTALLED)
def test_every_family_fits_and_answers_rows_with_gaps(family: str) -> None:
    rng = np.random.default_rng(2)
    x = _frame(rng)
    y = np.where(x["a"] > 0, "high", "low")
    x.loc[rng.choice(len(x), 40, replace=False), "a"] = np.nan
    x.loc[rng.choice(len(x), 40, replace=False), "b"] = None
    model = build_pipeline(family, {}, {}, infer_contract(x), "binary", 0, 1).fit(x, y)
    assert set(model.predict(x).tolist()) <= {"high", "low"}
    assert np.isfinite(model.predict_proba(x)).all()


def test_catboost_takes_gaps_and_categories_uses_the_threads_given_and_writes_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("catboost")
    monkeypatch.chdir(tmp_path)  # CatBoost writes catboost_info/ into the working directory unless told not to
    rng = np.random.default_rng(3)
    x = _frame(rng)
    y = np.where(x["a"] > 0, "high", "low")
    x.loc[rng.choice(len(x), 40, replace=False), "a"] = np.nan  # reaches CatBoost as NaN (TREES: no imputer)
    model = build_pipeline("catboost", {"n_estimators": 30, "depth": 4}, {}, infer_contract(x), "binary", 0, 2).fit(
        x, y
    )
    assert model.named_steps["model"].get_params()["thread_count"] == 2
    assert model.named_steps["model"].tree_count_ == 30
    assert (model.predict(x) == y).mean() > 0.8
    assert list(tmp_path.iterdir()) == []
    # its search space takes CatBoost's own parameter names, which its get_params does not list
    problems: list[str] = []
    parse_space(
        {"catboost": {"depth": {"type": "int", "low": 4, "high": 8}, "l2_leaf_reg": 3.0, "thread_count": 4}}, problems
    )
    assert len(problems) == 1  # the thread count is search.threads'
    assert problems[0].startswith("search.space.catboost.thread_count: 'catboost' has no parameter 'thread_count'")
