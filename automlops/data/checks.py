"""The data section's checks and allowed names (data.*), run by automlops.checks before any work."""

from __future__ import annotations

from automlops.config.schema import ANOMALY_KINDS, SEVERITIES, SPLIT_STRATEGIES, TASKS, DataConfig
from automlops.constraints import Constraints, Interval, Options, violations
from automlops.data.schema import read_schema
from automlops.data.sources import SOURCES
from automlops.errors import ConfigError

SHARE = Interval(0, 1, closed="neither", note="(a share of rows)")
CONSTRAINTS: Constraints = {
    "task": Options(TASKS),
    "split.strategy": Options(SPLIT_STRATEGIES),
    "split.test_size": SHARE,
    "split.valid_size": SHARE,
    "features.numeric_share": Interval(0, 1, closed="right", note="(a share of columns)"),
}
VALIDATION_CONSTRAINTS: Constraints = {
    **{kind: Options(SEVERITIES) for kind in ANOMALY_KINDS},
    "out_of_range_share": Interval(0, 1, closed="both", note="(a share)"),
    "max_missing_rate_jump": Interval(0, 1, closed="both", note="(a share)"),
    "max_label_shift": Interval(0, None),
}


def check_data(data: DataConfig) -> list[str]:
    split = data.split
    problems = []
    if data.source not in SOURCES:
        problems.append(Options(SOURCES.names()).problem("data.source", data.source))
    else:
        for field in SOURCES.get(data.source).required:
            if not getattr(data, field):
                problems.append(
                    f"data.{field}: required when data.source={data.source}; set it in conf/data/ or on the command line"
                )
    if data.positive_class is not None and not isinstance(data.positive_class, (str, int, float, bool)):
        problems.append(
            f"data.positive_class: must be one class label (text, a number or true/false), got {data.positive_class!r}"
        )
    elif data.positive_class is not None and data.task in ("multiclass", "regression"):
        problems.append(
            f"data.positive_class: applies to binary tasks only, but data.task={data.task}; remove it or set data.task=binary"
        )
    problems += violations("data", data, CONSTRAINTS)
    if 0 < split.test_size < 1 and 0 < split.valid_size < 1 and split.test_size + split.valid_size >= 1:
        problems.append("data.split: test_size + valid_size must be < 1 so that rows are left for training")
    for strategy, key in (("time", "time_column"), ("group", "group_column")):
        if split.strategy == strategy and not getattr(split, key):
            problems.append(f"data.split.{key}: required when data.split.strategy={strategy}")
    return problems + _validation(data)


def _validation(data: DataConfig) -> list[str]:
    """Severities and thresholds of the validation gate; the curated schema file is read (and checked) here,
    so a bad one fails before any work starts."""
    problems = violations("data.validation", data.validation, VALIDATION_CONSTRAINTS)
    if data.schema:
        try:
            read_schema(data.schema)
        except ConfigError as error:
            problems.append(str(error))
    return problems
