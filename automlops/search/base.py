"""What every search engine takes and returns, and the contract an engine implements.

Engines (optuna_engine, autogluon_engine) import this module; automlops.search.engines registers them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automlops.config.schema import SearchConfig
from automlops.data.contract import ColumnSpec
from automlops.records import SearchBest


@dataclass
class SearchData:
    """What a search sees: typed features and labels, what they mean, and how rows may be folded."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_valid: pd.DataFrame
    y_valid: pd.Series
    contract: list[ColumnSpec]
    task: str
    data_hash: str
    split_strategy: str = "random"  # data.split.strategy: how cross-validation folds are drawn
    groups: pd.Series | None = None  # strategy=group: train+valid rows' groups, in x_train+x_valid order
    time: pd.Series | None = None  # strategy=time: train+valid rows' time, in x_train+x_valid order
    positive_class: Any = None  # binary: the recorded positive class (meta.json), which the scorer is built on

    @cached_property
    def classes(self) -> np.ndarray | None:
        """A classifier's classes_ as scikit-learn sorts them (np.unique of train+valid's labels), computed
        once per search rather than per trial; None for regression."""
        if self.task == "regression":
            return None
        return np.unique(np.concatenate([self.y_train.to_numpy(), self.y_valid.to_numpy()]))

    def positive(self) -> Any:
        """Binary: the recorded positive class, else the default rule (the second class in sorted
        order); None for other tasks."""
        from automlops.data.positive import positive_class

        if self.task != "binary" or self.positive_class is not None:
            return self.positive_class
        return positive_class(None, pd.concat([self.y_train, self.y_valid]), self.task)


@dataclass
class Candidate:
    """One evaluated configuration, the same record whatever engine produced it."""

    engine: str
    trial: int  # the engine's own number for it (Optuna trial number, AutoGluon leaderboard row)
    family: str
    params: dict[str, Any]
    state: str  # COMPLETE | FAIL | PRUNED | RUNNING
    score: float | None  # validation score on the search metric (higher is better)
    fit_seconds: float | None = None
    predict_seconds_per_row: float | None = None
    size_bytes: int | None = None
    artifact: str = ""  # where the fitted candidate is kept, if it is
    error: str = ""
    source: str = ""  # the study or fit it came from
    pareto: bool = False  # on the Pareto front of a multi-objective search


@dataclass
class SearchResult:
    model: Any  # fitted; takes the contract's columns
    model_format: str  # how to save and load it (automlops.artifacts.FORMATS)
    winner: Candidate
    metric: str
    candidates: list[Candidate]
    lineage: dict[str, Any] = field(default_factory=dict)  # engine-specific trace (study name, trials...)
    trained_on: tuple[str, ...] = ("train", "valid")  # the splits `model` was fit on: the bundle records their rows


@dataclass
class AllRows:
    """What a refit on every labelled row sees (deploy.refit_all_rows): the winner as the search recorded
    it, and the features and labels of train+valid+test, in that order."""

    best: SearchBest
    x: pd.DataFrame
    y: pd.Series
    contract: list[ColumnSpec]
    task: str


LATER_STAGES_SHARE = 0.1  # of search.timeout kept for evaluate, package and the gate, which follow the search


@dataclass(frozen=True)
class Engine:
    run: Callable[[SearchConfig, SearchData, int, Path], SearchResult]  # (cfg, data, seed, state dir)
    check: Callable[[SearchConfig, list[str]], None]  # appends config problems found before any data is read
    # what the rest of `automlops run` takes around this engine's search (imports, prepare, evaluate, package,
    # the gate's serving check: a fresh `automlops serve` loading the model is most of it), measured on 2 cores
    later_stages_seconds: float = 8.0
    # the winner fit again, same family and settings, on every labelled row: (rows, seed) -> the fitted model
    # in the winner's format; None: the engine cannot (deploy.refit_all_rows is refused for it)
    refit_all: Callable[[AllRows, int], Any] | None = None


def search_seconds(timeout: float | None, later_stages_seconds: float) -> float | None:
    """The part of search.timeout the search itself (trials or fits, and the winner's refit) may
    spend: search.timeout is the whole run's budget, so the stages after it keep
    max(LATER_STAGES_SHARE of it, later_stages_seconds), and never more than half of it."""
    if timeout is None:
        return None
    return timeout - min(timeout / 2, max(LATER_STAGES_SHARE * timeout, later_stages_seconds))
