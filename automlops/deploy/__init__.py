"""Deploy targets behind one registry: each publishes a blessed, sealed bundle somewhere that serves.

The package stage writes the candidate bundle; the gate blesses it (or not); the deploy stage then
hands the blessed bundle to every target in `deploy.targets`, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automlops.config.schema import DeployConfig
from automlops.records import Manifest
from automlops.registry import Registry


@dataclass
class Release:
    """A blessed bundle on its way out: what every deploy target publishes."""

    name: str  # run.name: the registered model's name
    bundle: Path  # the sealed bundle folder (manifest.json with sha256 of every file, blessing.json inside)
    manifest: Manifest  # its manifest.json, already read
    alias: str  # deploy.alias: the alias the release is promoted to (e.g. champion)


# A target publishes the release and returns a small JSON-able record of where it went
# (e.g. {"version": 3, "path": "models/x/versions/3"}); records are collected in metrics/deploy.json.
Target = Callable[[Release, DeployConfig], dict[str, Any]]

TARGETS: Registry[Target] = Registry("deploy.targets")


def _register_builtin_targets() -> None:
    from automlops.deploy import (
        docker,  # noqa: F401  (registers "docker": a build context, no Docker engine needed)
        mlflow_target,  # noqa: F401  (registers "mlflow"; imports mlflow only when it runs)
        model_registry,  # noqa: F401  (registers "bundle": the local registry)
    )


_register_builtin_targets()
