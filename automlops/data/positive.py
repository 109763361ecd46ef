"""The positive class of a binary target: the class that f1, precision, recall, average precision,
the Brier score and the decision threshold are about. Chosen once, in prepare, from
data.positive_class, and recorded in meta.json and the bundle's manifest so every later stage uses
the same one.

The default rule is scikit-learn's (and AutoGluon's for 0/1, False/True): the second class in sorted
order, so 1, True and "yes" are positive for 0/1, False/True and no/yes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from automlops.errors import DataError, did_you_mean

log = logging.getLogger(__name__)
# YAML 1.1 reads these unquoted words as booleans, so `positive_class: yes` arrives as True
_BOOLEAN_WORDS = {True: ("true", "yes", "on", "y"), False: ("false", "no", "off", "n")}


def sorted_classes(labels: Iterable[Any]) -> list[Any]:
    """The distinct labels in the order a scikit-learn classifier's classes_ has them, as plain
    Python values (JSON-ready); mixed types fall back to their text order."""
    values = [_plain(v) for v in dict.fromkeys(labels)]
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def positive_class(configured: Any, labels: Iterable[Any], task: str) -> Any:
    """The recorded positive class for this target: data.positive_class matched against the
    classes, or the default rule; None for multiclass and regression, where there is none."""
    if task != "binary":
        if configured is not None:
            raise DataError(
                f"data.positive_class: set to {configured!r}, but the task is {task}; a positive class "
                "applies to binary tasks only: remove data.positive_class or set data.task=binary"
            )
        return None
    classes = sorted_classes(labels)
    if configured is None:
        return classes[1]
    matches = [c for c in classes if _same(configured, c)]
    if len(matches) != 1:
        names = [str(c) for c in classes]
        raise DataError(
            f"data.positive_class: {configured!r} is not one of the target's classes{did_you_mean(str(configured), names)}; "
            f"choose one of: {', '.join(names)}{_quote_hint(configured)}"
        )
    return matches[0]


def _same(configured: Any, label: Any) -> bool:
    """Whether a config value names a class, across YAML's and the data's types: 1 names the text
    label "1", "1" the integer 1, True the boolean True or the text "True"/"yes"."""
    if isinstance(configured, bool):
        return label is configured if isinstance(label, bool) else str(label).lower() in _BOOLEAN_WORDS[configured]
    if isinstance(label, bool):
        return str(configured).lower() in _BOOLEAN_WORDS[label]
    if _is_number(configured) and _is_number(label):
        return float(configured) == float(label)
    return str(configured) == str(label)


def _quote_hint(configured: Any) -> str:
    if isinstance(configured, bool):
        return " (YAML reads unquoted yes/no/on/off/true/false as booleans; quote the label, e.g. 'yes')"
    return ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
