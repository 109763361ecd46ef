"""The input contract: what columns a model takes, of which kind, with which categories.

Inferred from the training features at prepare time, stored in the bundle's manifest, and used to
check and coerce every batch sent for prediction (CLI and HTTP alike, so CSV and JSON type the same).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automlops.errors import DataError, InputError

NUMERIC, CATEGORICAL = "numeric", "categorical"
MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # numeric | categorical
    dtype: str  # pandas dtype seen in training
    nullable: bool
    categories: list[str] = field(default_factory=list)  # categorical: levels seen in training
    min: float | None = None  # numeric: range seen in training
    max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def infer_contract(features: pd.DataFrame) -> list[ColumnSpec]:
    specs = []
    for name in features.columns:
        column = features[name]
        nullable = bool(column.isna().any())
        if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
            raise DataError(
                f"data.features: column '{name}' holds dates, which are not supported as features yet; "
                "add it to data.features.exclude (or use it as data.split.time_column)"
            )
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            levels = sorted(str(v) for v in column.dropna().unique())
            specs.append(ColumnSpec(str(name), CATEGORICAL, str(column.dtype), nullable, categories=levels))
        else:
            values = column.dropna()
            low = float(values.min()) if len(values) else None
            high = float(values.max()) if len(values) else None
            specs.append(ColumnSpec(str(name), NUMERIC, str(column.dtype), nullable, min=low, max=high))
    return specs


def contract_from_dicts(items: list[dict[str, Any]]) -> list[ColumnSpec]:
    return [ColumnSpec(**item) for item in items]


def to_model_frame(frame: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """Training-time typing: categoricals as strings (missing stays missing), numerics as float."""
    out = {}
    for spec in contract:
        column = frame[spec.name]
        if spec.kind == CATEGORICAL:
            values = column.astype(object)
            # vectorised (millions of rows); every kind of missing (None from JSON, NaN from CSV) becomes NaN,
            # so a served row is encoded exactly as the same row was in training
            out[spec.name] = values.astype(str).where(values.notna(), np.nan)
        else:
            out[spec.name] = pd.to_numeric(column, errors="coerce").astype(float)
    return pd.DataFrame(out, index=frame.index)


def validate_input(frame: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """Check rows sent for prediction against the contract and return them typed for the model.

    Every problem is collected; the message names each offending column and row (up to a few), and
    never echoes the schema or other rows. Unknown categories are allowed: the model treats them as
    unseen levels, as it does in training's validation split."""
    if frame.empty:
        raise InputError("input: no rows to predict; send at least one record")
    expected = [spec.name for spec in contract]
    problems = []
    duplicated = sorted({str(name) for name in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise InputError(f"input: column(s) {', '.join(duplicated)} given more than once; send each column once")
    missing = [name for name in expected if name not in frame.columns]
    extra = [str(name) for name in frame.columns if name not in expected]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s): {', '.join(extra)}")
    if problems:
        raise InputError(
            "input: " + "; ".join(problems) + "; send exactly the model's input columns (see input_example.json; "
            "`automlops predict --keep COL` carries other columns through to the output)"
        )
    for spec in contract:
        column = frame[spec.name]
        if spec.kind == NUMERIC:
            problems += _numeric_problems(spec.name, column)
        if not spec.nullable:
            rows = [str(i) for i in frame.index[column.map(_is_missing)]]
            if rows:
                problems.append(f"column '{spec.name}' must not be empty (row {', '.join(rows[:MAX_PROBLEMS_SHOWN])})")
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"; and {len(problems) - len(shown)} more problem(s)" if len(problems) > len(shown) else ""
        raise InputError("input: " + "; ".join(shown) + more)
    return to_model_frame(frame, contract)


def _numeric_problems(name: str, column: pd.Series) -> list[str]:
    problems = []
    for row, value in column.items():
        if _is_missing(value) or isinstance(value, bool):
            if isinstance(value, bool):
                problems.append(f"column '{name}' row {row}: expected a number, got a boolean")
            continue
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            problems.append(f"column '{name}' row {row}: expected a number, got {str(value)[:40]!r}")
            continue
        if not np.isfinite(number):
            problems.append(f"column '{name}' row {row}: expected a finite number, got {value!r}")
        if len(problems) >= MAX_PROBLEMS_SHOWN:
            break
    return problems


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
