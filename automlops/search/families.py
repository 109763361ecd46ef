"""Model families a search space may name: each an estimator factory plus the preprocessing it
defaults to, and parse_space, which checks a search space against them. Heavy libraries are
imported only when their family is used."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from automlops.data.contract import ColumnSpec
from automlops.errors import ConfigError, did_you_mean, unknown_name
from automlops.registry import Registry
from automlops.search.preprocess import Preprocess, build_columns
from automlops.search.space import Param, parse_param

Estimator = Any
Factory = Callable[[str, dict[str, Any], int, int], Estimator]  # (task, params, seed, threads)

TREES = Preprocess(numeric_imputer="none", scaler="none", encoder="ordinal")
FORESTS = Preprocess(numeric_imputer="median", scaler="none", encoder="ordinal")
LINEAR = Preprocess(numeric_imputer="median", scaler="standard", encoder="onehot", rare_min_frequency=5)
FOREST_LEAVES = 500_000  # leaves a forest may grow in all, unless max_leaf_nodes is given: about 75 MB
HIDDEN = {"random_state", "n_jobs", "verbose", "verbosity", "C", "nthread", "thread_count"}
# set by the catboost family itself: seeded, silent, and no catboost_info/ folder in the working directory
HIDDEN |= {"random_seed", "allow_writing_files", "train_dir", "logging_level", "silent"}


@dataclass(frozen=True)
class Family:
    make: Factory
    defaults: Preprocess  # preprocessing used unless search.preprocess says otherwise
    takes_nan: bool  # the model handles missing numbers itself
    takes_sparse: bool = True  # the model fits a scipy sparse matrix (one-hot columns stay sparse)
    install_hint: str = ""  # for families whose library is optional

    def param_names(self) -> set[str]:
        """The estimator's settable parameters, for config checks: what get_params lists, and the
        constructor's arguments (CatBoost's get_params lists only the ones given)."""
        known: set[str] = set()
        try:
            for task in ("regression", "binary"):
                estimator = self.make(task, {}, 0, 1)
                known |= set(estimator.get_params()) | set(inspect.signature(type(estimator).__init__).parameters)
        except ImportError as error:
            raise ConfigError(f"{self.install_hint} ({error})") from error
        return known - HIDDEN - {"self", "kwargs"}


FAMILIES: Registry[Family] = Registry("search.space family")


def _lightgbm(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    import lightgbm

    cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    return cls(random_state=seed, n_jobs=threads, verbose=-1, **params)


def _xgboost(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    import xgboost

    if task == "regression":
        return xgboost.XGBRegressor(random_state=seed, n_jobs=threads, verbosity=0, **params)
    from automlops.search.xgboost_labels import LabelledXGBClassifier

    return LabelledXGBClassifier(random_state=seed, n_jobs=threads, verbosity=0, **params)


def _catboost(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    """CatBoost on the TREES preprocessing (ordinal codes, NaN kept: CatBoost treats NaN as below
    every value); allow_writing_files=False, or each fit writes catboost_info/ into the working directory."""
    from catboost import CatBoostRegressor

    from automlops.search.catboost_labels import FlatCatBoostClassifier

    cls = CatBoostRegressor if task == "regression" else FlatCatBoostClassifier
    return cls(random_seed=seed, thread_count=threads, verbose=False, allow_writing_files=False, **params)


def _hist_gradient_boosting(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(random_state=seed, **params)


def _random_forest(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    return cls(random_state=seed, n_jobs=threads, **_bounded_forest(params))


def _extra_trees(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    cls = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
    return cls(random_state=seed, n_jobs=threads, **_bounded_forest(params))


def _bounded_forest(params: dict[str, Any]) -> dict[str, Any]:
    """Fully grown trees hold about one leaf per training row: 100 of them on issue 13's 120k training
    rows took 1.2 GB, 29x the rows' 40 MB. Sharing FOREST_LEAVES among the trees keeps a forest's size
    independent of rows; there, 30 trees of 4,096 leaves scored R^2 0.671 in 71 MB, unbounded 0.672 in 397 MB."""
    if "max_leaf_nodes" in params:
        return params
    trees = int(params.get("n_estimators", 100))
    return {**params, "max_leaf_nodes": max(2, FOREST_LEAVES // max(trees, 1))}


def _linear(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    """Ridge for regression, logistic regression for classes; `alpha` is the L2 strength in both."""
    from sklearn.linear_model import LogisticRegression, Ridge

    params = dict(params)
    alpha = float(params.pop("alpha", 1.0))
    if task == "regression":
        return Ridge(alpha=alpha, random_state=seed, **params)
    return LogisticRegression(C=1.0 / alpha, max_iter=params.pop("max_iter", 2000), random_state=seed, **params)


FAMILIES.register("lightgbm")(Family(_lightgbm, TREES, takes_nan=True))
FAMILIES.register("xgboost")(
    Family(
        _xgboost,
        TREES,
        takes_nan=True,
        install_hint="search.space.xgboost: needs the xgboost package; pip install 'automlops[xgboost]'",
    )
)
FAMILIES.register("catboost")(
    Family(
        _catboost,
        TREES,
        takes_nan=True,
        takes_sparse=False,
        install_hint="search.space.catboost: needs the catboost package; pip install catboost",
    )
)
FAMILIES.register("hist_gradient_boosting")(Family(_hist_gradient_boosting, TREES, takes_nan=True, takes_sparse=False))
FAMILIES.register("random_forest")(Family(_random_forest, FORESTS, takes_nan=False))
FAMILIES.register("extra_trees")(Family(_extra_trees, FORESTS, takes_nan=False))
FAMILIES.register("linear")(Family(_linear, LINEAR, takes_nan=False))


def build_pipeline(
    family_name: str,
    params: dict[str, Any],
    preprocess: dict[str, Any],
    contract: list[ColumnSpec],
    task: str,
    seed: int,
    threads: int,
) -> Pipeline:
    """Preprocessing plus estimator, fitted as one object so the bundle takes raw columns.
    `preprocess` holds the searched choices; the family's defaults fill in the rest."""
    family = FAMILIES.get(family_name)
    choice = family.defaults.with_choices(preprocess)
    columns = build_columns(choice, contract, family.takes_nan, family.takes_sparse, task, seed)
    return Pipeline([("preprocess", columns), ("model", family.make(task, params, seed, threads))])


Space = dict[str, dict[str, Param]]  # family -> parameter -> distribution or fixed value


def parse_space(raw: dict[str, Any], problems: list[str]) -> Space:
    """Turn search.space into Optuna distributions per family, appending every problem found to `problems`."""
    space: Space = {}
    for family, params in (raw or {}).items():
        key = f"search.space.{family}"
        if params is None:
            continue
        if family not in FAMILIES:
            problems.append(unknown_name(key.rsplit(".", 1)[0] + " family", family, FAMILIES.names()))
            continue
        if not isinstance(params, dict):
            problems.append(f"{key}: expected a mapping of parameter -> spec, got {params!r}")
            continue
        try:
            known = FAMILIES.get(family).param_names()
        except ConfigError as error:
            problems.append(str(error))
            continue
        specs = {}
        for name, spec in params.items():
            if name not in known:
                problems.append(f"{key}.{name}: '{family}' has no parameter '{name}'{did_you_mean(name, known)}")
                continue
            parsed = parse_param(f"{key}.{name}", spec, problems)
            if parsed is not None:
                specs[name] = parsed
        space[family] = specs
    if not space and not problems:
        problems.append("search.space: no model family to search; add at least one, e.g. lightgbm: {}")
    return space
