"""A search-space parameter as written in YAML, turned into an Optuna distribution (or a fixed value).

    search.space:
      lightgbm:                                   # a family; its params exist only when it is chosen
        n_estimators: {type: int, low: 50, high: 400, step: 50}
        learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
        boosting_type: {type: categorical, choices: [gbdt, goss]}
        subsample_freq: 1                         # a scalar is a fixed value
      random_forest: null                         # null leaves a family out

Which families and parameters a space may name is automlops.search.families.parse_space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from automlops.errors import did_you_mean, unknown_name

PARAM_TYPES = ("int", "float", "categorical")
SPEC_KEYS = {"type", "low", "high", "log", "step", "choices"}


@dataclass(frozen=True)
class Fixed:
    """A scalar in the YAML: the value every trial uses, never sampled (nor stored as a trial param)."""

    value: Any


Param = BaseDistribution | Fixed  # IntDistribution | FloatDistribution | CategoricalDistribution | Fixed


KINDS: dict[type, str] = {
    IntDistribution: "int",
    FloatDistribution: "float",
    CategoricalDistribution: "categorical",
    Fixed: "fixed",
}


def suggest(trial: Any, name: str, param: Param) -> Any:
    """The trial's value of one parameter: drawn from its distribution by the study's sampler, or the
    fixed value. Optuna's public suggest_* build the same distribution again and check it against the
    one a resumed or shared study recorded under `name`."""
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, IntDistribution):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, FloatDistribution):
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, CategoricalDistribution):
        return trial.suggest_categorical(name, param.choices)
    raise TypeError(f"{name}: no suggestion for {type(param).__name__}")


def spec_record(spec: Any) -> dict[str, Any]:
    """A checked YAML spec in the form the study's name has always been derived from: a changed
    record would start a new study instead of resuming the one a previous run left."""
    record: dict[str, Any] = {
        "type": "fixed",
        "low": None,
        "high": None,
        "log": False,
        "step": None,
        "choices": [],
        "value": None,
    }
    if not isinstance(spec, dict):
        return {**record, "value": spec}
    if spec["type"] == "categorical":
        return {**record, "type": "categorical", "choices": list(spec["choices"])}
    return {
        **record,
        "type": spec["type"],
        "low": spec["low"],
        "high": spec["high"],
        "log": bool(spec.get("log", False)),
        "step": spec.get("step"),
    }


def parse_param(key: str, spec: Any, problems: list[str]) -> Param | None:
    """One parameter's YAML spec as an Optuna distribution, or None after appending its problem."""
    if not isinstance(spec, dict):
        return Fixed(spec)
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        name = sorted(unknown)[0]
        problems.append(
            f"{key}: unknown key '{name}'{did_you_mean(name, SPEC_KEYS)}; a spec takes {', '.join(sorted(SPEC_KEYS))}"
        )
        return None
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        problems.append(unknown_name(f"{key}.type", str(kind), PARAM_TYPES))
        return None
    if kind == "categorical":
        choices = spec.get("choices") or []
        if not choices:
            problems.append(f"{key}.choices: a categorical parameter needs a non-empty list of choices")
            return None
        return CategoricalDistribution(tuple(choices))
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), bool(spec.get("log", False))
    for bound, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(f"{key}.{bound}: expected a number, got {value!r}")
            return None
    if low is None or high is None:
        problems.append(f"{key}: a {kind} parameter needs both low and high")
        return None
    if low > high:
        problems.append(f"{key}: low <= high must hold, but got low={low}, high={high}; swap them")
        return None
    if log and low <= 0:
        problems.append(f"{key}: log=true needs low > 0, but got low={low}")
        return None
    if log and step is not None:
        problems.append(f"{key}: step and log=true cannot be used together; drop one")
        return None
    if step is not None and step <= 0:
        problems.append(f"{key}.step: must be > 0, got {step}")
        return None
    if kind == "int" and any(v is not None and float(v) != int(v) for v in (low, high, step)):
        problems.append(f"{key}: an int parameter needs whole-number low/high/step; use type: float")
        return None
    if kind == "int":
        return IntDistribution(int(low), int(high), log=log, step=int(step or 1))
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))
