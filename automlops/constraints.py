"""Declared value constraints for config sections, as scikit-learn's `_parameter_constraints`: each package
states the range or the allowed names of its keys once, and `violations` turns every miss into one standard
sentence, "<key>: must be <range> (<note>), got <value>; <fix>" or errors.unknown_name's for a name."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from automlops.errors import unknown_name


@dataclass(frozen=True)
class Interval:
    """A number between `low` and `high` (None: unbounded on that side); `closed` names the included ends,
    as in sklearn.utils._param_validation.Interval. `note` follows the range (a unit, or what the value means),
    `fix` follows the value (e.g. "or null for no limit")."""

    low: float | None
    high: float | None
    closed: Literal["left", "right", "both", "neither"] = "left"
    note: str = ""
    fix: str = ""

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (value == self.low and self.closed not in ("left", "both"))):
            return False
        return self.high is None or value < self.high or (value == self.high and self.closed in ("right", "both"))

    def describe(self) -> str:
        if self.high is None:
            return f"{'>=' if self.closed in ('left', 'both') else '>'} {_number(self.low)}"
        if self.low is None:
            return f"{'<=' if self.closed in ('right', 'both') else '<'} {_number(self.high)}"
        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"

    def problem(self, key: str, value: Any) -> str:
        note = f" {self.note}" if self.note else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{key}: must be {self.describe()}{note}, got {value}{fix}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of names; a miss names the key, the valid names and the closest one."""

    names: Collection[str]
    fix: str = ""  # e.g. "(or null)"

    def allows(self, value: Any) -> bool:
        return value in self.names

    def problem(self, key: str, value: Any) -> str:
        return unknown_name(key, value, list(self.names)) + (f" {self.fix}" if self.fix else "")


Constraint = Interval | Options
# a key's constraint, or a list of them where None allows null (sklearn's [Interval(...), None])
Constraints = Mapping[str, Constraint | Sequence[Constraint | None]]


def violations(section: str, values: object, constraints: Constraints) -> list[str]:
    """One problem per key of `values` (a config dataclass; dotted keys reach nested ones) that meets none
    of its constraints, in declaration order, each named `<section>.<key>`."""
    problems = []
    for key, declared in constraints.items():
        value: Any = values
        for part in key.split("."):
            value = getattr(value, part)
        allowed = list(declared) if isinstance(declared, Sequence) else [declared]
        if value is None and None in allowed:
            continue
        rules = [rule for rule in allowed if rule is not None]
        if not any(rule.allows(value) for rule in rules):
            problems.append(rules[0].problem(f"{section}.{key}", value))
    return problems


def _number(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
