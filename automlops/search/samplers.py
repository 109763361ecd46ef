"""Optuna samplers and pruners by the short names search.sampler and search.pruner take.

Each entry builds the Optuna object from the search config; Optuna is imported only when one is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automlops.config.schema import SearchConfig
from automlops.registry import Registry

SamplerFactory = Callable[[SearchConfig, int], Any]  # (cfg, seed) -> optuna.samplers.BaseSampler
PrunerFactory = Callable[[SearchConfig], Any]  # cfg -> optuna.pruners.BasePruner

SAMPLERS: Registry[SamplerFactory] = Registry("search.sampler")
PRUNERS: Registry[PrunerFactory] = Registry("search.pruner")
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)  # refused with search.objectives


@SAMPLERS.register("tpe")
def _tpe(cfg: SearchConfig, seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


@SAMPLERS.register("random")
def _random(cfg: SearchConfig, seed: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("cmaes")
def _cmaes(cfg: SearchConfig, seed: int) -> Any:
    """Numeric params only; the family choice falls back to random sampling."""
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


@SAMPLERS.register("nsga2")
def _nsga2(cfg: SearchConfig, seed: int) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


@PRUNERS.register("none")
def _no_pruner(cfg: SearchConfig) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


@PRUNERS.register("median")
def _median(cfg: SearchConfig) -> Any:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


@PRUNERS.register("successive_halving")
def _successive_halving(cfg: SearchConfig) -> Any:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner()


@PRUNERS.register("hyperband")
def _hyperband(cfg: SearchConfig) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(2, cfg.validation.folds))


def make_sampler(cfg: SearchConfig, seed: int) -> Any:
    """search.sampler's Optuna sampler; an unknown name is a ConfigError listing the valid ones."""
    return SAMPLERS.get(cfg.sampler)(cfg, seed)


def make_pruner(cfg: SearchConfig) -> Any:
    """search.pruner's Optuna pruner; an unknown name is a ConfigError listing the valid ones."""
    return PRUNERS.get(cfg.pruner)(cfg)
