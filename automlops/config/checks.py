"""Cross-field checks on the typed config. Every problem is collected, then raised once."""

from __future__ import annotations

import re

from automlops.config.schema import SPLIT_STRATEGIES, TASKS, Config, MonitorConfig, PredictConfig, ServeConfig
from automlops.errors import ConfigError, unknown_name


def check_config(config: Config) -> None:
    problems = (_run(config) + _data(config) + _search(config) + _evaluate(config) + _gate(config) + _deploy(config)
                + _serve(config.serve) + _predict(config.predict) + _monitor(config.monitor) + _urls(config))
    if problems:
        count = f"{len(problems)} config problems: " if len(problems) > 1 else ""
        raise ConfigError(count + "; ".join(problems))


def _urls(config: Config) -> list[str]:
    """URLs that may hold a password, checked before any work (and again, filled in, where they are used)."""
    from automlops.urls import url_problem

    urls = {"data.url": config.data.url, "search.storage": config.search.storage,
            "deploy.mlflow.tracking_uri": config.deploy.mlflow.tracking_uri}
    return [problem for key, url in urls.items() if url and (problem := url_problem(url, key))]


def _run(config: Config) -> list[str]:
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.run.name):
        problems.append(f"run.name: '{config.run.name}' must be a plain name (letters, digits, _ . -), it names the model folder")
    if config.run.seed < 0:
        problems.append(f"run.seed: must be >= 0, got {config.run.seed}")
    return problems


def _data(config: Config) -> list[str]:
    from automlops.data.sources import SOURCES

    data, split = config.data, config.data.split
    problems = []
    if data.source not in SOURCES:
        problems.append(unknown_name("data.source", data.source, SOURCES.names()))
    else:
        for field in SOURCES.get(data.source).required:
            if not getattr(data, field):
                problems.append(f"data.{field}: required when data.source={data.source}; set it in conf/data/ or on the command line")
    if data.task not in TASKS:
        problems.append(unknown_name("data.task", data.task, TASKS))
    if data.positive_class is not None and not isinstance(data.positive_class, (str, int, float, bool)):
        problems.append(f"data.positive_class: must be one class label (text, a number or true/false), got {data.positive_class!r}")
    elif data.positive_class is not None and data.task in ("multiclass", "regression"):
        problems.append(f"data.positive_class: applies to binary tasks only, but data.task={data.task}; remove it or set data.task=binary")
    if split.strategy not in SPLIT_STRATEGIES:
        problems.append(unknown_name("data.split.strategy", split.strategy, SPLIT_STRATEGIES))
    for key in ("test_size", "valid_size"):
        value = getattr(split, key)
        if not 0 < value < 1:
            problems.append(f"data.split.{key}: must be between 0 and 1 (a share of rows), got {value}")
    if 0 < split.test_size < 1 and 0 < split.valid_size < 1 and split.test_size + split.valid_size >= 1:
        problems.append("data.split: test_size + valid_size must be < 1 so that rows are left for training")
    if not 0 < data.features.numeric_share <= 1:
        problems.append(f"data.features.numeric_share: must be a share in (0, 1], got {data.features.numeric_share}")
    for strategy, key in (("time", "time_column"), ("group", "group_column")):
        if split.strategy == strategy and not getattr(split, key):
            problems.append(f"data.split.{key}: required when data.split.strategy={strategy}")
    return problems + _data_validation(config)


def _data_validation(config: Config) -> list[str]:
    """Severities and thresholds of the validation gate; the curated schema file is read (and checked) here,
    so a bad one fails before any work starts."""
    from automlops.data.schema import read_schema
    from automlops.data.validation import ANOMALY_KINDS, SEVERITIES

    validation, problems = config.data.validation, []
    for kind in ANOMALY_KINDS:
        if getattr(validation, kind) not in SEVERITIES:
            problems.append(unknown_name(f"data.validation.{kind}", getattr(validation, kind), SEVERITIES))
    for key in ("out_of_range_share", "max_missing_rate_jump"):
        if not 0 <= getattr(validation, key) <= 1:
            problems.append(f"data.validation.{key}: must be a share between 0 and 1, got {getattr(validation, key)}")
    if validation.max_label_shift < 0:
        problems.append(f"data.validation.max_label_shift: must be >= 0, got {validation.max_label_shift}")
    if config.data.schema:
        try:
            read_schema(config.data.schema)
        except ConfigError as error:
            problems.append(str(error))
    return problems


def _search(config: Config) -> list[str]:
    from automlops.search.checks import check_search

    return check_search(config.search)


def _evaluate(config: Config) -> list[str]:
    evaluate, task = config.evaluate, config.data.task
    problems = []
    if evaluate.threshold is not None and not 0 < evaluate.threshold < 1:
        problems.append(f"evaluate.threshold: must be a probability between 0 and 1 (exclusive), got {evaluate.threshold}; or null for the model's own decision")
    if evaluate.threshold is not None and task in ("multiclass", "regression"):
        problems.append(f"evaluate.threshold: applies to binary tasks only, but data.task={task}; set it to null")
    repeated = sorted({name for name in evaluate.slices if evaluate.slices.count(name) > 1})
    if repeated:
        problems.append(f"evaluate.slices: column(s) {', '.join(repeated)} listed more than once; list each column once")
    if evaluate.slice_bins < 2:
        problems.append(f"evaluate.slice_bins: must be >= 2 (quantile bins per numeric slice column), got {evaluate.slice_bins}")
    if evaluate.min_slice_rows < 1:
        problems.append(f"evaluate.min_slice_rows: must be >= 1, got {evaluate.min_slice_rows}")
    if evaluate.importance_repeats < 0:
        problems.append(f"evaluate.importance_repeats: must be >= 0 (0 skips permutation importance), got {evaluate.importance_repeats}")
    if evaluate.importance_rows is not None and evaluate.importance_rows < 1:
        problems.append(f"evaluate.importance_rows: must be >= 1 test row, got {evaluate.importance_rows}; or null for all of them")
    if evaluate.importance_seconds is not None and evaluate.importance_seconds <= 0:
        problems.append(f"evaluate.importance_seconds: must be > 0 seconds, got {evaluate.importance_seconds}; or null for no time cap")
    return problems

def _deploy(config: Config) -> list[str]:
    from automlops.deploy import TARGETS
    from automlops.deploy.mlflow_target import check_mlflow

    deploy = config.deploy
    problems = [unknown_name("deploy.targets", name, TARGETS.names()) for name in deploy.targets if name not in TARGETS]
    if not deploy.targets:
        problems.append("deploy.targets: name at least one target, e.g. [bundle]")
    if len(set(deploy.targets)) != len(deploy.targets):
        problems.append(f"deploy.targets: {deploy.targets} names a target twice")
    if deploy.example_rows < 1:
        problems.append(f"deploy.example_rows: must be >= 1, got {deploy.example_rows}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", deploy.alias) or deploy.alias.removeprefix("v").isdigit():
        problems.append(f"deploy.alias: '{deploy.alias}' must be a name (letters, digits, _ -; not a version number like v2)")
    check_mlflow(deploy, problems)
    signing = deploy.signing
    if signing.private_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", signing.private_key_env):
        problems.append(f"deploy.signing.private_key_env: '{signing.private_key_env}' must name an environment variable "
                        "(letters, digits, _), e.g. AUTOMLOPS_SIGNING_KEY; put the key itself in that variable")
    if any(not str(path).strip() for path in signing.public_keys):
        problems.append("deploy.signing.public_keys: an entry is empty; list public key files, e.g. [keys/signing.pub]")
    if deploy.docker.port < 1 or deploy.docker.port > 65535:
        problems.append(f"deploy.docker.port: must be a TCP port (1-65535), got {deploy.docker.port}")
    return problems


def _gate(config: Config) -> list[str]:
    from automlops.evaluate import metric_names
    from automlops.gate import INCOMPARABLE_CHOICES, PRIMARY

    gate, problems = config.gate, []
    known = sorted({PRIMARY, *metric_names("binary"), *metric_names("multiclass"), *metric_names("regression")})
    for i, check in enumerate(gate.checks):
        key = f"gate.checks[{i}]"
        if check.metric not in known:
            problems.append(unknown_name(f"{key}.metric", check.metric, known))
        if all(getattr(check, k) is None for k in ("min", "max", "max_worse", "max_worse_relative")):
            problems.append(f"{key}: checks nothing; give min, max, max_worse or max_worse_relative")
        for k in ("max_worse", "max_worse_relative"):
            if getattr(check, k) is not None and getattr(check, k) < 0:
                problems.append(f"{key}.{k}: must be >= 0 (how much worse than the champion is allowed), got {getattr(check, k)}")
    if gate.min_rows < 1:
        problems.append(f"gate.min_rows: must be >= 1 (test rows neither model trained on), got {gate.min_rows}")
    if gate.incomparable not in INCOMPARABLE_CHOICES:
        problems.append(unknown_name("gate.incomparable", gate.incomparable, list(INCOMPARABLE_CHOICES)))
    infra = gate.infra
    if infra.requests < 1:
        problems.append(f"gate.infra.requests: must be >= 1, got {infra.requests}")
    if infra.p95_ms <= 0 or infra.startup_timeout <= 0:
        problems.append("gate.infra: p95_ms and startup_timeout must be > 0")
    return problems


def _serve(serve: ServeConfig) -> list[str]:
    from automlops.data.contract import UNKNOWN_CATEGORY_POLICIES

    problems = []
    if serve.unknown_categories not in UNKNOWN_CATEGORY_POLICIES:
        problems.append(unknown_name("serve.unknown_categories", serve.unknown_categories, UNKNOWN_CATEGORY_POLICIES))
    for key in ("workers", "max_rows"):
        if getattr(serve, key) < 1:
            problems.append(f"serve.{key}: must be >= 1, got {getattr(serve, key)}")
    if serve.max_body_mb <= 0:
        problems.append(f"serve.max_body_mb: must be > 0 MiB, got {serve.max_body_mb}")
    if not 0 < serve.port < 65536:
        problems.append(f"serve.port: must be a TCP port (1-65535), got {serve.port}")
    if serve.inline_ms < 0:
        problems.append(f"serve.inline_ms: must be >= 0 ms (0: always score in a worker thread), got {serve.inline_ms}")
    if serve.reload_interval < 0:
        problems.append(f"serve.reload_interval: must be >= 0 seconds (0: never reload), got {serve.reload_interval}")
    for key in ("max_rows_per_file", "queue_size"):
        if getattr(serve.prediction_log, key) < 1:
            problems.append(f"serve.prediction_log.{key}: must be >= 1, got {getattr(serve.prediction_log, key)}")
    return problems


def check_section(name: str, section: object) -> None:
    """Value checks of a run-time section composed without the rest of the config."""
    checks = {ServeConfig: _serve, PredictConfig: _predict, MonitorConfig: _monitor}
    problems = checks[type(section)](section)  # type: ignore[operator]
    if problems:
        raise ConfigError("; ".join(problems))


def _predict(predict: PredictConfig) -> list[str]:
    return [f"predict.chunk_rows: must be >= 1 (rows scored at a time), got {predict.chunk_rows}"] if predict.chunk_rows < 1 else []


def _monitor(monitor: MonitorConfig) -> list[str]:
    from automlops.monitor.drift import METHODS
    from automlops.monitor.runner import RETRAIN_TRIGGERS

    problems = []
    if monitor.method not in METHODS:
        problems.append(unknown_name("monitor.method", monitor.method, METHODS))
    for name, column in monitor.columns.items():
        if column.method is not None and column.method not in METHODS[1:]:
            problems.append(unknown_name(f"monitor.columns.{name}.method", column.method, METHODS[1:]))
        if column.threshold is not None and column.threshold <= 0:
            problems.append(f"monitor.columns.{name}.threshold: must be > 0, got {column.threshold}")
    for method, value in vars(monitor.thresholds).items():
        if not value > 0 or (method in ("ks", "chisquare") and value >= 1):
            problems.append(f"monitor.thresholds.{method}: must be {'a p-value in (0, 1)' if method in ('ks', 'chisquare') else '> 0'}, got {value}")
    if not 0 < monitor.drift_share <= 1:
        problems.append(f"monitor.drift_share: must be in (0, 1] (the share of columns that makes dataset drift), got {monitor.drift_share}")
    for key in ("max_missing_rate_change", "max_metric_drop", "min_metric_worse"):
        if getattr(monitor, key) < 0:
            problems.append(f"monitor.{key}: must be >= 0, got {getattr(monitor, key)}")
    if monitor.retrain.when not in RETRAIN_TRIGGERS:
        problems.append(unknown_name("monitor.retrain.when", monitor.retrain.when, RETRAIN_TRIGGERS))
    return problems
