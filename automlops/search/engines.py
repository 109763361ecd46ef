"""The engine registry: search.engine names each engine it lists here. It imports the engines, which
import only automlops.search.base, so the import graph points one way."""

from __future__ import annotations

from automlops.registry import Registry
from automlops.search import autogluon_engine, optuna_engine
from automlops.search.base import AllRows, Candidate, Engine, SearchData, SearchResult, search_seconds

__all__ = ["ENGINES", "AllRows", "Candidate", "Engine", "SearchData", "SearchResult", "search_seconds"]

ENGINES: Registry[Engine] = Registry("search.engine")
ENGINES.register("optuna")(
    Engine(
        run=optuna_engine.search_optuna,
        check=optuna_engine.check_optuna,
        later_stages_seconds=optuna_engine.LATER_STAGES_SECONDS,
        refit_all=optuna_engine.refit_all_rows,
    )
)
ENGINES.register("autogluon")(
    Engine(
        run=autogluon_engine.search_autogluon,
        check=autogluon_engine.check_autogluon,
        later_stages_seconds=autogluon_engine.LATER_STAGES_SECONDS,
    )
)
