"""The prepare stage: load the table, check it against the config, type it, split it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automlops.config.schema import DataConfig
from automlops.data.columns import curate_columns
from automlops.data.contract import infer_contract, to_model_frame, with_missing_values
from automlops.data.positive import positive_class
from automlops.data.quality_gate import BatchRejected, check_batch, quality_report
from automlops.data.schema import DataSchema, merge_contract, read_schema, target_spec
from automlops.data.sources import SOURCES, load_table
from automlops.data.split import split_table
from automlops.errors import DataError, did_you_mean
from automlops.records import PreparedMeta

log = logging.getLogger(__name__)
MAX_CLASSES = 10  # an integer target with at most this many values is read as classes


@dataclass
class Prepared:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    meta: PreparedMeta  # target, task, classes, positive class, input contract, data hash, source (meta.json)
    schema: DataSchema | None = None  # inferred from this table (data/prepared/schema.yaml), before any curation
    validation: dict[str, Any] = field(default_factory=dict)  # the validation report (metrics/validation.json)


def prepare(cfg: DataConfig, seed: int) -> Prepared:
    """Load, check, validate against the curated schema (data.schema), type and split the table.
    Anomalies of severity error raise BatchRejected (carrying the report) before anything is split."""
    table = load_table(cfg)
    source = SOURCES.get(cfg.source).describe(cfg)
    if cfg.target not in table.columns:
        columns = [str(c) for c in table.columns]
        raise DataError(
            f"data.target: column '{cfg.target}' is not in {source}{did_you_mean(cfg.target, columns)}; "
            f"columns are: {', '.join(columns[:50])}{' ...' if len(columns) > 50 else ''}"
        )
    check_split_columns(table, cfg, source)
    features = select_features(table, cfg)
    cleaned = curate_columns(table, features, cfg.features, [cfg.target])
    table, features = cleaned.table, cleaned.features
    if not features:
        raise DataError(
            "data.features: no feature columns are left after dropping the columns above; "
            "list the ones to keep in data.features.include"
        )
    unlabeled = int(table[cfg.target].isna().sum())
    if unlabeled:
        log.warning("dropping %d row(s) whose target '%s' is missing", unlabeled, cfg.target)
        table = table[table[cfg.target].notna()]
    if table.empty:
        raise DataError(f"data.target: every row of {source} has a missing '{cfg.target}'; fix the data or data.target")
    task = infer_task(table[cfg.target], cfg.task, cfg.target)
    positive = positive_class(cfg.positive_class, table[cfg.target], task)
    if positive is not None:
        log.info(
            "positive class: %r (%s)",
            positive,
            "data.positive_class"
            if cfg.positive_class is not None
            else "data.positive_class is null: the second class in sorted order",
        )
    curated = read_schema(cfg.schema) if cfg.schema else None
    report = validate(table, features, cfg, curated)
    inferred = infer_contract(table[features])
    contract = with_missing_values(merge_contract(inferred, curated) if curated else inferred, cleaned.missing_values)
    typed = to_model_frame(table, contract)
    typed[cfg.target] = pd.to_numeric(table[cfg.target]) if task == "regression" else table[cfg.target]
    extra = [c for c in (cfg.split.time_column, cfg.split.group_column) if c and c not in features]
    for column in extra:
        typed[column] = table[column]
    train, valid, test = split_table(typed, cfg.target, task, cfg.split, seed)
    classes = sorted(table[cfg.target].unique().tolist(), key=str) if task != "regression" else []
    meta = PreparedMeta(
        target=cfg.target,
        task=task,
        classes=classes,
        positive_class=positive,  # binary: what f1, pr_auc, brier and the threshold are about; else null
        features=features,
        split_columns=extra,  # kept for splitting only, never given to the model
        contract=[spec.to_dict() for spec in contract],
        data_hash=frame_hash(table[features + [cfg.target]]),
        source=source,
        rows={"train": len(train), "valid": len(valid), "test": len(test)},
        schema=cfg.schema,  # the curated schema the contract follows; null: inferred only
        dropped_columns=cleaned.dropped,  # [{column, reason}]: predict and serve ignore these columns when sent
        data_warnings=cleaned.warnings,  # every column warning prepare logged, for the model card and reports
    )
    schema = DataSchema(inferred, target_spec(table[cfg.target], cfg.target, task))
    return Prepared(train, valid, test, meta, schema, report)


def validate(table: pd.DataFrame, features: list[str], cfg: DataConfig, curated: DataSchema | None) -> dict[str, Any]:
    """The validation gate: the report, with each warning logged; errors stop here, before the split."""
    anomalies = check_batch(table, features, cfg.target, curated, cfg.validation) if curated else []
    report = quality_report(cfg.schema if curated else None, len(table), anomalies)
    for anomaly in anomalies:
        if anomaly.severity == "warn":
            log.warning("data validation (%s): %s", anomaly.kind, anomaly.message)
    if not report["passed"]:
        raise BatchRejected(anomalies, report)
    return report


def check_split_columns(table: pd.DataFrame, cfg: DataConfig, source: str) -> None:
    """data.split.time_column and group_column must name columns of the table, checked before any work."""
    columns = [str(c) for c in table.columns]
    for key in ("time_column", "group_column"):
        name = getattr(cfg.split, key)
        if name and name not in columns:
            raise DataError(
                f"data.split.{key}: column '{name}' is not in {source}{did_you_mean(name, columns)}; "
                f"columns are: {', '.join(columns[:30])}{' ...' if len(columns) > 30 else ''}"
            )


def select_features(table: pd.DataFrame, cfg: DataConfig) -> list[str]:
    columns = [str(c) for c in table.columns]
    for key in ("include", "exclude"):
        unknown = [c for c in getattr(cfg.features, key) if c not in columns]
        if unknown:
            raise DataError(
                f"data.features.{key}: column(s) {', '.join(unknown)} not in the data"
                f"{did_you_mean(unknown[0], columns)}; columns are: {', '.join(columns[:30])}"
            )
    chosen = list(cfg.features.include) or columns
    split_only = {cfg.split.time_column, cfg.split.group_column} - set(cfg.features.include)
    dropped = set(cfg.features.exclude) | split_only | {cfg.target}
    features = [c for c in chosen if c not in dropped]
    if not features:
        raise DataError("data.features: no feature columns are left after include/exclude; keep at least one column")
    return features


def infer_task(target: pd.Series, declared: str, name: str) -> str:
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    levels = target.nunique()
    if declared == "regression":
        if pd.api.types.is_bool_dtype(target):
            raise DataError(
                f"data.task: regression needs a numeric target, but '{name}' holds booleans; set data.task=binary"
            )
        unparsed = target[pd.to_numeric(target, errors="coerce").isna()]
        if not numeric and len(unparsed):
            example = unparsed.iloc[0]
            raise DataError(
                f"data.task: regression needs a numeric target, but '{name}' holds {example!r}; "
                "set data.task to binary or multiclass, or choose a numeric data.target"
            )
        return "regression"
    if declared in ("binary", "multiclass"):
        if levels < 2:
            raise DataError(f"data.target: '{name}' has a single class; a classifier needs at least two")
        if declared == "binary" and levels != 2:
            raise DataError(
                f"data.task: binary needs exactly 2 classes, but '{name}' has {levels}; set data.task=multiclass"
            )
        if declared == "multiclass" and levels == 2:
            raise DataError(f"data.task: multiclass needs 3 or more classes, but '{name}' has 2; set data.task=binary")
        return declared
    if levels < 2:
        raise DataError(f"data.target: '{name}' has a single value; nothing to learn")
    integral = not numeric or bool(np.all(np.mod(target.astype(float), 1) == 0))
    if levels == 2:
        return "binary"
    if not numeric or (integral and levels <= MAX_CLASSES):
        return "multiclass"
    return "regression"


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of the table's values (fast on millions of rows; a column typed differently hashes differently)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()
