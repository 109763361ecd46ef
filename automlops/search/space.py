"""The search space as written in YAML, turned into typed parameter specs and Optuna suggestions.

    search.space:
      lightgbm:                                   # a family; its params exist only when it is chosen
        n_estimators: {type: int, low: 50, high: 400, step: 50}
        learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
        boosting_type: {type: categorical, choices: [gbdt, goss]}
        subsample_freq: 1                         # a scalar is a fixed value
      random_forest: null                         # null leaves a family out
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automlops.errors import ConfigError, did_you_mean, unknown_name

PARAM_TYPES = ("int", "float", "categorical")
SPEC_KEYS = {"type", "low", "high", "log", "step", "choices"}


@dataclass(frozen=True)
class ParamSpec:
    type: str  # int | float | categorical | fixed
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None  # fixed

    def suggest(self, trial: Any, name: str) -> Any:
        if self.type == "int":
            return trial.suggest_int(name, int(self.low or 0), int(self.high or 0), step=int(self.step or 1), log=self.log)
        if self.type == "float":
            return trial.suggest_float(name, float(self.low or 0), float(self.high or 0), step=self.step, log=self.log)
        if self.type == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        return self.value


Space = dict[str, dict[str, ParamSpec]]


def parse_space(raw: dict[str, Any], problems: list[str]) -> Space:
    """Turn search.space into typed specs, appending every problem found to `problems`."""
    from automlops.search.families import FAMILIES

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


def parse_param(key: str, spec: Any, problems: list[str]) -> ParamSpec | None:
    if not isinstance(spec, dict):
        return ParamSpec("fixed", value=spec)
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        name = sorted(unknown)[0]
        problems.append(f"{key}: unknown key '{name}'{did_you_mean(name, SPEC_KEYS)}; a spec takes {', '.join(sorted(SPEC_KEYS))}")
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
        return ParamSpec("categorical", choices=tuple(choices))
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
    return ParamSpec(kind, low=low, high=high, log=log, step=step)
