"""One monitoring report: a batch against the training snapshot its model was trained on.

Data drift per input column, dataset drift when a declared share of them drifted, prediction drift
on the model's answers, and performance drift when the batch carries labels. Pure: a bundle, a frame
and the config in, a dict out whose `verdict` is the one decision (`monitor.json` holds its summary, the
HTML report all of it)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from automlops.bundle import Bundle
from automlops.config.schema import MonitorConfig
from automlops.data.contract import to_model_frame
from automlops.errors import BundleError, ConfigError, InputError, did_you_mean
from automlops.evaluate.metrics import test_metrics
from automlops.evaluate.names import HIGHER_IS_BETTER, primary_metric
from automlops.monitor.drift import ColumnTest, choose_method, column_drift
from automlops.monitor.stats import CATEGORICAL, NUMERIC
from automlops.monitor.verdict import decide
from automlops.scoring import score_rows

PREDICTION = "prediction"  # the statistics' entry for the model's answers
LOGGED_ANSWERS = "__prediction__"  # the column a prediction log's answers are read into (never an input's name)
PREDICTION_SAMPLE_ROWS = 100_000  # prediction drift scores a seeded sample of larger batches (10x faster at 1M rows)


def monitor_batch(bundle: Bundle, batch: pd.DataFrame, cfg: MonitorConfig, source: str) -> dict[str, Any]:
    reference = bundle_statistics(bundle)
    contract = bundle.contract
    names = [spec.name for spec in contract]
    check_column_settings(cfg, names)
    if batch.empty:
        raise InputError(f"{source}: the batch has no rows; monitor a file or log folder that holds some")
    present = [name for name in names if name in batch.columns]
    if not present:
        raise InputError(
            f"{source}: none of the model's {len(names)} input columns ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}) "
            "is in the batch; is it the right file for this model?"
        )
    columns = {
        spec.name: _test(spec.name, spec.kind, reference["columns"][spec.name], batch[spec.name], cfg)
        for spec in contract
        if spec.name in present
    }
    missing = [name for name in names if name not in present]
    drifted = [name for name, result in columns.items() if result["drifted"]] + missing
    performance = _performance(bundle, batch, cfg, missing)
    verdict = decide(drifted, len(names), performance, cfg)  # the one decision every output renders
    if performance is not None:
        performance["drifted"] = bool(verdict.performance)
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": bundle.manifest.name,
            "version": bundle.manifest.version,
            "task": bundle.manifest.task,
            "target": bundle.manifest.target,
        },
        "reference": {"rows": reference["rows"], "data_hash": reference.get("data_hash")},
        "batch": {"source": source, "rows": len(batch)},
        "dataset_drift": {
            "drifted": verdict.dataset,
            "share": verdict.share,
            "threshold": verdict.threshold,
            "drifted_columns": drifted,
            "missing_columns": missing,
            "columns": len(names),
        },
        "columns": columns,
        "prediction_drift": _prediction_drift(bundle, batch, reference, cfg, missing),
        "performance": performance,
        "drift": verdict.drift,
        "verdict": verdict,
    }


def bundle_statistics(bundle: Bundle) -> dict[str, Any]:
    statistics = bundle.statistics
    if statistics is None:
        raise BundleError(
            f"--model: {bundle.path} holds no training statistics (packaged by an older automlops); "
            "rerun the pipeline (`automlops run` or `dvc repro`) to package it with them"
        )
    return statistics


def check_column_settings(cfg: MonitorConfig, names: list[str]) -> None:
    """A per-column setting for a column the model does not take is a typo, not a no-op."""
    for name in cfg.columns:
        if name not in names:
            raise ConfigError(
                f"monitor.columns.{name}: not an input column of the model{did_you_mean(name, names)}; "
                f"remove it or use one of: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
            )


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """monitor.json: numbers and verdicts only, per column by name (what `dvc metrics show` lists)."""
    verdict = report["verdict"].to_json()
    if "columns" not in report:  # nothing was judged (no batch, no model yet)
        return report | {"verdict": verdict}
    columns = {
        name: {key: result[key] for key in ("method", "statistic", "threshold", "drifted")}
        | {"missing_change": result["missing"]["change"]}
        for name, result in report["columns"].items()
    }
    prediction = report["prediction_drift"]
    return {
        key: report.get(key)
        for key in ("created_at", "model", "reference", "batch", "dataset_drift", "performance", "drift", "retrain")
    } | {
        "verdict": verdict,
        "prediction_drift": None
        if prediction is None or "skipped" in prediction
        else {key: prediction[key] for key in ("method", "statistic", "threshold", "drifted")},
        "columns": columns,
    }


def _test(name: str, kind: str, reference: dict[str, Any], series: pd.Series, cfg: MonitorConfig) -> dict[str, Any]:
    chosen = cfg.columns.get(name)
    method = (chosen.method if chosen and chosen.method else None) or cfg.method
    if method == "auto":
        method = choose_method(kind, reference)
    if method == "ks" and "values" not in reference:
        raise ConfigError(
            f"monitor.{'columns.' + name + '.' if chosen and chosen.method else ''}method: ks needs the reference's values, "
            f"kept only for references of up to 1000 rows (this one has {reference['rows']}); use wasserstein or psi"
        )
    threshold = chosen.threshold if chosen and chosen.threshold is not None else getattr(cfg.thresholds, method)
    return column_drift(name, kind, reference, series, ColumnTest(method, threshold), cfg.max_missing_rate_change)


def _prediction_drift(
    bundle: Bundle, batch: pd.DataFrame, reference: dict[str, Any], cfg: MonitorConfig, missing: list[str]
) -> dict[str, Any] | None:
    """The model's answers on the batch (or those logged by the server) against its answers on the
    test split at packaging time: drift the inputs' tests can miss when many small shifts add up."""
    if not cfg.prediction:
        return None
    ref = reference.get(PREDICTION)
    if ref is None:
        return {"skipped": "the bundle holds no reference predictions"}
    if LOGGED_ANSWERS in batch.columns:
        predictions = batch[LOGGED_ANSWERS]
    elif missing:
        return {"skipped": f"the batch lacks input column(s) {', '.join(missing[:5])}, so the model cannot score it"}
    else:
        sample = batch.sample(PREDICTION_SAMPLE_ROWS, random_state=0) if len(batch) > PREDICTION_SAMPLE_ROWS else batch
        try:
            predictions = _predict(bundle, sample)
        except Exception as error:  # a batch the model cannot score must not cost the report on the inputs
            return {"skipped": f"the model could not score the batch: {type(error).__name__}: {str(error)[:200]}"}
    kind = NUMERIC if bundle.manifest.task == "regression" else CATEGORICAL
    if kind == CATEGORICAL:
        predictions = predictions.astype(str)
    return _test(PREDICTION, kind, ref, predictions, cfg)


def _performance(bundle: Bundle, batch: pd.DataFrame, cfg: MonitorConfig, missing: list[str]) -> dict[str, Any] | None:
    """With labels in the batch: the primary test metric now against the one recorded at packaging. Drift
    needs both a relative drop and an absolute worsening: a log loss of 0.003 at packaging would otherwise
    call 0.0032 drift."""
    target, task = bundle.manifest.target, bundle.manifest.task
    if target not in batch.columns or missing:
        return None
    labelled = batch[batch[target].notna()]
    if labelled.empty:
        return None
    metric = primary_metric(task)
    recorded = bundle.manifest.metrics.test.get(metric)
    y = _labels(labelled[target], task, bundle.manifest.classes or [])
    current = test_metrics(
        bundle.model,
        _model_rows(bundle, labelled),
        y,
        task,
        bundle.manifest.decision_threshold,
        bundle.manifest.positive_class,
    ).get(metric)
    if recorded is None or current is None:
        return {"metric": metric, "reference": recorded, "current": current, "rows": len(labelled)}
    worse = (recorded - current) if HIGHER_IS_BETTER[metric] else (current - recorded)
    drop = worse / abs(recorded) if recorded else worse
    return {
        "metric": metric,
        "reference": recorded,
        "current": current,
        "rows": len(labelled),
        "drop": drop,
        "threshold": cfg.max_metric_drop,
        "worse": worse,
        "min_worse": cfg.min_metric_worse,
    }  # drifted: verdict.decide


def _labels(y: pd.Series, task: str, classes: list[Any]) -> pd.Series:
    if task == "regression":
        numbers = pd.to_numeric(y, errors="coerce")
        if numbers.isna().any():
            raise InputError(
                f"labels: '{y.name}' holds {y[numbers.isna()].iloc[0]!r}, but this regression model needs numbers"
            )
        return numbers
    unknown = sorted({str(v) for v in y.unique()} - {str(c) for c in classes})
    if unknown:
        raise InputError(
            f"labels: '{y.name}' holds {', '.join(unknown[:5])}, not among the model's classes "
            f"({', '.join(map(str, classes[:10]))}); send labels as the training data spelled them"
        )
    by_name = {str(c): c for c in classes}
    return y.map(lambda v: by_name[str(v)])


def _predict(bundle: Bundle, batch: pd.DataFrame) -> pd.Series:
    return score_rows(bundle, _model_rows(bundle, batch), probabilities=False)[PREDICTION]


def _model_rows(bundle: Bundle, batch: pd.DataFrame) -> pd.DataFrame:
    """The batch typed as training typed it, without serving's refusals: monitoring wants the model's
    answer on drifted rows too (e.g. missing values where training had none; the model's imputer copes)."""
    return to_model_frame(batch, bundle.contract)
