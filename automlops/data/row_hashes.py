"""Row hashes: a compact, run-independent name for each row a model saw, so that the gate can tell
which test rows a model trained on (a new split of the same data puts training rows in the test set).

A row is hashed in its canonical model-input form (to_model_frame) with its target, so the same row
hashes the same in every run, whatever file or split it came from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from automlops.data.contract import ColumnSpec, as_text, to_model_frame

HASH_METHOD = "pandas.util.hash_pandas_object(to_model_frame(features) + target, index=False), uint64"
TARGET_COLUMN = "__target__"  # the target's column in the hashed frame; a name no feature takes


def row_hashes(features: pd.DataFrame, target: pd.Series, contract: list[ColumnSpec]) -> np.ndarray:
    """One uint64 per row, in row order. `features` must hold the contract's columns."""
    frame = to_model_frame(features[[spec.name for spec in contract]], contract)
    frame = frame.assign(**{TARGET_COLUMN: _canonical_target(target).to_numpy()})  # a copy: never the caller's frame
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def _canonical_target(target: pd.Series) -> pd.Series:
    """Numbers as float, anything else (labels, booleans) as text: the form does not depend on the
    dtype one file or split happened to give the column."""
    if pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target):
        return target.astype(float)
    return as_text(target)


def hash_set(hashes: np.ndarray) -> np.ndarray:
    """The sorted distinct hashes: the form a bundle stores (8 bytes a distinct row)."""
    return np.unique(np.asarray(hashes, dtype=np.uint64))


def seen_in(hashes: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """Which of `hashes` are in the sorted set `trained` (a boolean mask, one per row)."""
    return np.isin(hashes, trained)
