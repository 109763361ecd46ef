"""The input contract: what columns a model takes, of which kind, with which categories.

Inferred from the training features at prepare time, stored in the bundle's manifest, and used to
check and coerce every batch sent for prediction (CLI and HTTP alike, so CSV and JSON type the same).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
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
    missing_rate: float | None = None  # share of missing values seen in training (None: unknown, an older bundle)
    missing_values: list[str] = field(default_factory=list)  # numeric: stray text read as missing (e.g. "?", "n/a")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def infer_contract(features: pd.DataFrame) -> list[ColumnSpec]:
    """One spec per column. One pass per column (millions of rows): a categorical column's levels and
    missing count come from one hash count, a numeric column's from numpy reductions."""
    specs = []
    rows = max(len(features), 1)
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
            raise DataError(
                f"data.features: column '{name}' holds dates, which are not supported as features yet; "
                "add it to data.features.exclude (or use it as data.split.time_column)"
            )
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            counts = column.value_counts(dropna=False, sort=False)
            empty = np.asarray(counts.index.isna())
            missing = int(counts[empty].sum())
            levels = sorted({str(v) for v in counts.index[~empty]})
            specs.append(
                ColumnSpec(
                    str(name),
                    CATEGORICAL,
                    str(column.dtype),
                    bool(missing),
                    categories=levels,
                    missing_rate=round(missing / rows, 6),
                )
            )
        else:
            missing = int(column.isna().sum())
            low = float(column.min()) if missing < len(column) else None
            high = float(column.max()) if missing < len(column) else None
            specs.append(
                ColumnSpec(
                    str(name),
                    NUMERIC,
                    str(column.dtype),
                    bool(missing),
                    min=low,
                    max=high,
                    missing_rate=round(missing / rows, 6),
                )
            )
    return specs


def with_missing_values(specs: list[ColumnSpec], stray: dict[str, list[str]]) -> list[ColumnSpec]:
    """Specs with the stray text that prepare read as missing in each mixed numeric column (columns.py),
    so that predict and serve read the same text as missing instead of refusing it."""
    return [replace(spec, missing_values=stray[spec.name]) if spec.name in stray else spec for spec in specs]


def blank_missing_values(frame: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """`frame` with each numeric column's training-time stray text (spec.missing_values) made missing."""
    stray = {spec.name: spec.missing_values for spec in contract if spec.missing_values and spec.name in frame.columns}
    if not stray:
        return frame
    frame = frame.copy()
    for name, values in stray.items():
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column):  # text arrives as object or a string dtype
            frame[name] = column.where(~column.astype(str).isin(values))
    return frame


def contract_from_dicts(items: list[dict[str, Any]]) -> list[ColumnSpec]:
    """Specs from a manifest or meta.json; keys a spec does not know (a newer writer's) are ignored, and
    keys added since (missing_rate) take their defaults, so bundles of every version load."""
    known = {f.name for f in fields(ColumnSpec)}
    return [ColumnSpec(**{k: v for k, v in item.items() if k in known}) for item in items]


def to_model_frame(frame: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """The model-input form, the one every path hands a model: numerics as float64 (missing: NaN),
    categoricals as object columns of str (missing: NaN, never None or pd.NA, which scikit-learn's
    imputers and encoders treat as another value). Prepare, the prepared splits as read back
    (pipeline.load_prepared: search, evaluate, the input example, the gate), predict, serve (whose quick
    path, typed_records, builds the same values) and monitor all go through it, so a model answers a
    row as it did when evaluated. Idempotent. Columns already numeric are converted in one block: a
    one-row request costs microseconds."""
    names = [spec.name for spec in contract]
    kinds = {name: dtype.kind for name, dtype in frame.dtypes.items()}
    plain = [spec.name for spec in contract if spec.kind == NUMERIC and kinds[spec.name] in "iuf"]
    out = (
        pd.DataFrame(frame[plain].to_numpy(dtype=float), columns=plain, index=frame.index)
        if plain
        else pd.DataFrame(index=frame.index)
    )
    for spec in contract:
        if spec.name in out.columns:
            continue
        column = frame[spec.name]
        if spec.kind == CATEGORICAL:
            out[spec.name] = as_text(column)
        else:
            out[spec.name] = pd.to_numeric(column, errors="coerce").astype(float)
    return out[names] if list(out.columns) != names else out


def as_text(column: pd.Series) -> pd.Series:
    """A categorical's model-input form, vectorised (millions of rows): values as str, and every kind of
    missing (None from JSON, NaN from CSV, pd.NA) as NaN, so a served row is encoded exactly as the
    same row was in training."""
    values = column.astype(object)
    return values.astype(str).where(values.notna(), np.nan)


UNKNOWN_CATEGORY_POLICIES = ("model", "missing", "error")


def enforce_contract(
    frame: pd.DataFrame, contract: list[ColumnSpec], unknown_categories: str = "model"
) -> pd.DataFrame:
    """Check rows sent for prediction against the contract and return them typed for the model.

    Every problem is collected; the message names each offending column and row (up to a few), and
    never echoes the schema or other rows. A category unseen in training is, by `unknown_categories`:
    left to the model (which treats it as an unseen level, as in training's validation split), made
    missing, or refused."""
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
        problems.append(f"missing column(s): {_some(missing)}")
    if extra:
        problems.append(f"unexpected column(s): {_some(extra)}")
    if problems:
        raise InputError(
            "input: " + "; ".join(problems) + "; send exactly the model's input columns (see input_example.json; "
            "`automlops predict --keep COL` carries other columns through to the output)"
        )
    frame = blank_missing_values(frame, contract)
    fast = _all_numeric_fast_path(frame, contract, expected)
    if fast is not None:
        return fast
    numeric = [spec.name for spec in contract if spec.kind == NUMERIC]
    kinds = {name: dtype.kind for name, dtype in frame.dtypes.items()}
    plain = [name for name in numeric if kinds[name] in "iuf"]
    if plain and np.isinf(frame[plain].to_numpy(dtype=float, na_value=np.nan)).any():  # one check for all plain columns
        plain = []  # find the culprits column by column
    for name in numeric:
        if name not in plain:
            problems += _numeric_problems(name, frame[name])
    required = [spec.name for spec in contract if not spec.nullable]
    empty = frame[required].isna()
    for name in empty.columns[empty.any().to_numpy()]:
        rows = [str(i) for i in frame.index[empty[name].to_numpy()]]
        problems.append(f"column '{name}' must not be empty (row {', '.join(rows[:MAX_PROBLEMS_SHOWN])})")
    for spec in contract:
        if spec.kind == CATEGORICAL:
            problems += _category_problems(spec.name, frame[spec.name])
    unseen = _unseen_categories(frame, contract) if unknown_categories != "model" else {}
    if unknown_categories == "error":
        problems += [
            f"column '{name}' row {row}: category {str(frame.at[row, name])[:40]!r} was not seen in training"
            for name, rows in unseen.items()
            for row in rows[:MAX_PROBLEMS_SHOWN]
        ]
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"; and {len(problems) - len(shown)} more problem(s)" if len(problems) > len(shown) else ""
        raise InputError("input: " + "; ".join(shown) + more)
    typed = to_model_frame(frame, contract)
    for name, rows in unseen.items():  # unknown_categories == "missing"
        typed.loc[rows, name] = np.nan
    return typed


def _some(names: list[str], shown: int = 2 * MAX_PROBLEMS_SHOWN) -> str:
    """A list of names, cut short: an error names what is wrong, it does not recite the schema."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _unseen_categories(frame: pd.DataFrame, contract: list[ColumnSpec]) -> dict[str, list[Any]]:
    """Rows (index labels) per categorical column whose value was not among the training levels."""
    unseen = {}
    for spec in contract:
        if spec.kind != CATEGORICAL or not spec.categories:
            continue
        column = frame[spec.name]
        mask = column.notna() & ~column.astype(str).isin(spec.categories)
        if mask.any():
            unseen[spec.name] = list(frame.index[mask])
    return unseen


def _all_numeric_fast_path(frame: pd.DataFrame, contract: list[ColumnSpec], expected: list[str]) -> pd.DataFrame | None:
    """The common case of an all-numeric model sent clean numbers in order: one numpy pass instead of
    per-column pandas work (a one-row request drops from ~0.6 to ~0.1 ms). None: take the full path."""
    if list(frame.columns) != expected or any(spec.kind != NUMERIC for spec in contract):
        return None
    if any(dtype.kind not in "iuf" for dtype in frame.dtypes.to_numpy()):
        return None
    values = frame.to_numpy(dtype=float)
    required = [i for i, spec in enumerate(contract) if not spec.nullable]
    if np.isinf(values).any() or np.isnan(values[:, required]).any():
        return None  # the full path names the offending cells
    return pd.DataFrame(values, columns=expected, index=frame.index)


@dataclass(frozen=True)
class TypedRows:
    """Rows checked and typed in plain Python (typed_records): one list per contract column, numbers
    as floats and categories as text or NaN, i.e. to_model_frame's values before any frame is built,
    so that a server can build one frame for many requests (typed_frame)."""

    columns: list[list[Any]]
    count: int


def typed_records(records: list[Any], contract: list[ColumnSpec]) -> TypedRows | None:
    """Records (JSON objects) checked and typed value by value, accepting and typing exactly what
    enforce_contract then to_model_frame accept and type, with unseen categories left to the model
    (unknown_categories=model). A few rows take microseconds, where pandas' per-column work costs a
    millisecond whatever the size. None when anything needs the full path: another column set, or a
    value to refuse (the full path names each problem)."""
    names = {spec.name for spec in contract}
    if not records or not all(type(record) is dict and record.keys() == names for record in records):
        return None
    columns = []
    for spec in contract:
        values = [record[spec.name] for record in records]
        typed = (
            _typed_numbers(values, spec.nullable) if spec.kind == NUMERIC else _typed_categories(values, spec.nullable)
        )
        if typed is None:
            return None
        columns.append(typed)
    return TypedRows(columns, len(records))


def _typed_numbers(values: list[Any], nullable: bool) -> list[float] | None:
    out = []
    for value in values:
        if value is None or type(value) not in (int, float):  # None, and no booleans, text or arrays
            if value is None and nullable:
                out.append(np.nan)
                continue
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            return None
        if math.isinf(number) or (math.isnan(number) and not nullable):
            return None
        out.append(number)
    return out


def _typed_categories(values: list[Any], nullable: bool) -> list[Any] | None:
    out: list[Any] = []
    for value in values:
        if value is None or (type(value) is float and math.isnan(value)):
            if not nullable:
                return None
            out.append(np.nan)
        elif type(value) is str or type(value) is bool or (type(value) in (int, float) and _finite(value)):
            out.append(str(value))  # as to_model_frame's astype(str): 7 -> "7", True -> "True"
        else:  # arrays and objects
            return None
    return out


def typed_frame(parts: list[TypedRows], contract: list[ColumnSpec]) -> pd.DataFrame:
    """One model frame (to_model_frame's columns and dtypes) holding the rows of every part, in order."""
    data = {}
    for i, spec in enumerate(contract):
        values = parts[0].columns[i] if len(parts) == 1 else [value for part in parts for value in part.columns[i]]
        data[spec.name] = np.array(values, dtype=float if spec.kind == NUMERIC else object)
    return pd.DataFrame(data)


def _finite(number: Any) -> bool:
    """A number a float holds: not ±inf, not an integer beyond float range (NaN counts: it is missing)."""
    try:
        return not math.isinf(number)
    except OverflowError:
        return False


def _overflows(text: Any) -> bool:
    try:
        return math.isinf(float(str(text).strip()))
    except ValueError:
        return False


def _category_problems(name: str, column: pd.Series) -> list[str]:
    """A category sent as a number (JSON's 7 is the category "7") must be one a float holds: ±inf
    (JSON's Infinity or 1e400) or an integer beyond float range is refused, as in a numeric column."""
    if column.dtype.kind == "f":
        rows = column.index[np.isinf(column.to_numpy())]
    elif column.dtype != object or pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty", "boolean"):
        return []  # text (every CSV), booleans, integers of a numpy dtype: nothing beyond float range
    else:
        rows = column.index[
            column.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and not _finite(v)).to_numpy(
                dtype=bool
            )
        ]
    return [
        f"column '{name}' row {row}: expected a category, got {_number(column[row])}; send categories as text"
        for row in rows[:MAX_PROBLEMS_SHOWN]
    ]


def _number(value: Any) -> str:
    """A number as a message shows it: inf, not np.float64(inf); an integer's size, not its digits."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return f"an integer of {len(str(abs(int(value))))} digits" if abs(int(value)) > 10**15 else str(int(value))
    if isinstance(value, (float, np.floating)):
        return (
            f"{float(value)!r} (a number beyond float range, or Infinity)" if math.isinf(value) else repr(float(value))
        )
    return repr(value)


def _numeric_problems(name: str, column: pd.Series) -> list[str]:
    """Vectorised: a batch of millions of rows is checked at pandas speed, not value by value."""
    if pd.api.types.is_bool_dtype(column):
        return [
            f"column '{name}' row {row}: expected a number, got a boolean" for row in column.index[:MAX_PROBLEMS_SHOWN]
        ]
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        rows = column.index[np.isinf(values)]
        return [
            f"column '{name}' row {row}: expected a finite number, got {_number(column[row])}"
            for row in rows[:MAX_PROBLEMS_SHOWN]
        ]
    present = column.notna()
    booleans = column.map(lambda v: isinstance(v, (bool, np.bool_))) & present
    numbers = pd.to_numeric(column.where(~booleans), errors="coerce")
    problems = []
    for row in column.index[(booleans | (present & numbers.isna()) | np.isinf(numbers.fillna(0.0))).to_numpy()]:
        value = column[row]
        if isinstance(value, (bool, np.bool_)):
            problems.append(f"column '{name}' row {row}: expected a number, got a boolean")
        elif pd.isna(numbers[row]) and not _overflows(value):
            problems.append(f"column '{name}' row {row}: expected a number, got {str(value)[:40]!r}")
        elif pd.isna(numbers[row]):  # text that pandas cannot parse: a number too long for it (CSV)
            problems.append(
                f"column '{name}' row {row}: expected a finite number, got a number beyond float range "
                f"({len(str(value))} characters)"
            )
        else:
            problems.append(f"column '{name}' row {row}: expected a finite number, got {_number(value)}")
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
