"""The data schema: the input contract (one ColumnSpec per feature) plus the target's distribution,
as YAML an analyst can review and edit.

The prepare stage writes the schema it infers to data/prepared/schema.yaml. A curated copy under conf/
(`data.schema`) overrides it, as TFX's ImportSchemaGen does: each new batch is validated against it
(automlops.data.quality_gate), and its column specs become the model's input contract, which `predict`
and `serve` enforce. One schema object, from training to serving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from automlops.data.contract import CATEGORICAL, NUMERIC, ColumnSpec
from automlops.errors import ConfigError, did_you_mean, unknown_name

KINDS = (CATEGORICAL, NUMERIC)
TASKS = ("binary", "multiclass", "regression")
TOP_KEYS = ("columns", "target")
COLUMN_KEYS = ("kind", "dtype", "nullable", "missing_rate", "categories", "min", "max")
TARGET_KEYS = ("name", "task", "classes", "mean", "std")
MAX_PROBLEMS_SHOWN = 5
DEFAULT_DTYPE = {NUMERIC: "float64", CATEGORICAL: "object"}

HEADER = """\
# Data schema inferred by the prepare stage from {source}.
# To curate it (TFX's ImportSchemaGen): copy this file to conf/schema/<name>.yaml, edit it, and set
# data.schema=conf/schema/<name>.yaml (in conf/data/<yours>.yaml or on the command line). Each new batch
# is then checked against it before the search (report: metrics/validation.json; data.validation.* decides
# which anomalies stop the run and which only warn), and its columns become the model's input contract
# in `automlops predict` and `automlops serve`.
# columns.<name>: kind (numeric | categorical), dtype (the pandas dtype seen), nullable (may values be
#   missing?), missing_rate (share of missing values seen), categories (categorical: the allowed values),
#   min, max (numeric: the allowed range; null: unbounded).
# target: name, task and the label distribution the label-shift check compares against
#   (classes: share of each class; regression: mean and std).
"""


@dataclass(frozen=True)
class TargetSpec:
    name: str
    task: str  # binary | multiclass | regression
    classes: dict[str, float] = field(default_factory=dict)  # classification: share of each class
    mean: float | None = None  # regression
    std: float | None = None


@dataclass(frozen=True)
class DataSchema:
    columns: list[ColumnSpec]
    target: TargetSpec | None = None
    path: str | None = None  # the file it was read from (named in messages); None: inferred

    def column(self, name: str) -> ColumnSpec | None:
        return next((spec for spec in self.columns if spec.name == name), None)


def target_spec(target: pd.Series, name: str, task: str) -> TargetSpec:
    """The label distribution a new batch's is compared with (label-shift check)."""
    if task == "regression":
        values = pd.to_numeric(target, errors="coerce").dropna()
        std = float(values.std(ddof=0)) if len(values) else None
        return TargetSpec(name, task, mean=float(values.mean()) if len(values) else None, std=std)
    shares = target.dropna().astype(str).value_counts(normalize=True)
    return TargetSpec(
        name, task, classes={str(k): round(float(v), 6) for k, v in sorted(shares.items(), key=lambda kv: str(kv[0]))}
    )


def merge_contract(inferred: list[ColumnSpec], curated: DataSchema) -> list[ColumnSpec]:
    """The input contract: the curated spec of each feature the schema lists (its categories, range,
    nullability), the inferred one for the others. The training missing_rate fills a curated gap."""
    out = []
    for spec in inferred:
        chosen = curated.column(spec.name)
        if chosen is None:
            out.append(spec)
        else:
            out.append(chosen if chosen.missing_rate is not None else replace(chosen, missing_rate=spec.missing_rate))
    return out


# --- writing -----------------------------------------------------------------------------------


def schema_to_yaml(schema: DataSchema, source: str) -> str:
    columns: dict[str, dict[str, Any]] = {}
    for spec in schema.columns:
        entry: dict[str, Any] = {
            "kind": spec.kind,
            "dtype": spec.dtype,
            "nullable": spec.nullable,
            "missing_rate": spec.missing_rate,
        }
        if spec.kind == CATEGORICAL:
            entry["categories"] = list(spec.categories)
        else:
            entry["min"], entry["max"] = spec.min, spec.max
        columns[spec.name] = entry
    document: dict[str, Any] = {"columns": columns}
    if schema.target is not None:
        t = schema.target
        target: dict[str, Any] = {"name": t.name, "task": t.task}
        if t.task == "regression":
            target["mean"], target["std"] = t.mean, t.std
        else:
            target["classes"] = dict(t.classes)
        document["target"] = target
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return HEADER.format(source=source) + body


class _Dumper(yaml.SafeDumper):
    """Block mappings (one key a line, easy to diff and edit), flow lists ([a, b, c] on one line)."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


# --- reading a curated file --------------------------------------------------------------------


def read_schema(path: str | Path) -> DataSchema:
    """A curated schema file, checked: every problem is collected, then raised as one ConfigError line
    naming the file, the key path and the fix."""
    where = f"data.schema: {path}"
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"{where} not found; copy data/prepared/schema.yaml (written by the prepare stage) there and edit it, or fix data.schema"
        )
    try:
        document = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{where} is not valid YAML ({' '.join(str(error).split())}); fix the file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where} cannot be read ({error}); fix the file or data.schema") from error
    problems: list[str] = []
    if not isinstance(document, dict):
        raise ConfigError(
            f"{where}: expected a mapping with keys columns and target, got {_type(document)}; see data/prepared/schema.yaml for the layout"
        )
    _unknown_keys(document, TOP_KEYS, "", problems)
    columns = _columns(document.get("columns"), problems)
    target = _target(document.get("target"), problems) if document.get("target") is not None else None
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"; and {len(problems) - len(shown)} more problem(s)" if len(problems) > len(shown) else ""
        raise ConfigError(f"{where}: " + "; ".join(shown) + more)
    return DataSchema(columns, target, str(path))


def _columns(node: Any, problems: list[str]) -> list[ColumnSpec]:
    if not isinstance(node, dict) or not node:
        problems.append(
            f"columns: must map each column name to its spec, e.g. {{x: {{kind: numeric, nullable: false}}}}; got {_type(node)}"
        )
        return []
    specs = []
    for name, entry in node.items():
        key = f"columns.{name}"
        if not isinstance(entry, dict):
            problems.append(f"{key}: must be a mapping of {', '.join(COLUMN_KEYS)}; got {_type(entry)}")
            continue
        _unknown_keys(entry, COLUMN_KEYS, key, problems)
        spec = _column(str(name), entry, key, problems)
        if spec is not None:
            specs.append(spec)
    return specs


def _column(name: str, entry: dict[str, Any], key: str, problems: list[str]) -> ColumnSpec | None:
    kind = entry.get("kind")
    if kind is None:
        problems.append(f"{key}.kind: required; set it to {' or '.join(KINDS)}")
        return None
    if kind not in KINDS:
        problems.append(unknown_name(f"{key}.kind", str(kind), KINDS))
        return None
    before = len(problems)
    dtype = entry.get("dtype") or DEFAULT_DTYPE[kind]
    if not isinstance(dtype, str):
        problems.append(f"{key}.dtype: must be a pandas dtype name such as float64 or object; got {dtype!r}")
    nullable = entry.get("nullable", False)
    if not isinstance(nullable, bool):
        problems.append(f"{key}.nullable: must be true or false; got {nullable!r}")
    missing_rate = _number(entry, "missing_rate", key, problems)
    if missing_rate is not None and not 0 <= missing_rate <= 1:
        problems.append(f"{key}.missing_rate: must be a share between 0 and 1; got {missing_rate}")
    low, high = _number(entry, "min", key, problems), _number(entry, "max", key, problems)
    categories = entry.get("categories")
    if kind == NUMERIC:
        if categories is not None:
            problems.append(
                f"{key}.categories: only categorical columns take categories; remove it or set {key}.kind: categorical"
            )
        if low is not None and high is not None and low > high:
            problems.append(f"{key}: min ({low:g}) must be <= max ({high:g}); swap or fix them")
    else:
        for bound in ("min", "max"):
            if entry.get(bound) is not None:
                problems.append(
                    f"{key}.{bound}: only numeric columns take a range; remove it or set {key}.kind: numeric"
                )
        if categories is not None and (
            not isinstance(categories, list) or any(isinstance(c, (list, dict)) or c is None for c in categories)
        ):
            problems.append(f"{key}.categories: must be a list of values, e.g. [a, b]; got {categories!r}"[:200])
    if len(problems) > before:
        return None
    levels = [str(c) for c in categories or []]
    return ColumnSpec(
        name,
        kind,
        str(dtype),
        nullable,
        categories=levels if kind == CATEGORICAL else [],
        min=low if kind == NUMERIC else None,
        max=high if kind == NUMERIC else None,
        missing_rate=missing_rate,
    )


def _target(node: Any, problems: list[str]) -> TargetSpec | None:
    if not isinstance(node, dict):
        problems.append(f"target: must be a mapping of {', '.join(TARGET_KEYS)}; got {_type(node)}")
        return None
    before = len(problems)
    _unknown_keys(node, TARGET_KEYS, "target", problems)
    name, task = node.get("name"), node.get("task")
    if not isinstance(name, str) or not name:
        problems.append("target.name: required, the target column's name (data.target)")
    if task not in TASKS:
        problems.append(unknown_name("target.task", str(task), TASKS))
    classes = node.get("classes") or {}
    if not isinstance(classes, dict) or any(
        not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 for v in classes.values()
    ):
        problems.append(
            f"target.classes: must map each class to its share (a number >= 0), e.g. {{yes: 0.3, no: 0.7}}; got {classes!r}"[
                :200
            ]
        )
    mean, std = _number(node, "mean", "target", problems), _number(node, "std", "target", problems)
    if std is not None and std < 0:
        problems.append(f"target.std: must be >= 0; got {std}")
    if task == "regression" and node.get("classes"):
        problems.append(
            "target.classes: a regression target has mean and std, not classes; remove it or fix target.task"
        )
    if task in ("binary", "multiclass") and (mean is not None or std is not None):
        problems.append(
            "target: a classification target has classes, not mean/std; remove them or set target.task: regression"
        )
    if len(problems) > before:
        return None
    return TargetSpec(str(name), str(task), {str(k): float(v) for k, v in classes.items()}, mean, std)


def _number(node: dict[str, Any], name: str, key: str, problems: list[str]) -> float | None:
    value = node.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        problems.append(f"{key}.{name}: must be a number or null; got {value!r}"[:200])
        return None
    return float(value)


def _unknown_keys(node: dict[Any, Any], allowed: tuple[str, ...], key: str, problems: list[str]) -> None:
    for name in node:
        if name not in allowed:
            path = f"{key}.{name}" if key else str(name)
            problems.append(
                f"{path}: unknown key{did_you_mean(str(name), allowed)}; keys here are: {', '.join(allowed)}"
            )


def _type(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__} ({str(value)[:40]!r})"
