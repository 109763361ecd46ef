"""Model families a search space may name, each a scikit-learn pipeline with the preprocessing it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from automlops.data.contract import CATEGORICAL, ColumnSpec
from automlops.registry import Registry

Estimator = Any


@dataclass(frozen=True)
class Family:
    make: Callable[[str, dict[str, Any], int, int], Estimator]  # (task, params, seed, threads)
    preprocessing: str  # "trees": ordinal codes, NaN kept; "linear": imputed, scaled, one-hot
    param_names: Callable[[], set[str]]  # the estimator's settable parameters, for config checks


FAMILIES: Registry[Family] = Registry("search.space family")


def _lightgbm(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    import lightgbm

    cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    return cls(random_state=seed, n_jobs=threads, verbose=-1, **params)


def _random_forest(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    return cls(random_state=seed, n_jobs=threads, **params)


def _extra_trees(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    cls = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
    return cls(random_state=seed, n_jobs=threads, **params)


def _linear(task: str, params: dict[str, Any], seed: int, threads: int) -> Estimator:
    """Ridge for regression, logistic regression for classes; `alpha` is the L2 strength in both."""
    from sklearn.linear_model import LogisticRegression, Ridge

    params = dict(params)
    alpha = float(params.pop("alpha", 1.0))
    if task == "regression":
        return Ridge(alpha=alpha, random_state=seed, **params)
    return LogisticRegression(C=1.0 / alpha, max_iter=params.pop("max_iter", 2000), random_state=seed, **params)


def _names(factory: Callable[[str, dict[str, Any], int, int], Estimator]) -> Callable[[], set[str]]:
    def names() -> set[str]:
        known = set(factory("regression", {}, 0, 1).get_params()) | set(factory("binary", {}, 0, 1).get_params())
        return known - {"random_state", "n_jobs", "verbose", "C"}

    return names


FAMILIES.register("lightgbm")(Family(_lightgbm, "trees", _names(_lightgbm)))
FAMILIES.register("random_forest")(Family(_random_forest, "trees", _names(_random_forest)))
FAMILIES.register("extra_trees")(Family(_extra_trees, "trees", _names(_extra_trees)))
FAMILIES.register("linear")(Family(_linear, "linear", _names(_linear)))


def build_pipeline(family_name: str, params: dict[str, Any], contract: list[ColumnSpec], task: str, seed: int, threads: int) -> Pipeline:
    """Preprocessing plus estimator, fitted as one object so the bundle takes raw columns."""
    family = FAMILIES.get(family_name)
    categorical = [c.name for c in contract if c.kind == CATEGORICAL]
    numeric = [c.name for c in contract if c.kind != CATEGORICAL]
    if family.preprocessing == "linear":
        numeric_steps = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
        categorical_steps = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="__missing__"),
            OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False),
        )
    else:
        numeric_steps = "passthrough"
        categorical_steps = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype=float
        )
    columns = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        verbose_feature_names_out=False,
    )
    if family.preprocessing == "trees" and family_name != "lightgbm":
        # scikit-learn forests do not take NaN in every version: impute after encoding
        columns = make_pipeline(columns, SimpleImputer(strategy="median", keep_empty_features=True))
    return Pipeline([("preprocess", columns), ("model", family.make(task, params, seed, threads))])
