"""The data quality gate (`data.validation.*`, TFX's ExampleValidator): a new training batch checked against the curated schema before the search.

Row-level checks (values missing where the schema says `nullable: false`, categories it does not list,
values outside min/max) run in pandera, lazily, so every failure is collected in one pass; the shares
come from pandera's check results. Statistics-level checks (a column missing or new, a type change, a
jump of the missing share, a shift of the label distribution) are plain pandas. `data.validation.*`
gives each kind its severity: error stops the run, warn is logged, ignore skips the check.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from automlops.config.schema import ANOMALY_KINDS, DataValidationConfig
from automlops.data.contract import CATEGORICAL, NUMERIC, ColumnSpec
from automlops.data.schema import DataSchema, TargetSpec
from automlops.errors import ConfigError, DataError

ROW_CHECKS = ("unexpected_missing", "new_category", "out_of_range")  # run by pandera
EXAMPLES = 5  # failing values kept per check (pandera's n_failure_cases): for the message, not for counting
SHOWN = 5  # error anomalies named in the one-line failure


@dataclass(frozen=True)
class Anomaly:
    column: str
    kind: str  # one of ANOMALY_KINDS
    severity: str  # error | warn
    message: str
    value: float | None = None  # the measured statistic: a share of rows, a change of share, a distance

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BatchRejected(DataError):
    """The batch has anomalies of severity error; carries the report (written before the run stops)."""

    def __init__(self, anomalies: list[Anomaly], report: dict[str, Any]) -> None:
        super().__init__(failure_message(anomalies, report.get("schema")))
        self.anomalies = anomalies
        self.report = report


def check_batch(
    table: pd.DataFrame, features: list[str], target: str | None, schema: DataSchema, cfg: DataValidationConfig
) -> list[Anomaly]:
    """Every anomaly of `table` against `schema`, by column (schema order, then new columns, then the label)."""
    severity = {kind: getattr(cfg, kind) for kind in ANOMALY_KINDS}
    found: list[Anomaly] = []

    def add(column: str, kind: str, message: str, value: float | None = None) -> None:
        if severity[kind] != "ignore":
            found.append(
                Anomaly(column, kind, severity[kind], message, None if value is None else round(float(value), 6))
            )

    rows = max(len(table), 1)
    present = [spec for spec in schema.columns if spec.name in table.columns]
    for spec in schema.columns:
        if spec.name not in table.columns:
            add(spec.name, "missing_column", f"column '{spec.name}' is in the schema but not in the data")
    counts = {
        spec.name: table[spec.name].value_counts(dropna=False, sort=False)
        for spec in present
        if spec.kind == CATEGORICAL
    }
    missing = {
        spec.name: int(counts[spec.name][counts[spec.name].index.isna()].sum())
        if spec.name in counts
        else int(table[spec.name].isna().sum())
        for spec in present
    }
    checked = []
    for spec in present:
        changed = _type_change(spec, table[spec.name])
        if changed:
            add(spec.name, "type_change", changed)
        else:
            checked.append(spec)
        if spec.missing_rate is not None and severity["missing_rate_jump"] != "ignore":
            rate = float(missing[spec.name]) / rows
            if abs(rate - spec.missing_rate) > cfg.max_missing_rate_jump:
                add(
                    spec.name,
                    "missing_rate_jump",
                    f"column '{spec.name}': {rate:.1%} of values are missing, "
                    f"{spec.missing_rate:.1%} in the schema (allowed change: {cfg.max_missing_rate_jump:g})",
                    rate - spec.missing_rate,
                )
    for column, kind, count, examples in _row_checks(table, checked, counts, severity):
        share = count / rows
        if kind == "unexpected_missing":
            add(
                column,
                kind,
                f"column '{column}' has {count} missing value(s) ({share:.1%}) but the schema says nullable: false",
                share,
            )
        elif kind == "new_category":
            add(
                column,
                kind,
                f"column '{column}' has value(s) the schema's categories do not list: "
                f"{', '.join(repr(str(v)[:40]) for v in examples)} ({count} row(s), {share:.1%})",
                share,
            )
        elif share > cfg.out_of_range_share:
            spec = next(s for s in checked if s.name == column)
            add(
                column,
                kind,
                f"column '{column}': {share:.1%} of rows ({count}) are outside the schema's range "
                f"[{_bound(spec.min)}, {_bound(spec.max)}], e.g. {', '.join(f'{float(v):g}' for v in examples[:3])} "
                f"(allowed: {cfg.out_of_range_share:.1%})",
                share,
            )
    known = {spec.name for spec in schema.columns}
    for name in features:
        if name not in known:
            add(
                name,
                "new_column",
                f"column '{name}' is a feature but not in the schema; add it to the schema or to data.features.exclude",
            )
    if target is not None and schema.target is not None and schema.target.name != target:
        raise ConfigError(
            f"data.schema: {schema.path}: target.name '{schema.target.name}' is not data.target '{target}'; "
            "fix target.name in the schema or data.target"
        )
    if (
        target is not None
        and schema.target is not None
        and severity["label_shift"] != "ignore"
        and target in table.columns
    ):
        shifted = _label_shift(table[target], schema.target, cfg.max_label_shift)
        if shifted:
            add(target, "label_shift", shifted[0], shifted[1])
    order = {name: i for i, name in enumerate([spec.name for spec in schema.columns] + list(features))}
    return sorted(found, key=lambda a: (order.get(a.column, len(order)), ANOMALY_KINDS.index(a.kind)))


def quality_report(schema_path: str | None, rows: int, anomalies: list[Anomaly]) -> dict[str, Any]:
    """metrics/validation.json: the schema used, the rows checked, every anomaly, and the verdict."""
    errors = sum(a.severity == "error" for a in anomalies)
    report: dict[str, Any] = {
        "schema": schema_path,
        "rows": rows,
        "passed": errors == 0,
        "errors": errors,
        "warnings": sum(a.severity == "warn" for a in anomalies),
        "anomalies": [a.to_dict() for a in anomalies],
    }
    if schema_path is None:
        report["note"] = (
            "no curated schema: nothing was validated; copy data/prepared/schema.yaml to conf/schema/<name>.yaml, "
            "edit it, and set data.schema to validate each batch against it"
        )
    return report


def failure_message(anomalies: list[Anomaly], schema_path: str | None, report: str = "metrics/validation.json") -> str:
    errors = [a for a in anomalies if a.severity == "error"]
    named = ", ".join(f"'{a.column}' {a.kind}" for a in errors[:SHOWN])
    more = f" and {len(errors) - SHOWN} more" if len(errors) > SHOWN else ""
    kinds = sorted({a.kind for a in errors}, key=ANOMALY_KINDS.index)
    return (
        f"data validation: {len(errors)} error(s) against {schema_path}: {named}{more}; see {report}; fix the data "
        f"or the schema, or let them through with {' '.join(f'data.validation.{k}=warn' for k in kinds)}"
    )


# --- checks ------------------------------------------------------------------------------------


def _is_numeric(dtype: Any) -> bool:
    return bool(pd.api.types.is_numeric_dtype(dtype)) and not pd.api.types.is_bool_dtype(dtype)


def _schema_is_numeric(spec: ColumnSpec) -> bool:
    """Whether the schema's column held numbers: its recorded dtype, else its kind."""
    try:
        return _is_numeric(pd.api.types.pandas_dtype(spec.dtype))
    except TypeError:
        return spec.kind == NUMERIC


def _type_change(spec: ColumnSpec, column: pd.Series) -> str | None:
    """Numbers in the schema and text in the data, or the reverse (a column with no value says nothing)."""
    was, now = _schema_is_numeric(spec), _is_numeric(column.dtype)
    if was == now:
        return None
    values = column.dropna()
    if values.empty:
        return None
    if was and not pd.api.types.is_bool_dtype(column.dtype):
        parsed = pd.to_numeric(values, errors="coerce")
        if parsed.notna().all():
            return None  # numbers written as text (an object column): still numbers
        example = values[parsed.isna()].iloc[0]
        return f"column '{spec.name}' holds numbers in the schema ({spec.dtype}) but text in the data ({column.dtype}), e.g. {str(example)[:40]!r}"
    first = values.iloc[0]
    what = "numbers" if now else "booleans" if pd.api.types.is_bool_dtype(column.dtype) else "text"
    return f"column '{spec.name}' holds {'text' if not was else 'numbers'} in the schema ({spec.dtype}) but {what} in the data ({column.dtype}), e.g. {str(first)[:40]!r}"


def _row_checks(
    table: pd.DataFrame, specs: list[ColumnSpec], counts: dict[str, pd.Series], severity: dict[str, str]
) -> list[tuple[str, str, int, list[Any]]]:
    """(column, kind, failing rows, a few failing values) per failed row-level check, via pandera, in
    schema order. Numeric columns are checked row by row; a categorical column on its distinct values,
    each weighted by its row count (the same verdict, at the cost of a hash count instead of string
    comparisons on every row)."""
    import pandera.pandas as pa

    found: list[tuple[str, str, int, list[Any]]] = []
    numeric: dict[str, Any] = {}
    for spec in specs:
        checks = []
        if spec.kind == CATEGORICAL:
            if spec.categories and severity["new_category"] != "ignore":
                checks.append(pa.Check.isin(spec.categories, name="new_category"))
            nullable = spec.nullable or severity["unexpected_missing"] == "ignore"
            if checks or not nullable:
                found += _distinct_checks(spec.name, counts[spec.name], pa.Column(nullable=nullable, checks=checks))
            continue
        if (
            not spec.nullable and severity["unexpected_missing"] != "ignore"
        ):  # bounded failure cases: millions of empty cells stay cheap
            checks.append(pa.Check(_not_missing, ignore_na=False, n_failure_cases=EXAMPLES, name="unexpected_missing"))
        if severity["out_of_range"] != "ignore":
            if spec.min is not None and spec.max is not None:
                checks.append(pa.Check.in_range(spec.min, spec.max, n_failure_cases=EXAMPLES, name="out_of_range"))
            elif spec.min is not None:
                checks.append(pa.Check.ge(spec.min, n_failure_cases=EXAMPLES, name="out_of_range"))
            elif spec.max is not None:
                checks.append(pa.Check.le(spec.max, n_failure_cases=EXAMPLES, name="out_of_range"))
        if checks:
            numeric[spec.name] = pa.Column(nullable=True, checks=checks)
    if numeric:
        frame = pd.DataFrame({name: _as_numbers(table[name]) for name in numeric}, index=table.index)
        for error in _schema_errors(pa.DataFrameSchema(numeric), frame):
            output = error.check_output  # pandera's verdict per row (n_failure_cases only bounds the examples)
            count = int((~output.astype(bool)).sum()) if output is not None else len(error.failure_cases)
            found.append(
                (
                    str(error.schema.name),
                    _kind(error),
                    count,
                    list(pd.unique(error.failure_cases["failure_case"]))[:EXAMPLES],
                )
            )
    order = {spec.name: i for i, spec in enumerate(specs)}
    return sorted(found, key=lambda item: (order[item[0]], ROW_CHECKS.index(item[1])))


def _distinct_checks(name: str, counts: pd.Series, column: Any) -> list[tuple[str, str, int, list[Any]]]:
    """A categorical column's checks on its distinct values (as text, as the model sees them); the
    failing rows are the summed counts of the failing values, most frequent first in the examples."""
    import pandera.pandas as pa

    values = [None if pd.isna(v) else str(v) for v in counts.index]
    weights = counts.to_numpy()
    found = []
    for error in _schema_errors(
        pa.DataFrameSchema({name: column}), pd.DataFrame({name: pd.Series(values, dtype=object)})
    ):
        rows = error.failure_cases["index"].to_numpy(dtype=int)
        ranked = rows[np.argsort(-weights[rows], kind="stable")]
        found.append((name, _kind(error), int(weights[rows].sum()), [values[i] for i in ranked[:EXAMPLES]]))
    return found


def _schema_errors(schema: Any, frame: pd.DataFrame) -> list[Any]:
    """Every failure pandera finds (lazy validation: all checks run, then all failures are reported)."""
    import pandera.pandas as pa

    try:
        schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        for error in errors.schema_errors:
            if _kind(error) not in ROW_CHECKS or error.schema is None:
                raise  # not one of our checks: a pandera problem worth seeing whole
        return list(errors.schema_errors)
    return []


def _kind(error: Any) -> str:
    check = error.check
    return "unexpected_missing" if check == "not_nullable" else str(getattr(check, "name", check))


def _not_missing(series: pd.Series) -> pd.Series:
    return series.notna()


def _as_numbers(column: pd.Series) -> pd.Series:
    return column if _is_numeric(column.dtype) else pd.to_numeric(column, errors="coerce")


def _bound(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"


def _label_shift(target: pd.Series, reference: TargetSpec, limit: float) -> tuple[str, float] | None:
    name = reference.name
    if reference.task == "regression":
        values = pd.to_numeric(target, errors="coerce").dropna()
        if values.empty or reference.mean is None or reference.std is None:
            return None
        mean = float(values.mean())
        shift = (
            abs(mean - reference.mean) / reference.std
            if reference.std > 0
            else (0.0 if mean == reference.mean else math.inf)
        )
        if shift <= limit:
            return None
        return (
            f"target '{name}': mean {mean:g} vs {reference.mean:g} in the schema, a shift of {shift:.2f} std "
            f"(allowed: {limit:g})",
            shift,
        )
    if not reference.classes:
        return None
    shares = target.dropna().astype(str).value_counts(normalize=True)
    classes = sorted(set(reference.classes) | set(shares.index))
    total = sum(reference.classes.values()) or 1.0
    p = np.array([reference.classes.get(c, 0.0) / total for c in classes])
    q = np.array([float(shares.get(c, 0.0)) for c in classes])
    distance = float(jensenshannon(p, q, base=2))  # as the monitor's drift test: 0 same shares, 1 disjoint
    if distance <= limit:
        return None
    new = [c for c in classes if c not in reference.classes]
    gone = [c for c in reference.classes if c not in shares.index]
    detail = "".join(
        [f"; new class(es): {', '.join(new[:5])}" if new else "", f"; absent: {', '.join(gone[:5])}" if gone else ""]
    )
    moved = ", ".join(
        f"{c} {reference.classes.get(c, 0.0) / total:.0%}->{float(shares.get(c, 0.0)):.0%}" for c in classes[:6]
    )
    return (
        f"target '{name}': class shares moved ({moved}), Jensen-Shannon distance {distance:.3f} "
        f"(allowed: {limit:g}){detail}",
        distance,
    )
