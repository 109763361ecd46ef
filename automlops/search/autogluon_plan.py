"""How the AutoGluon engine spends search.timeout: presets `auto` picks bagging or not from the table's
rows, the seconds fit() gets and the cores, and the phases' seconds are logged and recorded. A pure
module (no AutoGluon import), so the choice is cheap to test."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

AUTO = "auto"
# fit()'s share of the search's time when refit_full follows. Unbagged: refit_full refits every model the
# best one stands on, on train+valid; measured on 2 cores it took 1.35x the whole fit (54k rows), so fit()
# gets a bit less than half. Bagged: refitting a k-fold bag is one fit on all rows, about 1/k of the bag's
# time (AutoGluon's refit_full docs), so fit() keeps most of it.
FIT_SHARE_WITH_REFIT = 0.4
BAGGED_FIT_SHARE_WITH_REFIT = 0.75
BAG_FOLDS = 8  # AutoGluon's own choice when it bags (auto_stack)
# bag when fit() has at least this many core-seconds per 1,000 training rows: an 8-fold bag fits each
# candidate 8 times, and below this the bagged portfolio ends after one or two families (fair, 3.8k rows,
# 2 cores: 34 s gave CatBoost and two forests, 18 s only one forest). Also an absolute floor: below it the
# fixed cost of every fold (data copies, feature generation) leaves too little to fit.
BAG_MIN_CORE_SECONDS_PER_KROW = 15.0
# ...and at least this many seconds of fit(): at search.timeout=60 (34 s of bagged fit, 2 cores, a loaded
# machine) bagging was worse than medium_quality on every dataset measured (fair roc_auc 0.7025 vs 0.7145,
# digits log_loss 0.309 vs 0.112; the zeroshot bag on digits fitted no model at all in 34 s): the first
# portfolio members take most of the time 8 times over. AutoGluon's best_quality defaults to an hour.
BAG_MIN_FIT_SECONDS = 300.0
# fit_extra: when fit() returns with at least this share of its time limit unspent (and EXTRA_MIN_SECONDS),
# the rest fits more candidates of the families that win on tables, from AutoGluon's zeroshot portfolio
EXTRA_MIN_SHARE = 0.2
EXTRA_MIN_SECONDS = 5.0
EXTRA_FAMILIES = ("GBM", "CAT", "XGB")
# when refit_full does not fit in what is left, fit_extra takes this share of it (AutoGluon overshoots its
# time_limit by about a tenth, and leaderboard / the deployment clone follow)
REST_SHARE = 0.8


@dataclass(frozen=True)
class Plan:
    """What fit() is asked to do: AutoGluon's presets, bagging and stacking, and its share of the search's time."""

    presets: str
    num_bag_folds: int | None = None  # None: the presets' (or the config's) own
    num_stack_levels: int | None = None
    dynamic_stacking: bool | None = None  # None: fit()'s default
    fit_share: float = FIT_SHARE_WITH_REFIT  # with refit_full; without it fit() gets all of the search's time
    reason: str = ""

    @property
    def bagged(self) -> bool:
        return bool(self.num_bag_folds)

    def describe(self) -> str:
        bag = f" (bag {self.num_bag_folds} folds)" if self.bagged else ""
        return f"{self.presets}{bag}"

    def fit_kwargs(self) -> dict[str, Any]:
        """TabularPredictor.fit's arguments for this plan (dynamic_stacking only when the plan sets it)."""
        out: dict[str, Any] = {
            "presets": self.presets,
            "num_bag_folds": self.num_bag_folds,
            "num_stack_levels": self.num_stack_levels,
        }
        if self.dynamic_stacking is not None:
            out["dynamic_stacking"] = self.dynamic_stacking
        return out


def plan_fit(
    presets: str,
    rows: int,
    search_seconds: float | None,
    cores: int,
    num_bag_folds: int | None = None,
    num_stack_levels: int | None = None,
) -> Plan:
    """The fit for `rows` training rows, `search_seconds` of search (fit and refit) and `cores`.
    A named preset is kept as configured; `auto` bags (best_quality's zeroshot portfolio, 8 folds, one
    level, no dynamic stacking) when the fit's share of the time gives every fold enough core-seconds,
    else medium_quality. Stacking and DyStack stay off: DyStack's hold-out sub-fit takes a quarter of
    the time limit, and a stack level needs a second pass over every family, which these budgets lack.
    Explicit num_bag_folds / num_stack_levels win over the plan's."""
    if presets != AUTO:
        folds = num_bag_folds
        share = BAGGED_FIT_SHARE_WITH_REFIT if folds else FIT_SHARE_WITH_REFIT
        return Plan(presets, folds, num_stack_levels, None, share, "configured")
    if search_seconds is None:
        enough, why = True, "no time limit"
    else:
        bag_seconds = search_seconds * BAGGED_FIT_SHARE_WITH_REFIT
        per_krow = bag_seconds * max(1, cores) * 1000 / max(1, rows)
        enough = bag_seconds >= BAG_MIN_FIT_SECONDS and per_krow >= BAG_MIN_CORE_SECONDS_PER_KROW
        why = f"{per_krow:,.0f} core-s per 1k rows in {bag_seconds:.0f} s" + ("" if enough else ": too little to bag")
    folds = num_bag_folds if num_bag_folds is not None else (BAG_FOLDS if enough else None)
    if enough and folds:
        return Plan("best_quality", folds, num_stack_levels or 0, False, BAGGED_FIT_SHARE_WITH_REFIT, why)
    share = BAGGED_FIT_SHARE_WITH_REFIT if folds else FIT_SHARE_WITH_REFIT
    return Plan("medium_quality", folds, num_stack_levels, None, share, why)


@dataclass
class BudgetLog:
    """The search's seconds, phase by phase (fit, fit_extra, refit_full), for the log and best.json."""

    plan: Plan
    rows: int
    timeout: float | None
    search_limit: float | None
    phases: list[dict[str, Any]] = field(default_factory=list)

    def add(self, phase: str, seconds: float, limit: float | None = None, **details: Any) -> dict[str, Any]:
        entry = {"phase": phase, "seconds": round(seconds, 2), "limit": None if limit is None else round(limit, 2)}
        entry.update(details)
        self.phases.append(entry)
        return entry

    def line(self, elapsed: float) -> str:
        """One line: the plan, the data and budget, each phase's seconds, and what is left of the
        search's time after `elapsed` seconds (the phases and AutoGluon's calls between them)."""
        budget = "no time limit" if self.timeout is None else f"{self.timeout:g} s"
        parts = [f"autogluon: plan {self.plan.describe()} for {self.rows:,} rows x {budget}"]
        for p in self.phases:
            limit = "" if p["limit"] is None else f" of {p['limit']:.1f}"
            parts.append(f"{p['phase']} {p['seconds']:.1f}{limit} s")
        if self.search_limit is not None:
            parts.append(f"left {self.search_limit - elapsed:.1f} s")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"plan": {**asdict(self.plan), "describe": self.plan.describe()}, "phases": self.phases}


def extra_hyperparameters(portfolio: dict[str, Any]) -> dict[str, Any]:
    """fit_extra's candidates: the zeroshot portfolio's configurations of the families that win on tables."""
    return {family: portfolio[family] for family in EXTRA_FAMILIES if family in portfolio}


def rest_seconds(left: float | None) -> float | None:
    """Seconds fit_extra may take out of `left` when the refit does not fit in them, or None when too few."""
    if left is None:
        return None
    seconds = left * REST_SHARE
    return seconds if seconds >= EXTRA_MIN_SECONDS else None


def extra_seconds(fit_limit: float | None, fit_seconds: float) -> float | None:
    """Seconds fit_extra may take after fit() returned early, or None when too little is left to bother."""
    if fit_limit is None:
        return None
    left = fit_limit - fit_seconds
    return left if left >= max(EXTRA_MIN_SECONDS, EXTRA_MIN_SHARE * fit_limit) else None
