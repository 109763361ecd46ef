"""Per-column statistics of a table: the reference that drift is measured against.

The prepare stage computes them over the rows the model learns from (train + valid), the bundle keeps
them beside the data hash, and `automlops monitor` computes a batch's statistics on the reference's
own bins, so the two compare bin for bin without the training rows at hand (TFX's StatisticsGen)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from automlops.records import PreparedMeta

SAMPLE_ROWS = 1000  # a reference this small keeps its values: drift then uses exact two-sample tests
QUANTILES = np.linspace(0.0, 1.0, 101)  # percentiles: a numeric column's shape, and its Wasserstein distance
HISTOGRAM_BINS = 20  # quantile bins of the reference: PSI and the report's histograms
DISCRETE_LEVELS = 20  # a numeric column with at most this many values gets one bin per value
TOP_CATEGORIES = 100  # levels counted by name; rarer ones are pooled under OTHER
OTHER = "__other__"
NEW_LEVELS_SHOWN = 10  # a batch's most frequent levels unknown to the reference, named in its statistics
OTHER_BUCKETS = 64  # unnamed levels are pooled by a stable hash into this many buckets, so a new level
# stands out in its bucket instead of vanishing into one pool of thousands of rare levels
NUMERIC, CATEGORICAL = "numeric", "categorical"


def training_statistics(rows: pd.DataFrame, meta: PreparedMeta) -> dict[str, Any]:
    """The reference: the rows the model learns from (train + valid, as prepared), tied to the data hash."""
    kinds = {spec["name"]: spec["kind"] for spec in meta.contract}
    target_kind = NUMERIC if meta.task == "regression" else CATEGORICAL
    stats = table_statistics(rows, kinds)
    stats["target"] = table_statistics(rows, {meta.target: target_kind})["columns"][meta.target]
    return {**stats, "data_hash": meta.data_hash}


def prediction_statistics(predictions: pd.Series, task: str) -> dict[str, Any]:
    """The model's answers on held-out rows at packaging time: the reference for prediction drift."""
    if task == "regression":
        return numeric_statistics(predictions)
    return categorical_statistics(predictions.astype(str))


def table_statistics(
    frame: pd.DataFrame, kinds: dict[str, str], reference: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Statistics of each column in `kinds` (name -> numeric | categorical). With a reference, numeric
    histograms use the reference's bin edges, so bins line up for the drift tests."""
    columns = {}
    for name, kind in kinds.items():
        ref = (reference or {}).get("columns", {}).get(name)
        series = frame[name]
        if kind == NUMERIC:
            columns[name] = numeric_statistics(series, ref["histogram"]["edges"] if ref else None)
        else:
            columns[name] = categorical_statistics(series, list(ref["counts"]) if ref else None)
    return {"rows": len(frame), "columns": columns}


def numeric_statistics(series: pd.Series, edges: list[float] | None = None) -> dict[str, Any]:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = values[np.isfinite(values)]
    stats: dict[str, Any] = {
        "kind": NUMERIC,
        "rows": len(values),
        "missing": _share(len(values) - len(present), len(values)),
    }
    if not len(present):
        return {
            **stats,
            "distinct": 0,
            "histogram": {"edges": edges or [], "counts": [0] * max(len(edges or []) - 1, 0)},
        }
    present.sort()  # one sort serves the quantiles, the distinct count and the bins
    distinct = int(np.count_nonzero(np.diff(present))) + 1
    stats.update(
        distinct=distinct,
        min=float(present[0]),
        max=float(present[-1]),
        mean=float(present.mean()),
        std=float(present.std()),
        quantiles=_sorted_quantiles(present).tolist(),
    )
    edges = edges if edges is not None else _bin_edges(present, distinct)
    stats["histogram"] = {"edges": edges, "counts": bin_counts(present, edges).tolist()}
    if len(present) <= SAMPLE_ROWS:
        stats["values"] = present.tolist()
    return stats


def categorical_statistics(series: pd.Series, levels: list[str] | None = None) -> dict[str, Any]:
    """Counts of the most frequent levels, the rest pooled under `other`. With `levels` (the reference's
    named ones) a batch is counted on exactly those, so both sides name the same levels; whatever else
    it holds is pooled, and the most frequent such new levels are also named in `new`."""
    present = series.dropna()
    counts = present.astype(str).value_counts()
    named = counts.head(TOP_CATEGORIES) if levels is None else counts.reindex(levels, fill_value=0)
    unnamed = counts.drop(named.index, errors="ignore")
    stats: dict[str, Any] = {
        "kind": CATEGORICAL,
        "rows": len(series),
        "missing": _share(len(series) - len(present), len(series)),
        "distinct": int(len(counts)),
        "counts": {str(k): int(v) for k, v in named.items()},
        "other": int(unnamed.sum()),
    }
    if len(unnamed):
        buckets = (
            pd.util.hash_array(unnamed.index.to_numpy(dtype=object)) % OTHER_BUCKETS
        )  # fixed hash key: stable across runs
        stats["other_buckets"] = (
            np.bincount(buckets.astype(np.int64), weights=unnamed.to_numpy(), minlength=OTHER_BUCKETS)
            .astype(int)
            .tolist()
        )
    if levels is not None:
        stats["new"] = {str(k): int(v) for k, v in unnamed.head(NEW_LEVELS_SHOWN).items()}
    return stats


def bin_counts(sorted_values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin; values beyond the outer edges fall into the outer bins, so a batch that moved
    out of the training range still shows up (and is counted) in the histogram."""
    if len(edges) < 2:
        return np.zeros(0, dtype=int)
    inner = np.asarray(edges[1:-1], dtype=float)
    # the values are sorted: find where each inner edge falls among them (a few lookups, not one per value);
    # a bin holds the values from its left edge (included) to its right one (excluded)
    below = np.searchsorted(sorted_values, inner, side="left")
    return np.diff(np.concatenate(([0], below, [len(sorted_values)])))


def _bin_edges(sorted_values: np.ndarray, distinct: int) -> list[float]:
    if distinct <= DISCRETE_LEVELS:  # one bin per value, split halfway between neighbours
        levels = np.unique(sorted_values)
        middles = (levels[1:] + levels[:-1]) / 2
        return [float(levels[0]), *middles.tolist(), float(levels[-1])]
    edges = np.unique(_sorted_quantiles(sorted_values, np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)))
    return edges.tolist()


def _sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray = QUANTILES) -> np.ndarray:
    """np.quantile's linear rule on values already sorted (no second sort of a million rows)."""
    position = q * (len(sorted_values) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _share(part: int, whole: int) -> float:
    return float(part / whole) if whole else 0.0
