"""Warm starts: known-good configurations the Optuna engine runs first on a new study, cheapest first.

A sampler's first trials are random: on issue 15's 200,000-row table the first one was a linear model
that took 30 s of a 60 s budget and scored R^2 0.14. Two published ideas replace that luck:

- FLAML's zero-shot defaults (flaml/default/<estimator>/<task>.json, the `portfolio` lists): a handful of
  configurations mined offline over many datasets, tried before any tuning; and its cost-aware search,
  which starts from the cheapest configuration (few boosting rounds) and spends more only when it pays.
- AutoGluon's hyperparameter portfolios (`default` and the `zeroshot` portfolios): per model family, the
  library defaults first, then a few larger variants (e.g. its "GBMLarge": learning rate 0.03, 128
  leaves, 90 % of the features, 3 rows per leaf).

The values below are our own, chosen from those sources and sized for a budget of a minute or two (the
sources' 1,000 to 30,000 rounds are clipped by any usual space). PORTFOLIO is in cost order: a small
LightGBM first, then each family's defaults, larger boosting, forests, and the linear model last.
`warm_start_points` fits them into the user's space: a value outside a declared range is clipped to it
(and onto its step), a value not among a categorical's choices or a parameter the space does not sample
(absent, or a fixed scalar: the user's value wins) is left out, so the sampler or the space decides it.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from automlops.search.space import Param

Point = tuple[str, dict[str, Any]]  # (family, parameter -> value)

PORTFOLIO: tuple[Point, ...] = (
    # cheap and strong first: FLAML's low-cost start, with LightGBM's own learning rate
    (
        "lightgbm",
        {"n_estimators": 50, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20, "colsample_bytree": 0.8},
    ),
    # each family's library defaults (the last entry of every FLAML portfolio, AutoGluon's `{}`)
    (
        "lightgbm",
        {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "colsample_bytree": 1.0,
            "reg_lambda": 0.0,
        },
    ),
    ("hist_gradient_boosting", {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}),
    ("xgboost", {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6}),
    ("catboost", {"n_estimators": 200, "learning_rate": 0.1, "depth": 6}),
    # larger boosting: AutoGluon's GBMLarge, then a FLAML-style regularised one (slow rate, strong L2)
    (
        "lightgbm",
        {
            "n_estimators": 400,
            "learning_rate": 0.03,
            "num_leaves": 128,
            "min_child_samples": 3,
            "colsample_bytree": 0.9,
        },
    ),
    (
        "lightgbm",
        {
            "n_estimators": 400,
            "learning_rate": 0.02,
            "num_leaves": 42,
            "min_child_samples": 12,
            "colsample_bytree": 0.75,
            "reg_lambda": 10.0,
        },
    ),
    # forests: their cost grows with rows times trees, so after the boosting defaults
    ("random_forest", {"n_estimators": 100, "max_features": 0.5, "min_samples_leaf": 1}),
    ("extra_trees", {"n_estimators": 100, "max_features": 0.5, "min_samples_leaf": 1}),
    # the linear model last: cheap on small tables, but one-hot columns make it the slowest on wide ones
    ("linear", {"alpha": 1.0}),
)


def warm_start_points(space: dict[str, dict[str, Param]], limit: int | None = None) -> list[dict[str, Any]]:
    """The portfolio's points for the families in `space`, in PORTFOLIO order, each as the trial
    params Optuna's enqueue_trial takes ({"family": f, "f.param": value}); duplicates after fitting
    into the space are dropped, and at most `limit` points are returned."""
    points: list[dict[str, Any]] = []
    for family, values in PORTFOLIO:
        if family not in space:
            continue
        point: dict[str, Any] = {"family": family}
        for name, value in values.items():
            fitted = fit_into(space[family].get(name), value)
            if fitted is not None:
                point[f"{family}.{name}"] = fitted
        if point not in points:
            points.append(point)
    return points if limit is None else points[:limit]


def fit_into(param: Param | None, value: Any) -> Any:
    """`value` inside a sampled parameter's distribution (clipped, and snapped onto its step), or
    None when the parameter is not sampled or a categorical does not offer the value."""
    if isinstance(param, CategoricalDistribution):
        return value if value in param.choices else None
    if not isinstance(param, (IntDistribution, FloatDistribution)):
        return None  # not in the space, or fixed by the user
    clipped = min(max(value, param.low), param.high)
    if param.step is not None:
        steps = round((clipped - param.low) / param.step)
        clipped = min(param.low + steps * param.step, param.high)
    return int(round(clipped)) if isinstance(param, IntDistribution) else float(clipped)
