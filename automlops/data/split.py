"""Train / validation / test splits by the strategy the config names."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from automlops.config.schema import SplitConfig
from automlops.errors import DataError

Split = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def split_table(table: pd.DataFrame, target: str, task: str, cfg: SplitConfig, seed: int) -> Split:
    # valid_size is a share of the whole table; after taking test out it is a larger share of the rest
    valid_share = cfg.valid_size / (1.0 - cfg.test_size)
    if cfg.strategy == "time":
        return _split_by_time(table, cfg)
    if cfg.strategy == "group":
        rest, test = _split_groups(table, table[cfg.group_column], cfg.test_size, seed)
        train, valid = _split_groups(rest, rest[cfg.group_column], valid_share, seed)
        return train, valid, test
    labels = table[target].to_numpy() if cfg.strategy == "stratified" and task != "regression" else None
    try:  # split row positions, then copy each part once (the table may have millions of rows)
        rest, test = train_test_split(
            np.arange(len(table)), test_size=cfg.test_size, random_state=seed, stratify=labels
        )
        train, valid = train_test_split(
            rest, test_size=valid_share, random_state=seed, stratify=labels[rest] if labels is not None else None
        )
    except ValueError as error:
        raise DataError(
            f"data.split: cannot split {len(table)} rows with strategy={cfg.strategy} ({error}); "
            "use more data, larger split sizes, or data.split.strategy=random"
        ) from error
    return table.iloc[train], table.iloc[valid], table.iloc[test]


def _split_by_time(table: pd.DataFrame, cfg: SplitConfig) -> Split:
    ordered = table.loc[time_order(table[str(cfg.time_column)])]
    n_test = max(1, round(len(ordered) * cfg.test_size))
    n_valid = max(1, round(len(ordered) * cfg.valid_size))
    if n_test + n_valid >= len(ordered):
        raise DataError(f"data.split: {len(ordered)} rows are too few for test_size and valid_size; use more data")
    return ordered.iloc[: -n_test - n_valid], ordered.iloc[-n_test - n_valid : -n_test], ordered.iloc[-n_test:]


def time_order(column: pd.Series) -> pd.Index:
    """Row order by time; text (as CSV gives dates) is parsed, since it sorts wrongly as text."""
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
        parsed = pd.to_datetime(column, errors="coerce", format="mixed")
        bad = column[parsed.isna() & column.notna()]
        if len(bad):
            raise DataError(
                f"data.split.time_column: '{column.name}' holds {str(bad.iloc[0])!r}, which is not a date or number; "
                "fix the column or choose another time_column"
            )
        column = parsed
    return column.sort_values(kind="stable").index


def _split_groups(table: pd.DataFrame, groups: pd.Series, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if groups.nunique() < 2:
        raise DataError(f"data.split.group_column: '{groups.name}' has fewer than 2 groups; choose another column")
    splitter = GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
    keep, held = next(splitter.split(table, groups=groups))
    return table.iloc[keep], table.iloc[held]
