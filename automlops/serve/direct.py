"""A fitted scikit-learn pipeline called step by step, for one-row latency.

Pipeline.predict and ColumnTransformer.transform check their input on every call (fitted state,
feature names, metadata routing, column lookups through pandas): on a one-row request that costs
about as much as a LightGBM model itself, ~1 ms of ~2 ms. A server has already typed and checked
each row against the bundle's contract, so it calls the same fitted steps, in the same order, on
the same column slices. Used only for the pipeline shape automlops builds (a ColumnTransformer,
then the model), and only when it answers the bundle's input example, plus a row of gaps and
unseen categories, exactly as the pipeline does; anything else is served by the pipeline itself."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from automlops.data.contract import CATEGORICAL, ColumnSpec

log = logging.getLogger("automlops.serve")
UNSEEN = "__automlops_unseen_category__"


class DirectPipeline:
    """`predict` and `predict_proba` of a Pipeline([ColumnTransformer, ..., model]), step by step."""

    def __init__(self, pipeline: Any) -> None:
        (_, columns), *middle, (_, model) = pipeline.steps
        self.pipeline = pipeline
        self.columns = [(step, list(names)) for _, step, names in columns.transformers_ if not _dropped(step)]
        self.sparse = bool(getattr(columns, "sparse_output_", False))  # one-hot columns kept sparse for the model
        self.middle = [step for _, step in middle]
        self.model = model
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_
        if hasattr(model, "predict_proba"):
            self.predict_proba = lambda x: self.model.predict_proba(self.transform(x))

    def transform(self, x: pd.DataFrame) -> Any:
        out = _stack([_apply(step, x[names]) for step, names in self.columns], self.sparse)
        for step in self.middle:
            out = _apply(step, out)
        return out

    def predict(self, x: pd.DataFrame) -> Any:
        return self.model.predict(self.transform(x))

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """A scikit-learn classifier's predict is the argmax of its predict_proba."""
        return np.asarray(self.classes_)[proba.argmax(axis=1)]


def direct_pipeline(model: Any, example: pd.DataFrame, contract: list[ColumnSpec]) -> DirectPipeline | None:
    """The model called step by step when that gives the same answers; None otherwise."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not (isinstance(model, Pipeline) and len(model.steps) >= 2 and isinstance(model.steps[0][1], ColumnTransformer)):
        return None
    try:
        direct = DirectPipeline(model)
        for rows in (example, _edge_row(example, contract)):
            if not _same_answers(model, direct, rows):
                log.debug("serving the pipeline as it is: called step by step it answers differently")
                return None
    except Exception as error:  # a shape this module does not know: serve the pipeline as it is
        log.debug("serving the pipeline as it is: %s", error)
        return None
    return direct


def _stack(parts: list[Any], sparse: bool) -> Any:
    """The parts side by side, as the ColumnTransformer stacks them: one CSR matrix or one array."""
    from scipy import sparse as sp

    if sparse:
        return sp.hstack(parts).tocsr()
    return np.hstack([part.toarray() if sp.issparse(part) else part for part in parts])


def _dropped(step: Any) -> bool:
    return isinstance(step, str) and step == "drop"


def _apply(step: Any, x: Any) -> Any:
    if hasattr(step, "steps"):  # a Pipeline inside the ColumnTransformer: its steps in turn
        for _, inner in step.steps:
            x = _apply(inner, x)
        return x
    if isinstance(step, str):  # "passthrough" (fitted ColumnTransformers hold a FunctionTransformer instead)
        return x
    return step.transform(x)


def _edge_row(example: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """The example's first row with every nullable value missing and every category unseen."""
    row = example.iloc[:1].copy()
    for spec in contract:
        if spec.kind == CATEGORICAL:
            row[spec.name] = np.nan if spec.nullable else UNSEEN
        elif spec.nullable:
            row[spec.name] = np.nan
    return row


def _same_answers(pipeline: Any, direct: DirectPipeline, x: pd.DataFrame) -> bool:
    try:
        expected = [pipeline.predict(x)] + ([pipeline.predict_proba(x)] if hasattr(pipeline, "predict_proba") else [])
    except Exception:  # rows the pipeline itself refuses say nothing about the direct path
        return True
    got = [direct.predict(x)] + ([direct.predict_proba(x)] if hasattr(pipeline, "predict_proba") else [])
    return all(_equal(a, b) for a, b in zip(expected, got))


def _equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
