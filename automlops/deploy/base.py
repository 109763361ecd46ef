"""What every deploy target is given (a Release) and what it is (a Target). The targets import only
this module; deploy/targets.py registers them, so the import graph points one way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automlops.config.schema import DeployConfig
from automlops.records import Manifest


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
