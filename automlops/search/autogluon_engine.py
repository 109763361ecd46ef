"""The AutoGluon engine: TabularPredictor with presets, a time limit and families from YAML; its
own leaderboard rows become our candidates, and the packaged model is a slim deployment clone."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automlops.config.schema import SearchConfig
from automlops.errors import ConfigError, SearchError, unknown_name
from automlops.search.autogluon_plan import (
    AUTO,
    BudgetLog,
    Plan,
    extra_hyperparameters,
    extra_seconds,
    plan_fit,
    rest_seconds,
)
from automlops.search.base import Candidate, SearchData, SearchResult, search_seconds
from automlops.search.metrics import resolve_metric

log = logging.getLogger(__name__)
# our metric names (scikit-learn scorers) -> AutoGluon's; AutoGluon also reports errors negated
METRICS = {
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "f1": "f1",
    "f1_macro": "f1_macro",
    "f1_micro": "f1_micro",
    "f1_weighted": "f1_weighted",
    "precision": "precision",
    "recall": "recall",
    "average_precision": "average_precision",
    "pr_auc": "average_precision",
    "neg_log_loss": "log_loss",
    "r2": "r2",
    "neg_root_mean_squared_error": "root_mean_squared_error",
    "neg_mean_squared_error": "mean_squared_error",
    "neg_mean_absolute_error": "mean_absolute_error",
    "neg_median_absolute_error": "median_absolute_error",
    "neg_mean_absolute_percentage_error": "mean_absolute_percentage_error",
    "roc_auc_ovr": "roc_auc_ovr_macro",
}
# checked without importing AutoGluon (about two seconds); any other name is looked up in its preset table
COMMON_PRESETS = frozenset({AUTO, "medium_quality", "good_quality", "high_quality", "best_quality"})
LABEL = "__label__"  # the target's column name inside AutoGluon, whatever the data calls it
PERSIST_MEMORY_SHARE = 0.4  # of free memory that loaded models may take (AutoGluon's persist() default)
# fit()'s share of the search's time when refit_full follows (refit_full is outside AutoGluon's time_limit):
# automlops/search/autogluon_plan.py, by plan
# a refit may take this much longer per row than the fit it repeats: randhie at search.timeout=60 (CatBoost
# among the members, a shared machine at load 3) refitted in 36.1 s what its fit_time scaled to 20.7 s, 1.75x;
# at 1.25 that refit ran 12 s past the search's share and the run took 1.20x its budget
REFIT_MARGIN = 1.8
LATER_STAGES_SECONDS = (
    15.0  # evaluate, package and the serving check (loading a predictor takes seconds): Engine.later_stages_seconds
)


class AutoGluonModel:
    """A TabularPredictor folder behind the same predict / predict_proba / classes_ contract as a
    scikit-learn pipeline, so evaluation, bundles and serving treat both alike. The predictor is
    loaded on first use: the search stage only copies the folder, it never needs to load it."""

    def __init__(self, path: str, scratch: bool = False) -> None:
        self.path = path
        self.scratch = scratch  # the folder is this model's own throwaway copy: save() moves it instead of copying
        self._predictor: Any = None
        self._proba_dtype: np.dtype = np.dtype(float)  # of AutoGluon's probabilities, set by predict_proba

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            from autogluon.tabular import TabularPredictor

            _quiet()
            self._predictor = TabularPredictor.load(self.path, verbosity=0, require_py_version_match=False)
            _persist(self._predictor)
        return self._predictor

    @property
    def classes_(self) -> np.ndarray | None:
        labels = self.predictor.class_labels
        return np.array(labels) if labels is not None else None

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.predictor.predict(x).to_numpy()

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        classes = list(self.classes_ if self.classes_ is not None else [])
        raw = self.predictor.predict_proba(x, as_multiclass=True)[classes].to_numpy()
        self._proba_dtype = raw.dtype
        values = raw.astype(float)
        if len(classes) == 2:  # AutoGluon's own positive-class probability, kept exact for labels_from_proba
            return np.column_stack([1.0 - values[:, 1], values[:, 1]])
        return values / values.sum(axis=1, keepdims=True)  # float32 rounding: rows must sum to one

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """What predict answers, from predict_proba's answer, without running the models again:
        AutoGluon's rule, with the decision threshold it may have tuned (compared as AutoGluon does,
        strictly and in the probabilities' own precision). Row scaling keeps the argmax."""
        classes = np.asarray(self.classes_)
        if len(classes) == 2:
            positive = proba[:, 1].astype(self._proba_dtype)
            return np.where(positive > self.predictor.decision_threshold, classes[1], classes[0])
        return classes[proba.argmax(axis=1)]

    def save(self, folder: Path) -> None:
        """Into folder/predictor: a rename for a scratch clone (hundreds of MB for forests), else a copy."""
        target = folder / "predictor"
        if self.scratch and not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            self.path, self.scratch = str(shutil.move(self.path, target)), False
            self._predictor = None  # it held the old path
            return
        shutil.copytree(self.path, target, dirs_exist_ok=True)

    @classmethod
    def load(cls, folder: Path) -> AutoGluonModel:
        model = cls(str(folder / "predictor"))
        model.predictor  # noqa: B018 - load now: whoever loads a bundle is about to predict
        return model


def _persist(predictor: Any) -> None:
    """Keep the models in memory, so a prediction does not load them from disk again. AutoGluon's own
    guard pickles every model to size it (about a second per load); their size on disk is the same
    estimate for free, held to the same limit."""
    import psutil

    size, available = _disk_size(Path(predictor.path) / "models"), psutil.virtual_memory().available
    if size > PERSIST_MEMORY_SHARE * available:
        log.warning(
            "AutoGluon's models (%.0f MB) stay on disk: more than %.0f%% of the %.0f MB of free memory; "
            "every prediction loads them again",
            size / 1e6,
            100 * PERSIST_MEMORY_SHARE,
            available / 1e6,
        )
        return
    predictor.persist(max_memory=None)


def check_autogluon(cfg: SearchConfig, problems: list[str]) -> None:
    if cfg.timeout is None:
        problems.append(
            "search.timeout: the autogluon engine needs a wall-clock budget in seconds, e.g. search.timeout=60"
        )
    if cfg.metric is not None and cfg.metric not in METRICS:
        problems.append(
            f"search.metric: '{cfg.metric}' has no AutoGluon equivalent; use one of {', '.join(sorted(METRICS))}"
        )
    if cfg.objectives:
        problems.append(
            "search.objectives: multi-objective search is an optuna feature; use search.autogluon.infer_limit to bound latency"
        )
    if cfg.ensemble_size:
        problems.append(
            "search.ensemble_size: the autogluon engine already ensembles its own models (its WeightedEnsemble); set it to 0"
        )
    ag = cfg.autogluon
    if ag.presets not in COMMON_PRESETS:
        names, aliases = _presets()
        if ag.presets not in names and ag.presets not in aliases:
            problems.append(unknown_name("search.autogluon.presets", ag.presets, [AUTO, *names]))
    if isinstance(ag.hyperparameters, str):
        portfolios = _portfolios()
        if ag.hyperparameters not in portfolios:
            problems.append(unknown_name("search.autogluon.hyperparameters", ag.hyperparameters, portfolios))
    elif ag.hyperparameters is not None and not isinstance(ag.hyperparameters, dict):
        problems.append(
            f"search.autogluon.hyperparameters: expected a mapping of family -> settings (e.g. {{GBM: {{}}, RF: {{}}}}), the name of one of AutoGluon's portfolios (e.g. zeroshot) or null, got {ag.hyperparameters!r}"
        )
    for key in ("num_bag_folds", "num_stack_levels"):
        value = getattr(ag, key)
        if value is not None and value < 0:
            problems.append(f"search.autogluon.{key}: must be >= 0, got {value}")
    if ag.num_stack_levels and not ag.num_bag_folds:
        problems.append(
            "search.autogluon.num_stack_levels: stacking needs bagging; set search.autogluon.num_bag_folds (e.g. 5)"
        )
    if ag.infer_limit is not None and ag.infer_limit <= 0:
        problems.append(f"search.autogluon.infer_limit: must be > 0 seconds per row, got {ag.infer_limit}")


def search_autogluon(cfg: SearchConfig, data: SearchData, seed: int, state_dir: Path) -> SearchResult:
    from autogluon.tabular import TabularPredictor

    problems: list[str] = []
    check_autogluon(cfg, problems)
    if problems:
        raise ConfigError("; ".join(problems))
    metric = resolve_metric(cfg.metric, data.task)
    ag = cfg.autogluon
    fit_id = _fit_id(cfg, metric, seed, data.data_hash)
    root = state_dir / "autogluon"
    shutil.rmtree(root, ignore_errors=True)  # only the latest fit is kept: fits are large and not resumable
    train = data.x_train.assign(**{LABEL: data.y_train.to_numpy()})
    valid = data.x_valid.assign(**{LABEL: data.y_valid.to_numpy()})
    _quiet(ag.verbosity)
    started = time.perf_counter()
    limit = search_seconds(cfg.timeout, LATER_STAGES_SECONDS)
    plan = plan_fit(ag.presets, len(train), limit, cfg.threads, ag.num_bag_folds, ag.num_stack_levels)
    fit_limit = _fit_budget(cfg, plan, limit)
    budget = BudgetLog(plan, len(train), cfg.timeout, limit)
    log.info(
        "autogluon: plan %s for %s rows x %s on %d core(s) (%s); fit() gets %s",
        plan.describe(),
        f"{len(train):,}",
        f"{cfg.timeout:g} s" if cfg.timeout is not None else "no time limit",
        cfg.threads,
        plan.reason,
        "no time limit" if fit_limit is None else f"{fit_limit:.1f} s",
    )
    try:
        predictor = TabularPredictor(
            label=LABEL,
            problem_type=data.task,
            eval_metric=METRICS[metric],
            path=str(root / fit_id),
            verbosity=ag.verbosity,
            positive_class=data.positive(),  # binary: AutoGluon's f1, precision, average_precision and threshold are about it
            sample_weight="balance_weight" if cfg.class_weight == "balanced" else None,
        ).fit(
            train,
            tuning_data=valid,
            time_limit=fit_limit,
            hyperparameters=ag.hyperparameters,
            infer_limit=ag.infer_limit,
            use_bag_holdout=True,
            num_cpus=cfg.threads,  # presets that bag (best_quality...) keep our valid split as holdout
            **plan.fit_kwargs(),
        )
    except (ValueError, KeyError, AssertionError) as error:  # AutoGluon reports bad settings this way
        raise SearchError(
            f"search.autogluon: AutoGluon refused the settings ({' '.join(str(error).split())[:300]})"
        ) from error
    except RuntimeError as error:  # "No models were trained successfully during fit()"
        raise SearchError(
            f"search: AutoGluon fitted no model in its {fit_limit or 0:.0f} s time_limit (the search's share of "
            f"search.timeout={cfg.timeout:g}, less the refit); raise search.timeout"
        ) from error
    if not predictor.model_names():
        raise SearchError("search: AutoGluon fitted no model within search.timeout; raise the budget")
    fitted = time.perf_counter() - started
    _log_phase(budget, budget.add("fit", fitted, fit_limit, models=len(predictor.model_names())))
    _fit_extra(predictor, cfg, budget, extra_seconds(fit_limit, fitted), "fit_extra")
    board = predictor.leaderboard(silent=True)  # extra_info would load and pickle every model: seconds per run
    fitted = time.perf_counter() - started
    best_name = predictor.model_best
    refitted, refit_seconds, estimate = False, 0.0, None
    if ag.refit_full:
        left = None if limit is None else limit - fitted
        estimate = round(_refit_estimate(board, best_name, len(train) + len(valid), len(train), plan), 2)
        if left is None or estimate <= left:
            best_name = predictor.refit_full(model=best_name)[best_name]
            predictor.set_model_best(best_name)
            refitted, refit_seconds = True, round(time.perf_counter() - started - fitted, 2)
            _log_phase(budget, budget.add("refit_full", refit_seconds, left, estimate=estimate))
        else:
            log.warning(
                "search.autogluon.refit_full skipped: refitting %s would take about %.0f s, %.0f s of the search are left; "
                "the model fitted on train is packaged (raise search.timeout to refit it)",
                best_name,
                estimate,
                left,
            )
            # the time the refit would not fit in goes to more candidates rather than to nothing
            rest = rest_seconds(None if limit is None else limit - (time.perf_counter() - started))
            if _fit_extra(predictor, cfg, budget, rest, "fit_extra instead of refit_full"):
                board = predictor.leaderboard(silent=True)
                best_name = predictor.model_best
    log.info("%s", budget.line(time.perf_counter() - started))
    deployed = predictor.clone_for_deployment(str(root / f"{fit_id}-deploy")) if ag.keep_only_best else predictor.path
    model = AutoGluonModel(str(deployed), scratch=ag.keep_only_best)
    candidates = [_candidate(row, fit_id, predictor.path, len(valid)) for row in board.itertuples(index=False)]
    original = best_name.removesuffix("_FULL")
    winner = next(c for c in candidates if c.family == original)
    winner.params = _winner_params(predictor, original)
    return SearchResult(
        model=model,
        model_format="autogluon",
        winner=winner,
        metric=metric,
        candidates=candidates,
        lineage={
            "engine": "autogluon",
            "fit_id": fit_id,
            "best_model": best_name,
            "presets": ag.presets,
            "plan": plan.describe(),
            "time_limit": cfg.timeout,
            "fit_seconds": round(time.perf_counter() - started, 2),
            "models_fitted": len(board),
            "refit_full": refitted,
            "slim_clone": ag.keep_only_best,
            "budget": {
                "timeout": cfg.timeout,
                "search_limit": limit,
                "fit_time_limit": fit_limit,
                "fit_seconds": round(fitted, 2),
                "refit_seconds": refit_seconds,
                "refit_estimate_seconds": estimate,
                "left_seconds": None if limit is None else round(limit - (time.perf_counter() - started), 2),
                **budget.to_dict(),
            },
            "autogluon_config": asdict(ag),
        },
        # valid is AutoGluon's tuning_data (early stopping, ensemble weights), and refit_full fits on it too
        trained_on=("train", "valid"),
    )


def _log_phase(budget: BudgetLog, entry: dict[str, Any]) -> None:
    limit = "" if entry["limit"] is None else f" of {entry['limit']:.1f} s"
    details = ", ".join(f"{k} {v}" for k, v in entry.items() if k not in ("phase", "seconds", "limit"))
    log.info(
        "autogluon: %s %.1f s%s%s (plan %s)",
        entry["phase"],
        entry["seconds"],
        limit,
        f"; {details}" if details else "",
        budget.plan.describe(),
    )


def _fit_extra(predictor: Any, cfg: SearchConfig, budget: BudgetLog, seconds: float | None, phase: str) -> bool:
    """Spend `seconds` the first fit left unused (it ended early, or the refit does not fit in them) on
    more candidates of the families that win on tables, from AutoGluon's zeroshot portfolio. Only when
    the families are the presets' own: a configured `hyperparameters` is the whole search. True if it ran."""
    if not cfg.autogluon.fit_extra or cfg.autogluon.hyperparameters is not None or seconds is None:
        return False
    from autogluon.tabular.configs.hyperparameter_configs import get_hyperparameter_config

    before = len(predictor.model_names())
    started = time.perf_counter()
    try:
        predictor.fit_extra(
            extra_hyperparameters(get_hyperparameter_config("zeroshot")), time_limit=seconds, num_cpus=cfg.threads
        )
    except (ValueError, KeyError, AssertionError, RuntimeError) as error:  # the first fit's models stand
        log.warning(
            "search.autogluon.fit_extra: AutoGluon refused the extra fit (%s)", " ".join(str(error).split())[:200]
        )
    entry = budget.add(phase, time.perf_counter() - started, seconds)
    entry["models"] = len(predictor.model_names()) - before
    _log_phase(budget, entry)
    return True


def _winner_params(predictor: Any, name: str) -> dict[str, Any]:
    """The winner's settings for the manifest and leaderboard, as AutoGluon's model_hyperparameters gives
    them, and for a weighted ensemble the weight of each member, which says more about an ensemble than
    its settings. One model_info call (model_hyperparameters makes the same one; it costs ~0.2 s)."""
    info = predictor.model_info(name)
    bagged = info.get("bagged_info")
    params = dict(bagged["child_hyperparameters_user"] if bagged else info["hyperparameters_user"])
    if bagged and info["hyperparameters_user"]:  # as model_hyperparameters gives them: enough to fit it again
        params["ag_args_ensemble"] = info["hyperparameters_user"]
    weights = [child["model_weights"] for child in info.get("children_info", {}).values() if child.get("model_weights")]
    if len(weights) == 1:  # a weighted ensemble fits one weighting on its members' predictions
        params["ensemble_weights"] = {member: round(float(w), 4) for member, w in weights[0].items()}
    return _plain(params)


def _presets() -> tuple[list[str], set[str]]:
    """AutoGluon's preset names (listed in the error) and their aliases (accepted, not listed) in the
    installed version: fit() would otherwise refuse a misspelled one only after prepare."""
    from autogluon.tabular.configs.presets_configs import tabular_presets_alias, tabular_presets_dict

    return sorted(tabular_presets_dict), set(tabular_presets_alias)


def _portfolios() -> list[str]:
    """AutoGluon's named hyperparameter portfolios ('default', 'zeroshot', ...) in the installed version;
    imported only when a name is given, since the import costs about two seconds."""
    from autogluon.tabular.configs.hyperparameter_configs import hyperparameter_config_dict

    return sorted(hyperparameter_config_dict)


def _fit_budget(cfg: SearchConfig, plan: Plan, limit: float | None) -> float | None:
    """AutoGluon's time_limit: the search's share of search.timeout, less what refit_full is likely
    to need (the plan's share), so the refit on train+valid happens inside the budget rather than after it."""
    if limit is None:
        return None
    return limit * (plan.fit_share if cfg.autogluon.refit_full else 1.0)


def _refit_estimate(board: pd.DataFrame, model: str, refit_rows: int, fit_rows: int, plan: Plan) -> float:
    """Seconds refit_full is likely to take for `model`: the leaderboard's fit_time (the model and
    every model it stands on), scaled to train+valid's rows. A k-fold bag's fit_time is k fits on
    (k-1)/k of the rows each, and its refit is one fit on all of them (about 1/k of the bag's time)."""
    fit_time = float(board.loc[board["model"] == model, "fit_time"].iloc[0])
    folds = plan.num_bag_folds or 0
    if folds > 1:
        fit_time, fit_rows = fit_time / folds, fit_rows * (folds - 1) // folds
    return fit_time * refit_rows / max(1, fit_rows) * REFIT_MARGIN


def _candidate(row: Any, fit_id: str, path: str, valid_rows: int) -> Candidate:
    score = float(row.score_val) if pd.notna(row.score_val) else None
    folder = Path(path) / "models" / str(row.model)
    return Candidate(
        engine="autogluon",
        trial=int(row.fit_order),
        family=str(row.model),
        params={},
        state="COMPLETE" if score is not None else "FAIL",
        score=score,
        fit_seconds=float(row.fit_time),
        predict_seconds_per_row=float(row.pred_time_val) / max(1, valid_rows),
        size_bytes=_disk_size(folder),
        artifact=str(folder),
        source=fit_id,
    )


def _fit_id(cfg: SearchConfig, metric: str, seed: int, data_hash: str) -> str:
    shape = {
        "autogluon": asdict(cfg.autogluon),
        "metric": metric,
        "timeout": cfg.timeout,
        "seed": seed,
        "data": data_hash,
        "at": time.time(),
    }  # every fit is new: AutoGluon cannot resume one
    return "ag-" + hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _disk_size(folder: Path) -> int:
    """Bytes the model takes on disk (its own files; an ensemble's members are counted in theirs)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(value, default=str))


def _quiet(verbosity: int = 0) -> None:
    if verbosity <= 1:  # AutoGluon logs optional-dependency probes (torch, ray) as warnings
        logging.getLogger("autogluon").setLevel(logging.ERROR)
