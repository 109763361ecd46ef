"""Per-slice metrics (metrics/slices.json): the test metrics again, per value of each column listed
in evaluate.slices (numeric columns: per quantile bin), so a model that fails one group shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from automlops.errors import ConfigError, unknown_name
from automlops.evaluate.metrics import Predictions, scores

MISSING = "missing"  # the slice of rows whose slice column is empty


def check_slice_columns(slices: Sequence[str], columns: Sequence[str]) -> None:
    """Every slice column must be a column of the prepared test split."""
    unknown = [name for name in slices if name not in columns]
    if unknown:
        raise ConfigError(
            "; ".join(unknown_name("evaluate.slices", name, columns) for name in unknown)
            + " (data/prepared/test.parquet holds the features, the target and any split column)"
        )


def slice_labels(column: pd.Series, bins: int) -> pd.Series:
    """Each row's slice, as text: its value, or for a numeric column with more than `bins` distinct
    values its quantile bin (an interval such as '(4.5, 6.2]', the first one closed: '[1, 4.5]');
    empty values form the slice 'missing'."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > bins:
        codes, edges = pd.qcut(column, q=bins, labels=False, retbins=True, duplicates="drop")
        order = [f"{'[' if i == 0 else '('}{edges[i]:.6g}, {edges[i + 1]:.6g}]" for i in range(len(edges) - 1)]
        labels = codes.map(lambda code: order[int(code)] if pd.notna(code) else MISSING)
    else:
        labels = column.map(_text)
        order = sorted(labels[column.notna()].unique(), key=_sort_key if numeric else str)
    labels = labels.where(column.notna(), MISSING)
    return pd.Series(
        pd.Categorical(labels, categories=list(dict.fromkeys([*order, MISSING])), ordered=True),
        index=column.index,
        name=column.name,
    )


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _sort_key(label: str) -> float:
    return float(label)


def slice_metrics(
    p: Predictions, task: str, frame: pd.DataFrame, columns: Sequence[str], bins: int, min_rows: int
) -> dict[str, dict[str, dict[str, float]]]:
    """column -> slice -> {rows, metric: value, ...}; slices under `min_rows` rows get only their size.
    `frame` holds the slice columns, row for row with `p`."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name in columns:
        labels = slice_labels(frame[name].reset_index(drop=True), bins)
        per_slice: dict[str, dict[str, float]] = {}
        for label in labels.cat.categories:
            mask = (labels == label).to_numpy()
            rows = int(mask.sum())
            if rows:
                per_slice[label] = {"rows": rows, **(scores(p.subset(mask), task) if rows >= min_rows else {})}
        result[name] = per_slice
    return result
