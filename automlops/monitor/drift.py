"""Drift tests: one column of a batch against the same column of the training snapshot.

The test follows the column's type and the reference's size, as Evidently and TFX choose them: a small
reference (its values kept in the statistics) gets exact two-sample tests, KS for numbers and
chi-squared for categories, judged by p-value; a large one gets distances that do not call every tiny
shift significant, Wasserstein (in reference standard deviations) for numbers and Jensen-Shannon for
categories. PSI is there for teams that report it. A change in the share of missing values is tested on
its own, since the tests above only see the values that are present."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from automlops.monitor.checks import P_VALUE_METHODS
from automlops.monitor.stats import NUMERIC, OTHER, OTHER_BUCKETS, QUANTILES, categorical_statistics, numeric_statistics

PSI_FLOOR = 1e-4  # an empty bin's share in PSI (the log of zero is undefined)


@dataclass(frozen=True)
class ColumnTest:
    """How one column is tested: the method and the threshold that calls it drifted."""

    method: str
    threshold: float


def choose_method(kind: str, reference: dict[str, Any]) -> str:
    """auto: exact tests while the reference kept its values, distances beyond that."""
    if kind == NUMERIC:
        return "ks" if "values" in reference else "wasserstein"
    return "chisquare" if reference.get("rows", 0) - _missing_rows(reference) <= 1000 else "jensenshannon"


def column_drift(
    name: str, kind: str, reference: dict[str, Any], series: pd.Series, test: ColumnTest, max_missing_change: float
) -> dict[str, Any]:
    """The batch's statistics for the column (on the reference's bins), the test's figure and verdict."""
    if kind == NUMERIC:
        current = numeric_statistics(series, reference.get("histogram", {}).get("edges"))
        values = None
        if test.method == "ks":  # the only test that needs the batch's values themselves
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            values = values[np.isfinite(values)]
        statistic = _numeric_statistic(test.method, reference, current, values)
    else:
        current = categorical_statistics(series, list(reference["counts"]))
        statistic = _categorical_statistic(test.method, reference, current)
    drifted_values = statistic is not None and (
        statistic < test.threshold if test.method in P_VALUE_METHODS else statistic >= test.threshold
    )
    missing_change = current["missing"] - reference.get("missing", 0.0)
    drifted_missing = abs(missing_change) > max_missing_change
    return {
        "column": name,
        "kind": kind,
        "method": test.method,
        "statistic": statistic,
        "threshold": test.threshold,
        "drifted": bool(drifted_values or drifted_missing),
        "values_drifted": bool(drifted_values),
        "missing": {
            "reference": reference.get("missing", 0.0),
            "current": current["missing"],
            "change": missing_change,
            "threshold": max_missing_change,
            "drifted": bool(drifted_missing),
        },
        "reference": _plot_data(reference),
        "current": _plot_data(current),
    }


def _numeric_statistic(
    method: str, reference: dict[str, Any], current: dict[str, Any], values: np.ndarray | None
) -> float | None:
    """None when either side has no values to compare (the missing-rate test still speaks). `values`: the
    batch's finite values, for ks only."""
    if current.get("distinct", 0) == 0 or reference.get("distinct", 0) == 0:
        return None
    if method == "ks":
        assert values is not None
        return float(scipy_stats.ks_2samp(np.asarray(reference["values"]), values).pvalue)
    if method == "wasserstein":
        return _normed_wasserstein(reference, current)
    ref_counts = np.asarray(reference["histogram"]["counts"], dtype=float)
    cur_counts = np.asarray(current["histogram"]["counts"], dtype=float)
    return _compare_counts(method, ref_counts, cur_counts)


def _categorical_statistic(method: str, reference: dict[str, Any], current: dict[str, Any]) -> float | None:
    """On the reference's named levels plus the hashed pool of the others: a batch's unseen level lands in a bucket where
    the reference has only its rare levels (or nothing), so a new level shows as a shift."""
    levels = list(reference["counts"])
    ref_counts = np.concatenate([[reference["counts"][level] for level in levels], _pool(reference)]).astype(float)
    cur_counts = np.concatenate([[current["counts"].get(level, 0) for level in levels], _pool(current)]).astype(float)
    if not ref_counts.sum() or not cur_counts.sum():
        return None
    return _compare_counts(method, ref_counts, cur_counts)


def _pool(stats: dict[str, Any]) -> np.ndarray:
    """The unnamed levels' counts by hash bucket (all zero when every level is named)."""
    return np.asarray(stats.get("other_buckets") or [0] * OTHER_BUCKETS, dtype=float)


def _compare_counts(method: str, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    keep = (ref_counts + cur_counts) > 0
    ref_counts, cur_counts = ref_counts[keep], cur_counts[keep]
    if method == "chisquare":
        if len(ref_counts) < 2:
            return 1.0  # one level on both sides: nothing moved
        return float(scipy_stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))[1])
    ref_share, cur_share = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    if method == "jensenshannon":
        return float(jensenshannon(ref_share, cur_share, base=2))
    if method == "psi":
        ref_share, cur_share = np.maximum(ref_share, PSI_FLOOR), np.maximum(cur_share, PSI_FLOOR)
        return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    raise ValueError(f"unknown drift method {method!r}")  # checked at config time; a bug if reached


def _normed_wasserstein(reference: dict[str, Any], current: dict[str, Any]) -> float:
    """Wasserstein-1 from the two quantile functions (the area between them), in reference standard
    deviations so one threshold fits every column's scale (Evidently's normed Wasserstein)."""
    gap = np.abs(np.asarray(reference["quantiles"]) - np.asarray(current["quantiles"]))
    distance = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(QUANTILES)))  # the trapezoid rule
    scale = reference.get("std") or 0.0
    return distance / scale if scale > 0 else (0.0 if distance == 0 else math.inf)


def _missing_rows(stats: dict[str, Any]) -> int:
    return round(stats.get("missing", 0.0) * stats.get("rows", 0))


def _plot_data(stats: dict[str, Any]) -> dict[str, Any]:
    """What the HTML report draws of one side: the histogram, or the level counts."""
    if stats["kind"] == NUMERIC:
        return {key: stats[key] for key in ("histogram", "min", "max", "mean", "std") if key in stats}
    counts = {**stats["counts"], **stats.get("new", {})}  # a batch's new levels are drawn by name
    pooled = stats.get("other", 0) - sum(stats.get("new", {}).values())
    if pooled:
        counts[OTHER] = pooled
    return {"counts": counts}
