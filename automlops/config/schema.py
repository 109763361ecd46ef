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
class ValidationConfig:
    method: str = "holdout"  # holdout: score on the valid split | cv: k folds over train+valid
    folds: int = 5  # cv: folds follow data.split.strategy (stratified, group, time order, random)


@dataclass
class AutoGluonConfig:
    presets: str = "medium_quality"  # AutoGluon presets, e.g. medium_quality | good_quality | best_quality
    hyperparameters: Any = None  # model families -> settings, e.g. {GBM: {}, RF: {}}; null: the presets' own
    infer_limit: Optional[float] = None  # seconds per row the final model may spend predicting
    num_bag_folds: Optional[int] = None  # k-fold bagging; null or 0: none
    num_stack_levels: Optional[int] = None  # stacking levels on top of bagged models
    refit_full: bool = True  # refit the chosen model on train+valid (AutoGluon's refit_full), within the budget
    keep_only_best: bool = True  # package a slim clone that holds only what the best model needs
    verbosity: int = 0  # AutoGluon's own logging, 0 (quiet) to 4


@dataclass
class SearchConfig:
    engine: str = "optuna"  # optuna | autogluon
    metric: Optional[str] = None  # a scikit-learn scorer or domain metric; null: the task's default
    objectives: list[str] = field(default_factory=list)  # optuna: also minimise predict_latency | model_size
    select: str = "best_score"  # with objectives: best_score | fastest_within | smallest_within
    select_tolerance: float = 0.01  # *_within: how far below the best score the packaged model may be
    n_trials: Optional[int] = 20  # optuna: finished trials wanted (resumed trials count); null: until timeout
    timeout: Optional[float] = None  # wall-clock seconds (autogluon: its time_limit, required)
    patience: Optional[int] = None  # optuna: stop after this many finished trials without improvement
    max_failure_rate: float = 0.5  # optuna: stop with an error when more trials than this share fail
    sampler: str = "tpe"  # optuna: tpe | random | cmaes | nsga2 (all seeded)
    pruner: str = "median"  # optuna: none | median | successive_halving | hyperband, on per-fold scores
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    class_weight: Optional[str] = None  # null | balanced: weight rows inversely to their class frequency
    storage: Optional[str] = None  # optuna: a storage URL; null: sqlite file under .automlops/
    n_jobs: int = 1  # optuna: trials at once in this process (no batch barrier); >1 is not deterministic
    refit: bool = True  # optuna: refit the winner on train+valid before evaluation and packaging
    threads: int = 2  # threads each model may use while fitting
    keep_top: int = 5  # optuna: fitted candidates kept on disk, best first, traced from the leaderboard
    progress: bool = True  # a live progress bar when stderr is a terminal (never in CI)
    # optuna: searchable preprocessing, {numeric_imputer, scaler, encoder, rare_min_frequency: spec}
    preprocess: dict[str, Any] = field(default_factory=dict)
    # optuna: family -> {param: spec}; a spec is a scalar (fixed) or {type: int|float|categorical, ...}
    space: dict[str, Any] = field(default_factory=dict)
    autogluon: AutoGluonConfig = field(default_factory=AutoGluonConfig)


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
