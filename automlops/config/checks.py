"""Checks of the sections no package owns (run, predict) and of URLs that may hold a password. The other
sections' checks live in their packages (data/checks.py, ...); automlops.checks runs them all and raises once."""

from __future__ import annotations

import re

from automlops.config.schema import Config, PredictConfig
from automlops.constraints import Constraints, Interval, violations
from automlops.errors import unknown_name
from automlops.urls import url_problem

VALIDATION_METHODS = ("auto", "holdout", "cv")
CLASS_WEIGHTS = ("balanced",)
PREDICT_CONSTRAINTS: Constraints = {"chunk_rows": Interval(1, None, note="(rows scored at a time)")}


def check_urls(config: Config) -> list[str]:
    """URLs that may hold a password, checked before any work (and again, filled in, where they are used)."""
    urls = {"data.url": config.data.url, "search.storage": config.search.storage,
            "deploy.mlflow.tracking_uri": config.deploy.mlflow.tracking_uri}
    return [problem for key, url in urls.items() if url and (problem := url_problem(url, key))]


def check_run(config: Config) -> list[str]:
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.run.name):
        problems.append(f"run.name: '{config.run.name}' must be a plain name (letters, digits, _ . -), it names the model folder")
    return problems + violations("run", config.run, {"seed": Interval(0, None)})


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


def check_predict(predict: PredictConfig) -> list[str]:
    return violations("predict", predict, PREDICT_CONSTRAINTS)


check_search = _search  # the search helper of issue 17 moves it to automlops/search/
