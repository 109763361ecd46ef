"""The evaluate stage's pure core: the chosen model scored on the held-out test split, per slice, with
the DVC plot tables; `automlops.pipeline.run_evaluate` reads and writes the files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from automlops.config.schema import EvaluateConfig
from automlops.evaluate.metrics import predict, scores
from automlops.evaluate.names import primary_metric
from automlops.evaluate.plots import empty_tables, importance_table, plot_tables
from automlops.evaluate.slices import check_slice_columns, slice_metrics


@dataclass
class Evaluation:
    metrics: dict[str, float]  # metrics/test.json
    slices: dict[str, dict[str, dict[str, float]]]  # metrics/slices.json: column -> slice -> {rows, metric: value}
    plots: dict[str, pd.DataFrame]  # metrics/plots/<file> for every file of PLOT_FILES
    answers: (
        pd.Series
    )  # the model's answer per test row, decision threshold included: the bundle's prediction-drift reference


def evaluate(
    model: Any,
    test: pd.DataFrame,
    features: Sequence[str],
    target: str,
    task: str,
    cfg: EvaluateConfig,
    seed: int,
    positive: Any = None,
) -> Evaluation:
    """Score `model` on the prepared test split (features, target and any other columns to slice by);
    `positive`: the recorded positive class of a binary task (meta.json's positive_class)."""
    check_slice_columns(cfg.slices, [str(c) for c in test.columns])
    threshold = cfg.threshold if task == "binary" else None
    x, y = test[list(features)], test[target]
    p = predict(model, x, y, task, threshold, positive)
    metrics = scores(p, task)
    slices = slice_metrics(p, task, test, cfg.slices, cfg.slice_bins, cfg.min_slice_rows)
    answers = pd.Series(p.predicted, index=x.index)
    if not cfg.plots:
        return Evaluation(metrics, slices, empty_tables(), answers)
    importance = None
    if cfg.importance_repeats and primary_metric(task) in metrics:
        importance = importance_table(
            model,
            x,
            y,
            task,
            threshold,
            cfg.importance_repeats,
            seed,
            cfg.importance_rows,
            cfg.importance_seconds,
            positive,
        )
    return Evaluation(metrics, slices, plot_tables(p, task, importance, seed), answers)
