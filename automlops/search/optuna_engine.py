"""The Optuna engine: a seeded sampler over a conditional YAML space, in a persistent study.

The study lives in an Optuna storage outside DVC's outputs, under a name derived from everything
that shapes it (space, preprocessing, metric, objectives, validation, sampler, seed, data), so a
killed search resumes with every finished trial, raising n_trials extends the same study, and
`automlops worker` processes on other machines join it through a shared storage (PostgreSQL).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from automlops.config.schema import SearchConfig
from automlops.errors import ConfigError, SearchError
from automlops.records import ENSEMBLE
from automlops.search.base import AllRows, Candidate, SearchData, SearchResult, search_seconds
from automlops.search.ensemble import POOL, blend_scorer, greedy_selection, make_ensemble
from automlops.search.families import Space, build_pipeline, parse_space
from automlops.search.metrics import (
    POSITIVE_CLASS_METRICS,
    MetricError,
    check_metric_on_data,
    get_scorer,
    resolve_metric,
)
from automlops.search.preprocess import parse_preprocess
from automlops.search.progress import SearchProgress
from automlops.search.samplers import PRUNERS, SAMPLERS, SINGLE_OBJECTIVE_SAMPLERS, make_pruner
from automlops.search.space import Param, spec_record, suggest
from automlops.urls import connect_url, scrub
from automlops.urls import mask_secrets as mask_env

if TYPE_CHECKING:
    from automlops.search.resampling import Deadline, EnsembleTarget

log = logging.getLogger(__name__)
FINISHED = ("COMPLETE", "FAIL", "PRUNED")
OBJECTIVES = ("predict_latency", "model_size")  # extra objectives, minimised
SELECT_RULES = ("best_score", "fastest_within", "smallest_within")
MIN_TRIALS_FOR_FAILURE_RATE = 5
REFIT_MARGIN = 1.25  # the winner's refit may take this much longer per row than its trial's fits did
CUT = "cut:"  # how the record of a trial stopped at the search deadline begins its error
CAPPED = "capped:"  # how the record of a trial stopped at its own cap (search.max_trial_share) begins its error
ENSEMBLE_REFIT_RESERVE = 2.5  # search.ensemble_size: the refit time kept, in refits of the best candidate
# the rest of `automlops run` with a scikit-learn model, measured on 2 cores: imports and prepare ~2 s, evaluate
# ~1.5 s (importance capped), package 0.1 s, the gate's serving check ~3.5 s (Engine.later_stages_seconds)
LATER_STAGES_SECONDS = 8.0


@dataclass
class Plan:
    """The parsed, checked search: what every trial samples and how it is scored."""

    space: Space
    preprocess: dict[str, Param]
    metric: str
    scorer: Any
    positive_class: Any = None  # binary: the class the scorer's positive-class metrics are about


def check_optuna(cfg: SearchConfig, problems: list[str]) -> None:
    """Config checks that need no data (the CLI runs them before any work)."""
    _parse_and_check(cfg, problems)


def _parse_and_check(cfg: SearchConfig, problems: list[str]) -> tuple[Space, dict[str, Param]]:
    """Parse the space and preprocessing once, appending every config problem found."""
    from automlops.errors import unknown_name

    space = parse_space(cfg.space, problems)
    preprocess = parse_preprocess(cfg.preprocess, problems)
    for objective in cfg.objectives:
        if objective not in OBJECTIVES:
            problems.append(unknown_name("search.objectives item", objective, OBJECTIVES))
    if cfg.sampler not in SAMPLERS:
        problems.append(unknown_name("search.sampler", cfg.sampler, SAMPLERS.names()))
    elif cfg.sampler in SINGLE_OBJECTIVE_SAMPLERS and cfg.objectives:
        problems.append(f"search.sampler: {cfg.sampler} is single-objective; use nsga2 or tpe with search.objectives")
    if cfg.pruner not in PRUNERS:
        problems.append(unknown_name("search.pruner", cfg.pruner, PRUNERS.names()))
    if cfg.select not in SELECT_RULES:
        problems.append(unknown_name("search.select", cfg.select, SELECT_RULES))
    elif cfg.select != "best_score" and not cfg.objectives:
        problems.append(
            f"search.select: {cfg.select} needs search.objectives (e.g. [predict_latency]); or use best_score"
        )
    if cfg.select_tolerance < 0:
        problems.append(f"search.select_tolerance: must be >= 0, got {cfg.select_tolerance}")
    if cfg.patience is not None and cfg.patience < 1:
        problems.append(f"search.patience: must be >= 1 trial, got {cfg.patience}; or null to never stop early")
    if not 0 <= cfg.max_failure_rate <= 1:
        problems.append(f"search.max_failure_rate: must be a share between 0 and 1, got {cfg.max_failure_rate}")
    if cfg.n_jobs < 1:
        problems.append(f"search.n_jobs: must be >= 1, got {cfg.n_jobs}")
    if cfg.keep_top < 0:
        problems.append(f"search.keep_top: must be >= 0, got {cfg.keep_top}")
    if cfg.ensemble_size < 0:
        problems.append(f"search.ensemble_size: must be >= 0 rounds, got {cfg.ensemble_size}; 0 for no ensemble")
    elif cfg.ensemble_size and cfg.objectives:
        problems.append(
            "search.ensemble_size: an ensemble is chosen by score alone, search.objectives by latency or size too; "
            "set one of them to 0 / []"
        )
    if cfg.max_trial_share is not None and not 0 < cfg.max_trial_share <= 1:
        problems.append(
            f"search.max_trial_share: must be a share in (0, 1], got {cfg.max_trial_share}; or null for no cap"
        )
    return space, preprocess


def plan(cfg: SearchConfig, task: str, positive_class: Any = None) -> Plan:
    problems: list[str] = []
    space, preprocess = _parse_and_check(cfg, problems)
    if problems:
        raise ConfigError("; ".join(problems))
    metric = resolve_metric(cfg.metric, task)
    return Plan(space, preprocess, metric, get_scorer(metric, positive_class), positive_class)


def search_optuna(cfg: SearchConfig, data: SearchData, seed: int, state_dir: Path) -> SearchResult:
    from automlops.search.resampling import concrete_validation

    started = time.monotonic()  # search.timeout counts from here: trials, then the winner's refit
    limit = search_seconds(cfg.timeout, LATER_STAGES_SECONDS)
    the_plan = plan(cfg, data.task, data.positive())
    cfg = concrete_validation(cfg, data, seed)
    study = run_trials(cfg, the_plan, data, seed, state_dir, started)
    complete = study.get_trials(deepcopy=False, states=_states(("COMPLETE",)))
    if not complete:
        failed = study.get_trials(deepcopy=False, states=_states(("FAIL",)))
        first = _record(failed[0]).get("error", "no error recorded") if failed else "no trial finished"
        raise SearchError(
            f"search: all {len(failed)} trial(s) failed (first: {first}); check search.space and the data"
        )
    pareto = {t.number for t in study.best_trials} if cfg.objectives else {study.best_trial.number}
    best = _select(cfg, [t for t in complete if t.number in pareto])
    record = _record(best)
    searched = time.monotonic() - started
    refit_estimate = refit_seconds_estimate(record, _refit_rows(cfg, data))
    if limit is not None and searched + refit_estimate > limit:
        log.warning(
            "search.timeout=%gs: the winner's refit (about %.1f s) ends after the search's %.1f s; %.1f s of them are left",
            cfg.timeout,
            refit_estimate,
            limit,
            limit - searched,
        )
    candidates = [
        _candidate(t, study.study_name, t.number in pareto and bool(cfg.objectives))
        for t in study.get_trials(deepcopy=False)
    ]
    chosen = None
    if _ensembling(cfg):
        left = None if limit is None else limit - searched
        chosen = choose_ensemble(cfg, the_plan, data, seed, complete, best, left)
    if chosen is not None:
        model = _fit_ensemble(cfg, data, seed, chosen)
        winner = _ensemble_candidate(chosen, study.study_name)
        candidates.append(winner)
    else:
        model = _fit_winner(cfg, data, record["family"], record["params"], record["preprocess"], seed)
        winner = next(c for c in candidates if c.trial == best.number)
    refit_seconds = time.monotonic() - started - searched
    log.info("%s", _budget_line(candidates, limit, searched, refit_seconds, chosen))
    _keep_top_artifacts(candidates, cfg.keep_top)
    _drop_predictions(complete, keep=POOL)
    return SearchResult(
        model=model,
        model_format="sklearn",
        winner=winner,
        metric=the_plan.metric,
        candidates=candidates,
        lineage={
            "engine": "optuna",
            "study_name": study.study_name,
            "storage": mask_env(cfg.storage or "") or "local sqlite (.automlops/optuna.db)",
            "best_trial": best.number,  # the best single candidate (an ensemble's members are under "ensemble")
            "ensemble": None if chosen is None else chosen.lineage(),
            "trials_finished": len(study.get_trials(deepcopy=False, states=_states(FINISHED))),
            "refit_on": "train+valid" if cfg.refit else "train",
            "validation": asdict(cfg.validation),
            "objectives": ["score", *cfg.objectives],
            "select": cfg.select,
            "budget": {
                "timeout": cfg.timeout,
                "search_limit": limit,  # the rest of the timeout is kept for the stages after
                "search_seconds": round(searched, 2),
                "refit_seconds": round(refit_seconds, 2),
                "refit_estimate_seconds": round(refit_estimate, 2),
                "left_seconds": None if limit is None else round(limit - searched - refit_seconds, 2),
                "trials_cut_at_deadline": sum(bool(c.error.startswith(CUT)) for c in candidates),
                "trial_cap_seconds": None
                if limit is None or not cfg.max_trial_share
                else round(limit * cfg.max_trial_share, 2),
                "trials_capped": sum(bool(c.error.startswith(CAPPED)) for c in candidates),
            },
        },
        trained_on=("train", "valid") if cfg.refit else ("train",),  # as _fit_winner fits it
    )


def _ensembling(cfg: SearchConfig) -> bool:
    """search.ensemble_size asks for an ensemble, and a single score ranks (objectives select by latency or size)."""
    return cfg.ensemble_size > 0 and not cfg.objectives


@dataclass(frozen=True)
class ChosenEnsemble:
    """The members greedy selection picked (best.json's params.members), and what it measured."""

    members: list[dict[str, Any]]  # {trial, weight, family, params}: params as Candidate.params spells them
    score: float  # the blend's validation score, on the trials' basis (mean over the same folds)
    single_score: float  # the best single candidate's, on the same stored predictions
    rounds: int

    def lineage(self) -> dict[str, Any]:
        return {
            "members": [{k: m[k] for k in ("trial", "family", "weight")} for m in self.members],
            "valid_score": self.score,
            "best_single_valid_score": self.single_score,
            "rounds": self.rounds,
        }


def choose_ensemble(
    cfg: SearchConfig, the_plan: Plan, data: SearchData, seed: int, complete: list[Any], best: Any, left: float | None
) -> ChosenEnsemble | None:
    """Greedy selection over the POOL best complete trials whose validation predictions are on disk
    (a worker on another machine keeps its own). None, with the reason logged, unless the blend beats
    the best single candidate and its members' refits fit in `left` seconds (dropping the costliest
    members first: the best candidate's refit was kept free by the Budget)."""
    from automlops.search.resampling import ensemble_target

    pool = [t for t in _ranked(complete) if Path(_record(t).get("valid_predictions", "")).is_file()][:POOL]
    if not pool or pool[0].number != best.number:
        log.info(
            "ensemble: skipped, the best trial (%d) has no validation predictions here: it ran on another "
            "machine, or before search.ensemble_size was set",
            best.number,
        )
        return None
    if len(pool) < 2:
        log.info("ensemble: skipped, only one trial has validation predictions")
        return None
    target = ensemble_target(data, cfg, seed)
    responses = [np.load(_record(t)["valid_predictions"]) for t in pool]
    scorer, y, classes = coded_target(the_plan, target)
    trial_score = blend_scorer(scorer, y, target.folds, classes)
    select_score = blend_scorer(scorer, y, [np.concatenate(target.folds)], classes)
    rows = _refit_rows(cfg, data)
    costs = [refit_seconds_estimate(_record(t), rows) for t in pool]
    while True:
        selection = greedy_selection(responses, select_score, trial_score, cfg.ensemble_size)
        members = selection.members
        if len(members) < 2 or selection.score <= selection.single_score:
            log.info(
                "ensemble: the best single candidate (%.5g) is kept: no blend of the best %d scored higher",
                selection.single_score,
                len(pool),
            )
            return None
        estimate = sum(costs[i] for i in members)
        if left is None or estimate <= left:
            break
        costliest = max((i for i in members if i), key=lambda i: costs[i])  # pool[0] is the best: never dropped
        log.info(
            "ensemble: trial %d dropped, its refit (about %.1f s) does not fit",
            pool[costliest].number,
            costs[costliest],
        )
        del pool[costliest], responses[costliest], costs[costliest]
    chosen = ChosenEnsemble(
        members=[
            {
                "trial": pool[i].number,
                "weight": round(selection.weights[i], 6),
                "family": _record(pool[i])["family"],
                "params": _flat_params(_record(pool[i])),
            }
            for i in members
        ],
        score=selection.score,
        single_score=selection.single_score,
        rounds=cfg.ensemble_size,
    )
    log.info(
        "ensemble: %s scores %.5g against the best single candidate's %.5g",
        " + ".join(f"{m['weight']:.2f} x trial {m['trial']} ({m['family']})" for m in chosen.members),
        chosen.score,
        chosen.single_score,
    )
    return chosen


def coded_target(the_plan: Plan, target: EnsembleTarget) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """(scorer, labels, classes) for scoring stored responses: a classifier's labels as codes 0..k-1 and
    the scorer rebuilt on the positive class's code. scikit-learn checks codes ~3x faster than text, and
    every score is the same (the codes keep the classes' sorted order)."""
    if target.classes is None:
        return the_plan.scorer, target.y, None
    positive = the_plan.positive_class
    scorer = get_scorer(the_plan.metric, None if positive is None else int(np.searchsorted(target.classes, positive)))
    return scorer, np.searchsorted(target.classes, target.y), np.arange(len(target.classes))


def _fit_ensemble(cfg: SearchConfig, data: SearchData, seed: int, chosen: ChosenEnsemble) -> Any:
    return _blend(
        chosen.members, lambda family, flat: _fit_winner(cfg, data, family, *_split_params(flat), seed), data.task
    )


def _blend(members: list[dict[str, Any]], fit: Callable[[str, dict[str, Any]], Any], task: str) -> Any:
    """The ensemble of best.json's params.members, each fit by `fit(family, flat params)`, with their weights."""
    return make_ensemble([fit(m["family"], m["params"]) for m in members], [m["weight"] for m in members], task)


def _ensemble_candidate(chosen: ChosenEnsemble, source: str) -> Candidate:
    """The ensemble's leaderboard row: trial -1 of its study (one ensemble per study and search)."""
    return Candidate(
        engine="optuna",
        trial=-1,
        family=ENSEMBLE,
        params={"members": chosen.members},
        state="COMPLETE",
        score=chosen.score,
        source=source,
    )


def _ranked(complete: list[Any]) -> list[Any]:
    """Complete trials, best score first (the earlier trial first on a tie): the order of the ensemble's pool."""
    return sorted(complete, key=lambda t: (-t.values[0], t.number))


def _drop_predictions(complete: list[Any], keep: int) -> None:
    """Validation predictions beyond the `keep` best trials are never picked: delete them."""
    for trial in _ranked(complete)[keep:]:
        path = _record(trial).get("valid_predictions")
        if path:
            Path(path).unlink(missing_ok=True)


def _budget_line(
    candidates: list[Candidate],
    limit: float | None,
    searched: float,
    refit_seconds: float,
    chosen: ChosenEnsemble | None,
) -> str:
    """How the search spent its time, in one line (AutoGluon's engine logs the same per phase)."""
    trials = [c for c in candidates if c.trial >= 0]
    states = {s: sum(c.state == s for c in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    cut = sum(c.error.startswith(CUT) for c in trials)
    capped = sum(c.error.startswith(CAPPED) for c in trials)
    what = f"{len(chosen.members)}-member ensemble" if chosen else "winner"
    spent = f"{searched:.1f} s" if limit is None else f"{searched:.1f} of {limit:.1f} s"
    left = "" if limit is None else f"; left {limit - searched - refit_seconds:.1f} s"
    return (
        f"optuna: the study holds {len(trials)} trials ({states['COMPLETE']} complete, {states['PRUNED']} pruned of "
        f"which {cut} cut at the deadline and {capped} capped, {states['FAIL']} failed); this run searched {spent}, "
        f"{what} refit {refit_seconds:.1f} s{left}"
    )


def refit_seconds_estimate(record: dict[str, Any], refit_rows: int) -> float:
    """How long refitting a trial's candidate on `refit_rows` rows takes, from its measured fits:
    seconds per row of one fit, scaled to the refit's rows, with a margin for fits that grow a
    little faster than the rows (trees sort them)."""
    fit_seconds = float(record.get("fit_seconds") or 0.0)
    fits, fit_rows = int(record.get("fits") or 1), int(record.get("fit_rows") or 0)
    if not fit_rows:  # a trial recorded before fits and rows were: its summed fit time, as an upper bound
        return fit_seconds * REFIT_MARGIN
    return fit_seconds / fits * refit_rows / fit_rows * REFIT_MARGIN


def _refit_rows(cfg: SearchConfig, data: SearchData) -> int:
    return len(data.x_train) + (len(data.x_valid) if cfg.refit else 0)


def run_trials(
    cfg: SearchConfig, the_plan: Plan, data: SearchData, seed: int, state_dir: Path, started: float | None = None
) -> Any:
    """Open (or join) the study and run trials until its budget is spent; no refit, no packaging.
    This is all an `automlops worker` does. `started` (time.monotonic()) is when search.timeout began."""
    import optuna

    from automlops.search.resampling import SEARCH_DEADLINE, DeadlineReached, score_candidate

    started = time.monotonic() if started is None else started

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported by us, on one line
    cpus = os.cpu_count() or 1
    if cfg.n_jobs * cfg.threads > cpus:
        log.warning(
            "search.n_jobs x search.threads = %d threads on %d CPUs: fits will fight for cores; "
            "lower search.threads (one per trial is best when n_jobs > 1)",
            cfg.n_jobs * cfg.threads,
            cpus,
        )
    check_metric_on_data(the_plan.metric, the_plan.scorer, data.x_valid, data.y_valid, data.task)
    study = open_study(cfg, the_plan, seed, data.data_hash, state_dir)
    finished = study.get_trials(deepcopy=False, states=_states(FINISHED))
    if finished:
        log.info("resuming study %s: %d trial(s) already finished", study.study_name, len(finished))
    remaining = None if cfg.n_trials is None else max(0, cfg.n_trials - len(finished))
    if remaining == 0:
        return study
    if cfg.warm_start:
        warm_start(study, the_plan.space, remaining)
    budget = Budget(cfg, finished, started, _refit_rows(cfg, data))
    artifacts = state_dir / "candidates" / study.study_name
    multi = bool(cfg.objectives)
    ensembling = _ensembling(cfg)

    def objective(trial: optuna.Trial) -> Any:
        family = trial.suggest_categorical("family", sorted(the_plan.space))
        params = {p: suggest(trial, f"{family}.{p}", param) for p, param in the_plan.space[family].items()}
        choices = {k: suggest(trial, f"preprocess.{k}", param) for k, param in the_plan.preprocess.items()}
        record: dict[str, Any] = {"family": family, "params": params, "preprocess": choices}

        def report(score: float, fold: int) -> None:
            if multi or cfg.pruner == "none":
                return
            trial.report(score, fold)
            if trial.should_prune():
                trial.set_user_attr("record", record)
                raise optuna.TrialPruned()

        began = time.monotonic()
        deadline = budget.deadline(began)
        try:
            scored = score_candidate(
                lambda: build_pipeline(family, params, choices, data.contract, data.task, seed, cfg.threads),
                data,
                cfg,
                the_plan.scorer,
                seed,
                report,
                deadline,
                keep_response=ensembling,
            )
        except (optuna.TrialPruned, MetricError):  # a metric that cannot score is the config's fault: stop here
            raise
        except DeadlineReached as cut:  # pruned, never COMPLETE: a half-run trial must not win
            marker = CUT if deadline.what == SEARCH_DEADLINE else CAPPED
            record.update(error=f"{marker} {cut}", trial_seconds=round(time.monotonic() - began, 4))
            trial.set_user_attr("record", record)
            raise optuna.TrialPruned() from None
        except Exception as error:  # a failing candidate is recorded and the search goes on
            record["error"] = " ".join(f"{type(error).__name__}: {error}".split())[:500]
            trial.set_user_attr("record", record)
            return (float("nan"),) * (1 + len(cfg.objectives)) if multi else float("nan")
        record.update(
            fit_seconds=round(scored.fit_seconds, 4),
            fits=scored.fits,
            fit_rows=scored.fit_rows,
            trial_seconds=round(time.monotonic() - began, 4),
            predict_seconds_per_row=scored.predict_seconds_per_row,
            size_bytes=scored.size_bytes,
        )
        if budget.worth_keeping(scored.score):  # under cv: the model of the last fold
            import joblib

            artifacts.mkdir(parents=True, exist_ok=True)
            path = artifacts / f"trial_{trial.number}.joblib"
            joblib.dump(scored.model, path)
            record["artifact"] = str(path)
        if scored.response is not None:  # what the ensemble selection averages (search.ensemble_size)
            artifacts.mkdir(parents=True, exist_ok=True)
            path = artifacts / f"trial_{trial.number}.valid.npy"
            np.save(path, scored.response)
            record["valid_predictions"] = str(path)
        trial.set_user_attr("record", record)  # one storage write per trial
        extra = {"predict_latency": scored.predict_seconds_per_row, "model_size": float(scored.size_bytes)}
        return (scored.score, *(extra[o] for o in cfg.objectives)) if multi else scored.score

    lock = threading.Lock()
    with SearchProgress(remaining, budget.limit, the_plan.metric, cfg.progress) as progress:

        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            with lock:
                record = trial.user_attrs.get("record", {})
                score = trial.values[0] if trial.values and math.isfinite(trial.values[0]) else None
                progress.trial_finished(trial.number, record.get("family", "?"), trial.state.name, score)
                if record.get("error", "").startswith((CUT, CAPPED)):
                    log.info("trial %d %s", trial.number, record["error"][:200])
                elif record.get("error"):
                    log.warning("trial %d failed: %s", trial.number, record["error"][:200])
                if budget.after(trial, score, record):
                    study.stop()

        callbacks = [after_trial]
        if cfg.n_trials is not None:  # the study's total, across every process sharing it
            callbacks.append(optuna.study.MaxTrialsCallback(cfg.n_trials, states=_states(FINISHED)))
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=budget.limit,
            n_jobs=cfg.n_jobs,
            callbacks=callbacks,
            gc_after_trial=False,
        )
    if budget.stop_reason.startswith("failure"):
        raise SearchError(
            f"search: {budget.stop_reason}; fix search.space or the data, or raise search.max_failure_rate"
        )
    if budget.stop_reason:
        log.info("search stopped early: %s", budget.stop_reason)
    return study


class Budget:
    """When to stop, decided from counters kept in memory (no re-reading the study per trial):
    too many failures, no improvement for `patience` trials, or a next trial plus the winner's refit
    that would no longer fit in the search's share of search.timeout (`limit`). With a timeout it also
    sets each trial's deadline, so trials and the refit end within `limit` of `started`."""

    def __init__(self, cfg: SearchConfig, finished: list[Any], started: float, refit_rows: int) -> None:
        self.cfg = cfg
        self.limit = search_seconds(cfg.timeout, LATER_STAGES_SECONDS)
        self.started = started
        self.refit_rows = refit_rows
        self.finished = len(finished)
        self.failed = sum(t.state.name == "FAIL" for t in finished)
        complete = [t for t in finished if t.state.name == "COMPLETE" and t.values]
        best = max(complete, key=lambda t: t.values[0], default=None)
        self.best_score = best.values[0] if best else None
        self.best_number = best.number if best else -1
        self.since_best = sum(t.number > self.best_number for t in finished)
        self.best_refit_seconds = refit_seconds_estimate(_record(best), refit_rows) if best else 0.0
        self.first_error = next(
            (t.user_attrs.get("record", {}).get("error", "") for t in finished if t.state.name == "FAIL"), ""
        )
        self.trial_seconds: list[float] = []
        share = cfg.max_trial_share
        self.trial_cap = None if self.limit is None or not share or share >= 1 else self.limit * share
        self.kept: list[float] = []  # scores of the candidates whose fitted model is on disk
        self.stop_reason = ""

    def refit_reserve(self) -> float:
        """The search's time kept for the final refit: the best candidate's, or with search.ensemble_size
        ENSEMBLE_REFIT_RESERVE times it, so an ensemble's other members have time to refit too."""
        return self.best_refit_seconds * (ENSEMBLE_REFIT_RESERVE if _ensembling(self.cfg) else 1.0)

    def deadline(self, began: float) -> Deadline:
        """The Deadline of a trial that began at `began`: the search's (trial_deadline), or its own
        cap, max_trial_share of the search's time, when that comes first. Like the search's deadline,
        the cap holds once a trial is complete, so a search still ends with a model: capped from the
        first trial on, digits' 5-fold multiclass LightGBM (over 13 s each on a loaded machine) was
        cut three times and the 60 s search ended with none. The warm start makes that first trial
        a cheap one (issue 15's, a linear model, took 30 s of a 60 s budget)."""
        from automlops.search.resampling import SEARCH_DEADLINE, Deadline

        search_at = self.trial_deadline()
        if self.trial_cap is not None and search_at is not None and began + self.trial_cap < search_at:
            share = self.cfg.max_trial_share
            return Deadline(
                began + self.trial_cap,
                f"the trial's cap of {self.trial_cap:.1f} s (search.max_trial_share={share:g} of the search's {self.limit:.1f} s)",
            )
        return Deadline(search_at, SEARCH_DEADLINE)

    def trial_deadline(self) -> float | None:
        """When a trial starting now must end: the search's limit less the best model's refit. None
        before the first complete trial (a search must end with a model) or without a timeout."""
        if self.limit is None or self.best_score is None:
            return None
        return self.started + self.limit - self.refit_reserve()

    def worth_keeping(self, score: float) -> bool:
        """Dump a fitted candidate only if it may end up among the best keep_top."""
        if self.cfg.keep_top == 0 or not math.isfinite(score):
            return False
        self.kept = sorted([*self.kept, score], reverse=True)[: self.cfg.keep_top]
        return score >= self.kept[-1]

    def after(self, trial: Any, score: float | None, record: dict[str, Any]) -> str:
        self.finished += 1
        self.trial_seconds.append(float(record.get("trial_seconds") or record.get("fit_seconds") or 0.0))
        if trial.state.name == "FAIL":
            self.failed += 1
            self.first_error = self.first_error or record.get("error", "no error recorded")
        if (
            score is not None
            and trial.state.name == "COMPLETE"
            and (self.best_score is None or score > self.best_score)
        ):
            self.best_score, self.best_number, self.since_best = score, trial.number, 0
            self.best_refit_seconds = refit_seconds_estimate(record, self.refit_rows)
        else:
            self.since_best += 1
        self.stop_reason = self.stop_reason or self._reason()
        return self.stop_reason

    def _reason(self) -> str:
        cfg = self.cfg
        if self.finished >= MIN_TRIALS_FOR_FAILURE_RATE and self.failed / self.finished > cfg.max_failure_rate:
            return (
                f"failure rate {self.failed}/{self.finished} trials is above search.max_failure_rate="
                f"{cfg.max_failure_rate} (first: {self.first_error})"
            )
        if (
            cfg.patience is not None
            and not cfg.objectives
            and self.best_number >= 0
            and self.since_best >= cfg.patience
        ):
            return f"{self.since_best} finished trials without improving on trial {self.best_number} (search.patience={cfg.patience})"
        if self.limit is not None and self.trial_seconds:
            typical = sorted(self.trial_seconds)[len(self.trial_seconds) // 2]
            left = self.limit - (time.monotonic() - self.started)
            if typical + self.refit_reserve() > left:
                return (
                    f"search.timeout={cfg.timeout:g}s: {left:.1f}s of the search's {self.limit:.1f}s left, "
                    "not enough for another trial and the winner's refit"
                )
        return ""


def warm_start(study: Any, space: Space, remaining: int | None) -> int:
    """Enqueue the portfolio's points for the families in `space` (automlops.search.portfolio), on a
    new study only: a resumed one already ran them (or holds them, waiting), and a worker joining a
    running search finds trials there. skip_if_exists covers processes starting together. Returns
    how many were enqueued: at most half of `remaining` (at least one), so a small n_trials still
    leaves the sampler room once the cheap points ran."""
    from automlops.search.portfolio import warm_start_points

    if study.get_trials(deepcopy=False):
        return 0
    points = warm_start_points(space, None if remaining is None else max(1, remaining // 2))
    for point in points:
        study.enqueue_trial(point, user_attrs={"warm_start": True}, skip_if_exists=True)
    if points:
        log.info("warm start: %d known-good configuration(s) first, cheapest first", len(points))
    return len(points)


def open_study(cfg: SearchConfig, the_plan: Plan, seed: int, data_hash: str, state_dir: Path) -> Any:
    import optuna
    import sqlalchemy.exc

    make_sampler, pruner = SAMPLERS.get(cfg.sampler), make_pruner(cfg)  # an unknown name fails before the storage opens
    shape = {
        "space": {f: {p: spec_record(s) for p, s in ps.items()} for f, ps in cfg.space.items() if ps is not None},
        "preprocess": {k: spec_record(s) for k, s in (cfg.preprocess or {}).items()},
        "metric": the_plan.metric,
        "objectives": cfg.objectives,
        "validation": asdict(cfg.validation),
        "class_weight": cfg.class_weight,
        "sampler": cfg.sampler,
        "seed": seed,
        "data": data_hash,
    }
    if the_plan.metric in POSITIVE_CLASS_METRICS:  # scores about another class make another study
        shape["positive_class"] = the_plan.positive_class
    fingerprint = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:12]
    if cfg.storage:
        url = connect_url(cfg.storage, "search.storage")
    else:
        state_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{state_dir / 'optuna.db'}"
    directions: list[Any] = ["maximize", *["minimize"] * len(cfg.objectives)]
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in practice
    try:
        for attempt in range(3):
            try:
                with _creating(state_dir if not cfg.storage else None):
                    storage = (
                        optuna.storages.RDBStorage(url, heartbeat_interval=15, grace_period=45) if "://" in url else url
                    )
                    study = optuna.create_study(
                        study_name=f"automlops-{fingerprint}",
                        storage=storage,
                        directions=directions,
                        load_if_exists=True,
                    )
                break
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as error:
                # processes starting together race to create the schema or the study (SQLite: "table ... already exists")
                racing = (
                    isinstance(error, sqlalchemy.exc.IntegrityError)
                    or "already exists" in str(error)
                    or "locked" in str(error)
                )
                if attempt == 2 or not racing:
                    raise
                time.sleep(0.5 + attempt)
        optuna.storages.fail_stale_trials(study)  # trials of a killed run stop showing as RUNNING
    except (sqlalchemy.exc.SQLAlchemyError, OSError, ValueError, ImportError) as error:
        cause = getattr(error, "orig", None) or error  # the driver's words, without SQLAlchemy's link footer
        reason = scrub(" ".join(str(cause).split()), url)[:200]
        raise ConfigError(
            f"search.storage: cannot open Optuna storage '{mask_env(cfg.storage or url)}' ({reason}); check the URL and that the server is up"
        ) from None
    # offset the seed by the trials already there: a resumed search continues, not replays, its sampling
    study.sampler = make_sampler(cfg, seed + len(study.get_trials(deepcopy=False)))
    study.pruner = pruner
    return study


@contextmanager
def _creating(state_dir: Path | None) -> Iterator[None]:
    """The local SQLite file (state_dir/optuna.db) is created by one process at a time: runs and
    `automlops worker` processes starting together would otherwise each create its tables, and all
    but one fail with "table ... already exists". A shared storage (search.storage) is retried instead."""
    if state_dir is None:
        yield
        return
    with open(state_dir / "optuna.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _select(cfg: SearchConfig, pareto: list[Any]) -> Any:
    """The packaged point: the best score, or the fastest/smallest within select_tolerance of it."""
    best = max(pareto, key=lambda t: (t.values[0], -t.number))
    if cfg.select == "best_score":
        return best
    attr = "predict_seconds_per_row" if cfg.select == "fastest_within" else "size_bytes"
    close = [t for t in pareto if t.values[0] >= best.values[0] - cfg.select_tolerance]
    return min(close, key=lambda t: (_record(t).get(attr, math.inf), t.number))


def _fit_winner(
    cfg: SearchConfig, data: SearchData, family: str, params: dict[str, Any], choices: dict[str, Any], seed: int
) -> Any:
    x, y = data.x_train, data.y_train
    if cfg.refit:
        x, y = pd.concat([x, data.x_valid]), pd.concat([y, data.y_valid])
    pipeline = build_pipeline(family, params, choices, data.contract, data.task, seed, cfg.threads)
    return _fit(pipeline, x, y, cfg.class_weight)


def _fit(pipeline: Any, x: pd.DataFrame, y: pd.Series, class_weight: str | None) -> Any:
    from sklearn.utils.class_weight import compute_sample_weight

    fit_params = {"model__sample_weight": compute_sample_weight("balanced", y)} if class_weight == "balanced" else {}
    return pipeline.fit(x, y, **fit_params)


PREPROCESS = "preprocess."  # how a winner's params (Candidate.params, best.json) name its preprocessing choices


def refit_all_rows(rows: AllRows, seed: int) -> Any:
    """The winner rebuilt from best.json (family, params, preprocessing choices, class weights, threads)
    and fit on every labelled row, as _fit_winner fits it on train+valid (deploy.refit_all_rows)."""
    best, config = rows.best, rows.best.config

    def fit(family: str, flat: dict[str, Any]) -> Any:
        params, choices = _split_params(flat)
        pipeline = build_pipeline(
            family, params, choices, rows.contract, rows.task, seed, int(config.get("threads", 1))
        )
        return _fit(pipeline, rows.x, rows.y, config.get("class_weight"))

    if best.family == ENSEMBLE:
        return _blend(best.params["members"], fit, rows.task)
    return fit(best.family, best.params)


def _flat_params(record: dict[str, Any]) -> dict[str, Any]:
    """A trial's params and preprocessing choices as Candidate.params and best.json spell them."""
    return {**record.get("params", {}), **{f"{PREPROCESS}{k}": v for k, v in record.get("preprocess", {}).items()}}


def _split_params(flat: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """_flat_params undone: (the family's params, the preprocessing choices)."""
    params = {k: v for k, v in flat.items() if not k.startswith(PREPROCESS)}
    return params, {k.removeprefix(PREPROCESS): v for k, v in flat.items() if k.startswith(PREPROCESS)}


def _candidate(trial: Any, source: str, pareto: bool) -> Candidate:
    value = trial.values[0] if trial.values else None
    attrs = _record(trial)
    return Candidate(
        engine="optuna",
        trial=trial.number,
        family=attrs.get("family", trial.params.get("family", "")),
        params=_flat_params(attrs),
        state=trial.state.name,
        score=value if value is not None and math.isfinite(value) else None,
        fit_seconds=attrs.get("fit_seconds"),
        predict_seconds_per_row=attrs.get("predict_seconds_per_row"),
        size_bytes=attrs.get("size_bytes"),
        artifact=attrs.get("artifact", ""),
        error=attrs.get("error", ""),
        source=source,
        pareto=pareto,
    )


def _keep_top_artifacts(candidates: list[Candidate], keep: int) -> None:
    """Delete fitted candidates beyond the best `keep`, and forget paths that no longer exist."""
    ranked = sorted((c for c in candidates if c.artifact and c.score is not None), key=lambda c: -(c.score or 0))
    for candidate in ranked[keep:]:
        Path(candidate.artifact).unlink(missing_ok=True)
    for candidate in candidates:
        if candidate.artifact and not Path(candidate.artifact).is_file():
            candidate.artifact = ""


def _record(trial: Any) -> dict[str, Any]:
    """What automlops stored about a trial: family, params, preprocess, timings, size, artifact, error."""
    record: dict[str, Any] = trial.user_attrs.get("record", {})
    return record


def _states(names: tuple[str, ...]) -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return tuple(TrialState[n] for n in names)
