"""Structured-config schemas: Hydra merges every YAML file onto these, so a misspelled key or a
wrong type fails at composition with the key path named, before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

TASKS = ("auto", "binary", "multiclass", "regression")
SPLIT_STRATEGIES = ("random", "stratified", "time", "group")
# data.validation.*: each anomaly kind of the data quality gate (automlops/data/quality_gate.py) and its severity
SEVERITIES = ("error", "warn", "ignore")
ANOMALY_KINDS = (
    "missing_column",
    "new_column",
    "type_change",
    "unexpected_missing",
    "new_category",
    "out_of_range",
    "missing_rate_jump",
    "label_shift",
)


@dataclass
class RunConfig:
    name: str = "default"  # the model's name: the bundle goes to <deploy.dir>/<name>/
    seed: int = 42  # threads through splitting, sampling and model fitting


@dataclass
class FeaturesConfig:
    include: list[str] = field(
        default_factory=list
    )  # empty: every column but the target; listed columns are never auto-dropped
    exclude: list[str] = field(default_factory=list)
    drop_id_like: bool = True  # drop id-like columns (unique text, integers numbering the rows) with a warning
    numeric_share: float = (
        0.75  # a text column whose present values are at least this share numbers is numeric, the rest missing
    )


@dataclass
class SplitConfig:
    strategy: str = "stratified"  # random | stratified | time | group
    test_size: float = 0.2  # share of rows held out for the final evaluation
    valid_size: float = 0.2  # share of rows used to score search candidates
    time_column: str | None = None  # required by strategy=time: the latest rows become test
    group_column: str | None = None  # required by strategy=group: a group never spans splits


@dataclass
class DataValidationConfig:
    """What the validation gate does with each kind of anomaly (error: stop | warn: log and go on |
    ignore: do not check), and the thresholds below which a statistic is no anomaly."""

    missing_column: str = "error"  # a column the schema lists is not in the data
    new_column: str = "warn"  # a feature column the schema does not list
    type_change: str = "error"  # numeric in the schema, text in the data (or the reverse)
    unexpected_missing: str = "error"  # missing values in a column the schema marks nullable: false
    new_category: str = "warn"  # a value of a categorical column that the schema's categories do not list
    out_of_range: str = "warn"  # more than out_of_range_share of the rows fall outside the schema's min/max
    out_of_range_share: float = 0.01  # share of rows (0-1) allowed outside min/max before out_of_range counts
    missing_rate_jump: str = "warn"  # a column's share of missing values moved more than max_missing_rate_jump
    max_missing_rate_jump: float = 0.1  # absolute change of the missing share (0-1), e.g. 0.02 -> 0.12
    label_shift: str = "warn"  # the target's distribution moved more than max_label_shift from the schema's
    max_label_shift: float = 0.1  # classes: Jensen-Shannon distance (0-1) of the shares; regression: mean shift in stds


@dataclass
class DataConfig:
    source: str = MISSING  # csv | parquet | sql | builtin
    path: str | None = None  # csv, parquet: the file
    url: str | None = None  # sql: SQLAlchemy URL; put secrets in ${oc.env:VAR}
    query: str | None = None  # sql: a SELECT returning one row per example
    name: str | None = None  # builtin: a dataset shipped in an installed package
    target: str = MISSING  # the column to predict
    task: str = "auto"  # auto | binary | multiclass | regression
    positive_class: Any = None  # binary: the class f1, precision, recall, pr_auc and the threshold are about; null: the second in sorted order
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    schema: str | None = None  # a curated schema (conf/schema/<name>.yaml) each batch is validated against; null: none
    validation: DataValidationConfig = field(default_factory=DataValidationConfig)


@dataclass
class ValidationConfig:
    method: str = (
        "auto"  # auto: cv up to 10,000 train+valid rows, else holdout | holdout: the valid split | cv: k folds
    )
    folds: int = 5  # cv: folds follow data.split.strategy (stratified, group, time order, random)


@dataclass
class AutoGluonConfig:
    presets: str = (
        "auto"  # auto (bagged best_quality or medium_quality, from rows x budget x cores) | AutoGluon's presets
    )
    hyperparameters: Any = None  # model families -> settings, e.g. {GBM: {}, RF: {}}; null: the presets' own
    infer_limit: float | None = None  # seconds per row the final model may spend predicting
    num_bag_folds: int | None = None  # k-fold bagging; null or 0: none
    num_stack_levels: int | None = None  # stacking levels on top of bagged models
    refit_full: bool = True  # refit the chosen model on train+valid (AutoGluon's refit_full), within the budget
    fit_extra: bool = True  # fit() ended early with time left: more GBM/CatBoost/XGBoost candidates in the rest
    keep_only_best: bool = True  # package a slim clone that holds only what the best model needs
    verbosity: int = 0  # AutoGluon's own logging, 0 (quiet) to 4


@dataclass
class SearchConfig:
    engine: str = "auto"  # optuna | autogluon | auto (the default: search/auto.py picks from the config and the budget)
    metric: str | None = None  # a scikit-learn scorer or domain metric; null: the task's default
    objectives: list[str] = field(default_factory=list)  # optuna: also minimise predict_latency | model_size
    select: str = "best_score"  # with objectives: best_score | fastest_within | smallest_within
    select_tolerance: float = 0.01  # *_within: how far below the best score the packaged model may be
    n_trials: int | None = 20  # optuna: finished trials wanted (resumed trials count); null: until timeout
    timeout: float | None = None  # wall-clock seconds (autogluon: its time_limit, required)
    patience: int | None = None  # optuna: stop after this many finished trials without improvement
    warm_start: bool = True  # optuna: a new study runs known-good configs first, cheapest first (search/portfolio.py)
    max_trial_share: float | None = 0.25  # optuna, with a timeout: a trial is cut past this share of the search's time
    ensemble_size: int = 0  # optuna: rounds of greedy ensemble selection over the best candidates; 0: none
    max_failure_rate: float = 0.5  # optuna: stop with an error when more trials than this share fail
    sampler: str = "tpe"  # optuna: tpe | random | cmaes | nsga2 (all seeded)
    pruner: str = "median"  # optuna: none | median | successive_halving | hyperband, on per-fold scores
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    class_weight: str | None = None  # null | balanced: weight rows inversely to their class frequency
    storage: str | None = None  # optuna: a storage URL; null: sqlite file under .automlops/
    n_jobs: int = 1  # optuna: trials at once in this process (no batch barrier); >1 is not deterministic
    refit: bool = True  # optuna: refit the winner on train+valid before evaluation and packaging
    threads: int = 2  # threads each model may use while fitting
    keep_top: int = 5  # optuna: fitted candidates kept on disk, best first, traced from the leaderboard
    progress: bool = True  # a live progress bar when stderr is a terminal (never in CI)
    # optuna: searchable preprocessing, {numeric_imputer, scaler, encoder, rare_min_frequency, max_levels: spec}
    preprocess: dict[str, Any] = field(default_factory=dict)
    # optuna: family -> {param: spec}; a spec is a scalar (fixed) or {type: int|float|categorical, ...}
    space: dict[str, Any] = field(default_factory=dict)
    autogluon: AutoGluonConfig = field(default_factory=AutoGluonConfig)


@dataclass
class EvaluateConfig:
    threshold: float | None = None  # binary: positive-class probability from which to predict it; null: the model's own
    slices: list[str] = field(default_factory=list)  # columns with per-value metrics (numeric: quantile bins)
    slice_bins: int = 4  # numeric slice columns are cut into this many quantile bins
    min_slice_rows: int = 10  # smaller slices are reported with their size but no metrics
    plots: bool = True  # write DVC plot files (confusion matrix, ROC, PR, calibration, residuals, importance)
    importance_repeats: int = 3  # permutation-importance shuffles per feature on the test split; 0: skip
    importance_rows: int | None = 5000  # test rows importance runs on (a seeded sample); null: all of them
    importance_seconds: float | None = (
        3.0  # time cap (to within one round): fewer rows, then no new repeat past it; null: none
    )


@dataclass
class GateCheck:
    metric: str = MISSING  # a test metric (metrics/test.json) or `primary` (roc_auc | log_loss | rmse by task)
    min: float | None = None  # value threshold: the challenger's metric must be >= min
    max: float | None = None  # value threshold: the challenger's metric must be <= max
    max_worse: float | None = (
        None  # vs the champion on test rows neither trained on: at most this much worse (0: no worse)
    )
    max_worse_relative: float | None = None  # vs the champion: at most this share worse (0.01 = 1 %)


@dataclass
class InfraConfig:
    enabled: bool = True  # serve the new bundle in a subprocess and query it before promotion
    requests: int = 20  # requests sent with the bundle's input example
    p95_ms: float = 1000.0  # limit on the 95th-percentile request latency, milliseconds
    startup_timeout: float = 120.0  # seconds the server may take to answer /health


@dataclass
class GateConfig:
    required: bool = True  # a failed gate exits non-zero; false: warn and exit 0 (the champion is kept either way)
    checks: list[GateCheck] = field(default_factory=list)
    min_rows: int = 30  # change checks need this many test rows neither model trained on; fewer: the gate fails
    incomparable: str = "fail"  # the champion cannot score this split: fail | recorded (its recorded metrics) | skip
    infra: InfraConfig = field(default_factory=InfraConfig)


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None  # null: sqlite:///.automlops/mlflow.db under the project
    experiment: str = "automlops"  # the MLflow experiment the model's run is logged to


@dataclass
class DockerConfig:
    dir: str = "artifacts/docker"  # the build context goes to <dir>/<run.name>/
    base_image: str = "python:3.11-slim"  # the image the context builds FROM
    port: int = 8080  # the port `automlops serve` listens on inside the container


@dataclass
class CardConfig:
    intended_use: str = ""  # model card: what the model is for, and for whom
    out_of_scope: str = ""  # model card: uses it was not built or checked for
    limitations: str = ""  # model card: known weaknesses, caveats, ethical considerations
    owners: list[str] = field(default_factory=list)  # model card: who to ask


@dataclass
class SigningConfig:
    private_key: str | None = None  # Ed25519 private key file (PEM) package and deploy sign with; null: private_key_env
    private_key_env: str = (
        "AUTOMLOPS_SIGNING_KEY"  # environment variable holding the private key PEM, used when private_key is null
    )
    public_keys: list[str] = field(
        default_factory=list
    )  # public key files (PEM) a bundle must be signed by to load; several: rotation; []: sha256 only


@dataclass
class DeployConfig:
    targets: list[str] = field(default_factory=lambda: ["bundle"])  # bundle | mlflow | docker, several allowed
    dir: str = "models"  # the local registry: <dir>/<run.name>/versions/<n>/ and aliases.json
    alias: str = "champion"  # the alias a blessed version is promoted to
    example_rows: int = 5  # raw test rows stored as input_example.json
    refit_all_rows: bool = False  # optuna: once blessed, publish the candidate refit on train+valid+test; the
    # recorded test metrics stay the pre-refit model's estimate (labelled so in the manifest and model card)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    card: CardConfig = field(default_factory=CardConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)


@dataclass
class PredictionLogConfig:
    enabled: bool = False  # append each request's inputs, outputs, model version and time (for monitoring)
    dir: str = "logs/predictions"  # JSONL files, a new one every max_rows_per_file rows
    max_rows_per_file: int = 100000  # rotation: rows per file
    queue_size: int = 10000  # requests waiting to be written; when full, entries are dropped (counted), never awaited


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # loopback only unless told otherwise (0.0.0.0 exposes the server)
    port: int = 8080
    workers: int = 1  # server processes (uvicorn workers), each with the model in memory
    max_rows: int = 10000  # rows per request; more is refused with 413
    max_body_mb: float = 20.0  # request body size limit in MiB; more is refused with 413
    unknown_categories: str = "model"  # a category unseen in training: model (its own unseen-level handling, as
    # `automlops predict` does) | missing (scored as empty) | error (422 naming column and row)
    token_env: str | None = None  # name of an environment variable holding a bearer token; null: no auth
    inline_ms: float = (
        5.0  # a model whose last small call (<= 64 rows) took less runs on the event loop (no thread hop); 0: never
    )
    reload_interval: float = 2.0  # seconds between checks of the alias a models/<name>@<alias> server follows; 0: never
    prediction_log: PredictionLogConfig = field(default_factory=PredictionLogConfig)


@dataclass
class PredictConfig:
    id_columns: list[str] = field(default_factory=list)  # input columns copied to the output (row identity)
    chunk_rows: int = 100000  # rows scored at a time: memory stays bounded whatever the file size


@dataclass
class DriftThresholds:
    ks: float = 0.05  # p-value under which a numeric column drifted (small references)
    chisquare: float = 0.05  # p-value under which a categorical column drifted (small references)
    wasserstein: float = 0.1  # distance, in reference standard deviations, from which a numeric column drifted
    jensenshannon: float = 0.1  # distance (0-1) from which a categorical column drifted
    psi: float = 0.1  # population stability index from which a column drifted (0.1-0.2 moderate, above 0.2 major)


@dataclass
class ColumnDriftConfig:
    method: str | None = None  # null: monitor.method
    threshold: float | None = None  # null: monitor.thresholds.<method>


@dataclass
class RetrainConfig:
    when: str = "never"  # never | dataset_drift | performance_drift | any_drift: run the pipeline on the batch
    overrides: list[str] = field(default_factory=list)  # extra overrides for that run, e.g. [search.n_trials=50]


@dataclass
class MonitorConfig:
    data: str = (
        "data/incoming"  # the batch `dvc repro monitor` checks: a .csv/.parquet/.json file or a prediction-log folder
    )
    labels: str | None = None  # a file of late labels (id column + target) joined to the batch by id_column
    id_column: str | None = None  # the row id shared by the batch and the labels file
    method: str = "auto"  # auto (by type and reference size) | ks | chisquare | wasserstein | jensenshannon | psi
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    columns: dict[str, ColumnDriftConfig] = field(default_factory=dict)  # per-column {method, threshold}
    max_missing_rate_change: float = 0.05  # a column drifted when its missing share moved more than this (absolute)
    drift_share: float = 0.5  # dataset drift when at least this share of the input columns drifted
    prediction: bool = True  # also test the model's predictions for drift
    max_metric_drop: float = 0.05  # with labels: performance drift when the primary metric is this share worse
    min_metric_worse: float = 0.0  # ... and at least this much worse in the metric's own units (a noise floor)
    fail_on_drift: bool = True  # exit 4 on dataset or performance drift (for CI and schedulers)
    out: str = "metrics/monitor"  # monitor.json (DVC metrics) and monitor.html are written here
    retrain: RetrainConfig = field(default_factory=RetrainConfig)


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    conf_digest: str = ""  # fingerprint of conf/ when params.yaml was composed
