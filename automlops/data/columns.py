"""Column curation at prepare time: the columns a model should not learn from are dropped, and values a
model cannot use are made missing, each with a one-line warning that is also kept in meta.json.

The rules (README, "Columns prepare drops or retypes"), in the order they are checked:
- ±inf in a numeric column is missing (counts per column);
- an all-missing column and a constant column (one value, no missing) are dropped;
- a date column (datetime type, or text such as 2024-01-31 or 31/01/2024) is dropped: dates are not features yet;
- an id-like column is dropped: text unique in at least ID_UNIQUE_SHARE of its rows, or integers that are
  (nearly) a permutation of a range, such as 1..n, while a float or a wide-ranging integer never is;
- a text column whose present values are mostly numbers is numeric, its stray text missing (features.numeric_share).
Columns named in data.features.include are never dropped; data.features.drop_id_like=false keeps id-like ones.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from automlops.config.schema import FeaturesConfig

log = logging.getLogger(__name__)

ID_UNIQUE_SHARE = 0.99  # text or integers unique in at least this share of the present rows ...
ID_MIN_ROWS = 100  # ... of at least this many present rows (fewer prove little) are id-like
ID_RANGE_SLACK = 1.05  # integers are id-like only when max - min + 1 <= this times their count (1..n, shuffled or not)
DATE_SHARE = 0.9  # text is a date column when this share of a sample of its present values parses as a date
SAMPLE = 1000  # values looked at to tell text from dates and numbers before any full pass
DATE_PATTERN = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?\s*$"
)
STRAY_SHOWN = 3  # stray text values quoted in a warning
MAX_MISSING_VALUES = 100  # the most common stray values kept in the contract for predict to read as missing


@dataclass
class Curated:
    """The table after curation, the features that remain, and what was done (for meta.json)."""

    table: pd.DataFrame
    features: list[str]
    dropped: list[dict[str, str]] = field(default_factory=list)  # {column, reason}, one per dropped column
    warnings: list[str] = field(default_factory=list)  # every line logged, in order
    missing_values: dict[str, list[str]] = field(default_factory=dict)  # column -> stray text read as missing


def curate_columns(
    table: pd.DataFrame, features: list[str], cfg: FeaturesConfig, numeric_columns: list[str]
) -> Curated:
    """Curate `features` of `table` (a copy is changed, never the caller's). `numeric_columns` (the target)
    get the inf rule too: an infinite regression target is a missing label."""
    table = table.copy(deep=False)  # columns are replaced, never written into: the caller's table stays as it was
    curated = Curated(table, [])
    kept = set(cfg.include)
    for name in dict.fromkeys([*features, *numeric_columns]):
        _infinite_to_missing(curated, name)
    for name in features:
        reason = None if name in kept else _drop_reason(table[name], cfg)
        if reason:
            curated.dropped.append({"column": name, "reason": reason})
            _warn(curated, f"data.features: dropping column '{name}': {reason}")
            continue
        _mixed_to_numeric(curated, name, cfg.numeric_share)
        _infinite_to_missing(curated, name)  # text such as "inf" parses to infinity
        curated.features.append(name)
    return curated


def _warn(curated: Curated, message: str) -> None:
    log.warning("%s", message)
    curated.warnings.append(message)


def _drop_reason(column: pd.Series, cfg: FeaturesConfig) -> str | None:
    present = column.dropna()
    if present.empty:
        return "all values are missing"
    distinct = present.nunique()
    if len(present) == len(column) and distinct == 1:
        return f"constant (every value is {str(present.iloc[0])[:40]!r})"
    if (
        pd.api.types.is_datetime64_any_dtype(column)
        or pd.api.types.is_timedelta64_dtype(column)
        or _is_date_text(present)
    ):
        return "dates are not features yet (add it to data.features.exclude to silence this, or use it as data.split.time_column)"
    if cfg.drop_id_like and _is_id_like(present, distinct):
        return (
            f"id-like ({distinct} distinct values in {len(present)} rows); "
            "list it in data.features.include or set data.features.drop_id_like=false to keep it"
        )
    return None


def _is_text(column: pd.Series) -> bool:
    """Text as CSV and JSON give it: object (pandas 2) or a string dtype (Arrow-backed, pandas 3)."""
    return column.dtype == object or pd.api.types.is_string_dtype(column.dtype)


def _is_date_text(present: pd.Series) -> bool:
    if not _is_text(present):
        return False
    sample = _sample(present).astype(str)
    if sample.str.match(DATE_PATTERN).mean() < DATE_SHARE:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= DATE_SHARE)


def _sample(present: pd.Series) -> pd.Series:
    """About SAMPLE values spread over the column (stray values often sit together, e.g. at the top)."""
    return present.iloc[:: max(1, len(present) // SAMPLE)]


def _number_share(values: pd.Series) -> float:
    return float(pd.to_numeric(values, errors="coerce").notna().mean())


def _is_id_like(present: pd.Series, distinct: int) -> bool:
    """Text unique per row, or integers that number the rows. Floats never: a continuous column is always
    nearly unique, and its values carry signal."""
    if len(present) < ID_MIN_ROWS or distinct < ID_UNIQUE_SHARE * len(present):
        return False
    if pd.api.types.is_bool_dtype(present) or pd.api.types.is_float_dtype(present):
        return False
    if pd.api.types.is_integer_dtype(present):
        span = float(present.max()) - float(present.min()) + 1
        return span <= ID_RANGE_SLACK * len(present)
    if _is_text(present) and _number_share(_sample(present)) >= 0.5:
        return False  # numbers stored as text (a mixed column): the numeric rules below decide
    return True


def _mixed_to_numeric(curated: Curated, name: str, numeric_share: float) -> None:
    """A text column that is mostly numbers: numeric with the stray text missing when at least
    `numeric_share` of the present values are numbers, else left categorical; a warning either way."""
    column = curated.table[name]
    if not _is_text(column):
        return
    present = column.dropna()
    sample = _sample(present)
    if present.empty or _number_share(sample) == 0.0 or any(isinstance(v, (bool, np.bool_)) for v in sample):
        return  # plain text or booleans: one cheap look at a sample
    numbers = pd.to_numeric(present, errors="coerce")
    share = float(numbers.notna().mean())
    stray = present[numbers.isna()].astype(str)
    if share == 0.0 or stray.empty:  # plain text, or numbers typed as text (categorical as before)
        return
    counted = stray.value_counts()
    common = sorted(counted.index, key=lambda value: (-counted[value], value))[
        :STRAY_SHOWN
    ]  # most common first, ties by name
    shown = ", ".join(repr(value[:20]) for value in common)
    counts = f"{len(stray)} of {len(present)} values are not numbers ({shown}{', ...' if stray.nunique() > STRAY_SHOWN else ''})"
    if share >= numeric_share:
        curated.table[name] = numbers.reindex(column.index)  # pd.to_numeric, as to_model_frame types a numeric column
        curated.missing_values[name] = sorted(counted.index[:MAX_MISSING_VALUES])
        _warn(
            curated,
            f"data.features: column '{name}': {counts}; read as numeric with those values missing "
            f"({share:.1%} >= data.features.numeric_share={numeric_share})",
        )
    else:
        _warn(
            curated,
            f"data.features: column '{name}': {counts}; kept as categorical "
            f"({share:.1%} < data.features.numeric_share={numeric_share})",
        )


def _infinite_to_missing(curated: Curated, name: str) -> None:
    column = curated.table[name]
    if not pd.api.types.is_float_dtype(column):
        return
    infinite = np.isinf(column.to_numpy(dtype=float, na_value=np.nan))
    if infinite.any():
        curated.table[name] = column.where(~infinite)
        _warn(curated, f"data: column '{name}': {int(infinite.sum())} infinite value(s) (inf/-inf) read as missing")
