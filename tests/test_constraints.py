"""Declared constraints (automlops/constraints.py): one sentence per miss, null where declared, names with
did-you-mean; and the sections' declarations cover their keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from automlops.config.schema import DeployConfig, MonitorConfig, ServeConfig
from automlops.constraints import Interval, Options, violations
from automlops.deploy.checks import CONSTRAINTS as DEPLOY
from automlops.monitor.checks import CONSTRAINTS as MONITOR
from automlops.serve.checks import CONSTRAINTS as SERVE


@dataclass
class Inner:
    share: float = 0.5


@dataclass
class Section:
    count: int = 1
    limit: float | None = None
    kind: str = "a"
    inner: Inner = field(default_factory=Inner)


RULES = {
    "count": Interval(1, None, note="(rows)", fix="or remove it"),
    "limit": [Interval(0, None, closed="neither", note="seconds"), None],
    "kind": Options(("alpha", "beta")),
    "inner.share": Interval(0, 1, closed="right"),
}


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (Section(count=0, kind="alpha"), "s.count: must be >= 1 (rows), got 0; or remove it"),
        (Section(limit=0.0, kind="alpha"), "s.limit: must be > 0 seconds, got 0.0"),
        (Section(inner=Inner(share=0), kind="alpha"), "s.inner.share: must be in (0, 1], got 0"),
        (Section(kind="alpa"), "s.kind: unknown value 'alpa' (did you mean 'alpha'?); choose one of: alpha, beta"),
    ],
)
def test_a_miss_is_one_sentence_naming_the_key_the_range_and_the_value(values: Section, problem: str) -> None:
    assert violations("s", values, RULES) == [problem]


def test_null_passes_only_where_declared_and_bounds_follow_closed() -> None:
    assert violations("s", Section(limit=None), {"limit": RULES["limit"]}) == []
    assert violations("s", Section(limit=None), {"limit": Interval(0, None)}) == ["s.limit: must be >= 0, got None"]
    assert Interval(1, 65535, closed="both").allows(65535) and not Interval(1, 65535, closed="left").allows(65535)
    assert not Interval(0, None).allows(True) and not Interval(0, None).allows(float("nan"))


@pytest.mark.parametrize(
    ("section", "rules"), [(ServeConfig(), SERVE), (MonitorConfig(), MONITOR), (DeployConfig(), DEPLOY)]
)
def test_declared_keys_exist_and_the_defaults_meet_them(section: object, rules: dict) -> None:
    assert violations("x", section, rules) == []  # a misspelled key would raise AttributeError here
