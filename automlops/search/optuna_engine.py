"""The Optuna engine: a seeded sampler over a conditional YAML space, in a persistent study.

The study lives in an Optuna storage outside DVC's outputs, under a name derived from everything
that shapes it (space, metric, sampler, seed, data), so a killed search resumes with every finished
trial, and raising n_trials extends the same study instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from automlops.config.resolvers import expand_env, mask_env
from automlops.config.schema import SearchConfig
from automlops.errors import ConfigError, SearchError
from automlops.search.engines import ENGINES, SearchData, SearchResult
from automlops.search.families import build_pipeline
from automlops.search.metrics import resolve_metric
from automlops.search.space import Space, parse_space

log = logging.getLogger(__name__)
FINISHED = ("COMPLETE", "FAIL", "PRUNED")


@ENGINES.register("optuna")
def search_optuna(cfg: SearchConfig, data: SearchData, seed: int, state_dir: Path) -> SearchResult:
    import optuna
    from sklearn.metrics import get_scorer

    problems: list[str] = []
    space = parse_space(cfg.space, problems)
    if problems:
        raise ConfigError("; ".join(problems))
    metric = resolve_metric(cfg.metric, data.task)
    scorer = get_scorer(metric)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(cfg, space, metric, seed, data.data_hash, state_dir)
    best_so_far: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("family", sorted(space))
        params = {p: spec.suggest(trial, f"{family}.{p}") for p, spec in space[family].items()}
        trial.set_user_attr("params", params)
        pipeline = build_pipeline(family, params, data.contract, data.task, seed, cfg.threads)
        started = time.perf_counter()
        try:
            pipeline.fit(data.x_train, data.y_train)
            trial.set_user_attr("fit_seconds", round(time.perf_counter() - started, 4))
            score = float(scorer(pipeline, data.x_valid, data.y_valid))
        except Exception as error:  # a failing candidate is recorded and the search goes on
            trial.set_user_attr("error", " ".join(f"{type(error).__name__}: {error}".split())[:500])
            log.warning("trial %d (%s) failed: %s", trial.number, family, str(error).splitlines()[0][:200])
            return float("nan")
        if math.isfinite(score):
            best_so_far.append(score)
        log.info("trial %d %-13s %s=%.5f  best=%.5f", trial.number, family, metric, score, max(best_so_far, default=score))
        return score

    done = len(study.get_trials(deepcopy=False, states=_states(FINISHED)))
    remaining = None if cfg.n_trials is None else max(0, cfg.n_trials - done)
    if done:
        log.info("resuming study %s: %d trial(s) already finished", study.study_name, done)
    if remaining != 0:
        study.optimize(objective, n_trials=remaining, timeout=cfg.timeout, gc_after_trial=False)
    complete = study.get_trials(deepcopy=False, states=_states(("COMPLETE",)))
    if not complete:
        failed = study.get_trials(deepcopy=False, states=_states(("FAIL",)))
        first = failed[0].user_attrs.get("error", "no error recorded") if failed else "no trial finished"
        raise SearchError(f"search: all {len(failed)} trial(s) failed (first: {first}); check search.space and the data")
    best = study.best_trial
    family = best.params["family"]
    params = best.user_attrs["params"]
    model = _fit_best(cfg, data, family, params, seed)
    return SearchResult(
        model=model,
        family=family,
        params=params,
        metric=metric,
        valid_score=float(best.value),
        leaderboard=leaderboard(study, metric),
        lineage={
            "engine": "optuna",
            "study_name": study.study_name,
            "storage": mask_env(cfg.storage or "") or "local sqlite (.automlops/optuna.db)",
            "best_trial": best.number,
            "trials_finished": len(study.get_trials(deepcopy=False, states=_states(FINISHED))),
            "refit_on": "train+valid" if cfg.refit else "train",
        },
    )


def _open_study(cfg: SearchConfig, space: Space, metric: str, seed: int, data_hash: str, state_dir: Path) -> Any:
    import optuna
    import sqlalchemy.exc

    shape = {"space": {f: {p: asdict(s) for p, s in ps.items()} for f, ps in space.items()}, "metric": metric,
             "sampler": cfg.sampler, "seed": seed, "data": data_hash, "threads": cfg.threads}
    fingerprint = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:12]
    if cfg.storage:
        url = expand_env(cfg.storage, "search.storage")
    else:
        state_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{state_dir / 'optuna.db'}"
    try:
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=15, grace_period=45) if "://" in url else url
        study = optuna.create_study(study_name=f"automlops-{fingerprint}", storage=storage, direction="maximize", load_if_exists=True)
        optuna.storages.fail_stale_trials(study)  # trials of a killed run stop showing as RUNNING
        # offset the seed by the trials already there: a resumed search continues, not replays, its sampling
        offset = seed + len(study.get_trials(deepcopy=False))
        study.sampler = optuna.samplers.RandomSampler(seed=offset) if cfg.sampler == "random" else optuna.samplers.TPESampler(seed=offset)
        return study
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise ConfigError(f"search.storage: cannot open Optuna storage '{mask_env(cfg.storage or url)}' ({reason}); check the URL and that the server is up") from error


def _fit_best(cfg: SearchConfig, data: SearchData, family: str, params: dict[str, Any], seed: int) -> Any:
    x, y = data.x_train, data.y_train
    if cfg.refit:
        x, y = pd.concat([x, data.x_valid]), pd.concat([y, data.y_valid])
    return build_pipeline(family, params, data.contract, data.task, seed, cfg.threads).fit(x, y)


def leaderboard(study: Any, metric: str) -> pd.DataFrame:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        rows.append({
            "trial": trial.number,
            "state": trial.state.name,
            "family": trial.params.get("family", ""),
            "score": trial.value if trial.value is not None and math.isfinite(trial.value) else None,
            "metric": metric,
            "fit_seconds": trial.user_attrs.get("fit_seconds"),
            "params": json.dumps(trial.user_attrs.get("params", {}), sort_keys=True, default=str),
            "error": trial.user_attrs.get("error", ""),
        })
    table = pd.DataFrame(rows)
    table = table.sort_values(["score", "trial"], ascending=[False, True], na_position="last", kind="stable")
    table.insert(0, "winner", table["trial"] == study.best_trial.number)
    return table.reset_index(drop=True)


def _states(names: tuple[str, ...]) -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return tuple(TrialState[n] for n in names)
