"""Cross-field checks on the typed config. Every problem is collected, then raised once."""

from __future__ import annotations

import re

from automlops.config.schema import SPLIT_STRATEGIES, TASKS, Config
from automlops.errors import ConfigError, unknown_name

VALIDATION_METHODS = ("holdout", "cv")
CLASS_WEIGHTS = ("balanced",)


def check_config(config: Config) -> None:
    problems = _run(config) + _data(config) + _search(config) + _deploy(config)
    if problems:
        count = f"{len(problems)} config problems: " if len(problems) > 1 else ""
        raise ConfigError(count + "; ".join(problems))


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
    if split.strategy not in SPLIT_STRATEGIES:
        problems.append(unknown_name("data.split.strategy", split.strategy, SPLIT_STRATEGIES))
    for key in ("test_size", "valid_size"):
        value = getattr(split, key)
        if not 0 < value < 1:
            problems.append(f"data.split.{key}: must be between 0 and 1 (a share of rows), got {value}")
    if 0 < split.test_size < 1 and 0 < split.valid_size < 1 and split.test_size + split.valid_size >= 1:
        problems.append("data.split: test_size + valid_size must be < 1 so that rows are left for training")
    for strategy, key in (("time", "time_column"), ("group", "group_column")):
        if split.strategy == strategy and not getattr(split, key):
            problems.append(f"data.split.{key}: required when data.split.strategy={strategy}")
    return problems


def _search(config: Config) -> list[str]:
    from automlops.search.engines import ENGINES
    from automlops.search.metrics import check_metric_name

    search = config.search
    problems = []
    if search.engine not in ENGINES:
        problems.append(unknown_name("search.engine", search.engine, ENGINES.names()))
    if search.n_trials is not None and search.n_trials < 1:
        problems.append(f"search.n_trials: must be >= 1, got {search.n_trials}; or set it to null and give search.timeout")
    if search.timeout is not None and search.timeout <= 0:
        problems.append(f"search.timeout: must be > 0 seconds, got {search.timeout}; or null for no limit")
    if search.n_trials is None and search.timeout is None:
        problems.append("search: give a budget: search.n_trials, search.timeout or both")
    if search.validation.method not in VALIDATION_METHODS:
        problems.append(unknown_name("search.validation.method", search.validation.method, VALIDATION_METHODS))
    if search.validation.folds < 2:
        problems.append(f"search.validation.folds: must be >= 2, got {search.validation.folds}")
    if search.class_weight is not None and search.class_weight not in CLASS_WEIGHTS:
        problems.append(unknown_name("search.class_weight", search.class_weight, CLASS_WEIGHTS) + " (or null)")
    if search.threads < 1:
        problems.append(f"search.threads: must be >= 1, got {search.threads}")
    if search.metric is not None:
        problem = check_metric_name(search.metric)
        if problem:
            problems.append(problem)
    if search.engine in ENGINES:
        ENGINES.get(search.engine).check(search, problems)
    return problems


def _deploy(config: Config) -> list[str]:
    from automlops.deploy import TARGETS

    problems = []
    if config.deploy.target not in TARGETS:
        problems.append(unknown_name("deploy.target", config.deploy.target, TARGETS.names()))
    if config.deploy.example_rows < 1:
        problems.append(f"deploy.example_rows: must be >= 1, got {config.deploy.example_rows}")
    return problems
