"""Structured-config schemas: Hydra merges every YAML file onto these, so a misspelled key or a
wrong type fails at composition with the key path named, before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

TASKS = ("auto", "binary", "multiclass", "regression")
SPLIT_STRATEGIES = ("random", "stratified", "time", "group")


@dataclass
class RunConfig:
    name: str = "default"  # the model's name: the bundle goes to <deploy.dir>/<name>/
    seed: int = 42  # threads through splitting, sampling and model fitting


@dataclass
class FeaturesConfig:
    include: list[str] = field(default_factory=list)  # empty: every column but the target
    exclude: list[str] = field(default_factory=list)


@dataclass
class SplitConfig:
    strategy: str = "stratified"  # random | stratified | time | group
    test_size: float = 0.2  # share of rows held out for the final evaluation
    valid_size: float = 0.2  # share of rows used to score search candidates
    time_column: Optional[str] = None  # required by strategy=time: the latest rows become test
    group_column: Optional[str] = None  # required by strategy=group: a group never spans splits


@dataclass
class DataConfig:
    source: str = MISSING  # csv | parquet | sql | builtin
    path: Optional[str] = None  # csv, parquet: the file
    url: Optional[str] = None  # sql: SQLAlchemy URL; put secrets in ${oc.env:VAR}
    query: Optional[str] = None  # sql: a SELECT returning one row per example
    name: Optional[str] = None  # builtin: a dataset shipped in an installed package
    target: str = MISSING  # the column to predict
    task: str = "auto"  # auto | binary | multiclass | regression
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


@dataclass
class SearchConfig:
    engine: str = "optuna"  # optuna (more engines register under search.engine)
    metric: Optional[str] = None  # a scikit-learn scorer name; null: the task's default
    n_trials: Optional[int] = 20  # trials to finish (resumed trials count); null: until timeout
    timeout: Optional[float] = None  # wall-clock seconds for the search; null: no limit
    sampler: str = "tpe"  # tpe | random
    storage: Optional[str] = None  # an Optuna storage URL; null: sqlite file under .automlops/
    refit: bool = True  # refit the best candidate on train+valid before evaluation
    threads: int = 2  # threads each model may use while fitting
    # family -> {param: spec}; a spec is a scalar (fixed) or {type: int|float|categorical, ...}
    space: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeployConfig:
    target: str = "bundle"  # bundle (more deploy targets register under deploy.target)
    dir: str = "models"  # bundles are written to <dir>/<run.name>/
    example_rows: int = 5  # raw rows stored as input_example.json


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    conf_digest: str = ""  # fingerprint of conf/ when params.yaml was composed
