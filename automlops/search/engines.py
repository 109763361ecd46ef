"""The engine registry and the record every engine returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from automlops.config.schema import SearchConfig
from automlops.data.contract import ColumnSpec
from automlops.registry import Registry


@dataclass
class SearchData:
    """What a search sees: typed features and labels, and what they mean."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_valid: pd.DataFrame
    y_valid: pd.Series
    contract: list[ColumnSpec]
    task: str
    data_hash: str


@dataclass
class SearchResult:
    model: Any  # fitted, takes the contract's columns
    family: str
    params: dict[str, Any]
    metric: str
    valid_score: float
    leaderboard: pd.DataFrame  # one row per candidate, best first; column `winner` marks the packaged one
    lineage: dict[str, Any] = field(default_factory=dict)  # engine-specific trace (study name, trial...)


Engine = Callable[[SearchConfig, SearchData, int, Path], SearchResult]  # (cfg, data, seed, state dir)

ENGINES: Registry[Engine] = Registry("search.engine")


def _register_builtin_engines() -> None:
    from automlops.search import optuna_engine  # noqa: F401  (registers "optuna")


_register_builtin_engines()
