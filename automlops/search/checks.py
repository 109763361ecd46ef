"""Checks of the search section that need no data; config.checks collects them with the other sections'.

The engine's own checks (its space, sampler, pruner...) run through its registered Engine.check."""

from __future__ import annotations

from automlops.config.schema import SearchConfig
from automlops.errors import unknown_name
from automlops.search.auto import AUTO
from automlops.search.engines import ENGINES
from automlops.search.metrics import check_metric_name

VALIDATION_METHODS = ("auto", "holdout", "cv")
CLASS_WEIGHTS = ("balanced",)


def check_search(search: SearchConfig) -> list[str]:
    """Every problem found in search.*, each one line naming its key."""
    problems = []
    if search.engine not in ENGINES:
        problems.append(unknown_name("search.engine", search.engine, [*ENGINES.names(), AUTO]))
    if search.n_trials is not None and search.n_trials < 1:
        problems.append(
            f"search.n_trials: must be >= 1, got {search.n_trials}; or set it to null and give search.timeout"
        )
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
