"""search.engine: auto, made concrete from the config alone (a pure function), so the checks, every
command (run, stage, worker) and the search stage pick the same engine; the search stage logs why. It picks by what the config
asks for and by the budget; it does not combine engines (issue 15's item 3 asks for that too).

The rule comes from the committed quality tables: the AutoGluon engine ranked first of automlops'
engines at 20, 60 and 300 s on the 9 benchmark tables (benchmarks/results/search_quality*.md), and it
needs a wall-clock budget; what only the Optuna engine does sends the search there."""

from __future__ import annotations

import logging
from dataclasses import replace

from automlops.config.schema import Config, SearchConfig

log = logging.getLogger(__name__)
AUTO = "auto"
MIN_AUTOGLUON_TIMEOUT = 20.0  # seconds: the smallest budget the AutoGluon engine was measured at (fit gets 10 s of it)


def choose_engine(search: SearchConfig, refit_all_rows: bool) -> tuple[str, str]:
    """(engine, why): the first rule that applies."""
    if search.timeout is None:
        return "optuna", "no search.timeout, and the autogluon engine needs a wall-clock budget"
    if search.objectives:
        return "optuna", f"search.objectives={search.objectives}: multi-objective search is the optuna engine's"
    if search.ensemble_size:
        return "optuna", "search.ensemble_size blends the optuna engine's trials"
    if refit_all_rows:
        return "optuna", "deploy.refit_all_rows refits the optuna engine's winner (autogluon refuses it)"
    if search.timeout < MIN_AUTOGLUON_TIMEOUT:
        return "optuna", (
            f"search.timeout={search.timeout:g} s is under {MIN_AUTOGLUON_TIMEOUT:g} s, the smallest budget the "
            "autogluon engine was measured at"
        )
    return "autogluon", (
        f"search.timeout={search.timeout:g} s: the autogluon engine ranked first of automlops' engines at 20, 60 "
        "and 300 s on the 9 benchmark tables (benchmarks/results/search_quality*.md)"
    )


def resolve_auto(config: Config, log_choice: bool = False) -> Config:
    """The config with search.engine=auto replaced by the engine choose_engine picks; else as is.
    A pure function of the config, so the checks, the search stage and a worker agree; the search
    stage logs the choice (log_choice), so an error before the search stays one line."""
    if config.search.engine != AUTO:
        return config
    engine, why = choose_engine(config.search, config.deploy.refit_all_rows)
    if log_choice:
        log.info("search.engine=auto: %s, since %s", engine, why)
    return replace(config, search=replace(config.search, engine=engine))
