"""The `bundle` deploy target: the release becomes the next version of the local model registry
(automlops.model_registry) and takes the release's alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automlops.config.schema import DeployConfig
from automlops.deploy.base import Release
from automlops.errors import RegistryError
from automlops.model_registry import add_version, promote


def publish_to_registry(release: Release, cfg: DeployConfig) -> dict[str, Any]:
    registry = Path(cfg.dir) / release.name
    version = release.manifest.version
    if not isinstance(version, int):
        raise RegistryError(f"{release.bundle}: the release has no version number; run the deploy stage to publish it")
    path = add_version(registry, release.bundle, version)
    previous = promote(registry, version, release.alias)
    return {"version": version, "path": str(path), "alias": release.alias, "previous": previous}
