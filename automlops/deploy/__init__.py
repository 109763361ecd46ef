"""Deploy targets behind one registry: each turns a packaged model into something that serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from automlops.config.schema import DeployConfig
from automlops.registry import Registry


@dataclass
class PackageInput:
    """Everything the upstream stages produced that a deploy target may need."""

    name: str
    model_dir: Path  # the fitted model, saved in the format search/best.json names
    prepared: dict[str, Any]  # prepare's meta.json: task, target, contract, data hash, data config
    search: dict[str, Any]  # search's best.json: family, params, metric, lineage, search config
    metrics: dict[str, Any]  # evaluate's test metrics
    example: pd.DataFrame  # raw input rows, target excluded


Target = Callable[[PackageInput, DeployConfig], Path]

TARGETS: Registry[Target] = Registry("deploy.target")


def _register_builtin_targets() -> None:
    from automlops.deploy import bundle  # noqa: F401  (registers "bundle")


_register_builtin_targets()
