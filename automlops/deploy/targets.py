"""The deploy-target registry: deploy.targets names each target listed here. It imports the targets,
which import only automlops.deploy.base, so the import graph points one way."""

from __future__ import annotations

from automlops.deploy.base import Release, Target
from automlops.deploy.docker import build_context
from automlops.deploy.mlflow_target import publish_mlflow
from automlops.deploy.registry_target import publish_to_registry
from automlops.registry import Registry

__all__ = ["TARGETS", "Release", "Target"]

TARGETS: Registry[Target] = Registry("deploy.targets")
TARGETS.register("bundle")(publish_to_registry)  # the local registry (models/<name>)
TARGETS.register("mlflow")(publish_mlflow)  # imports mlflow only when it runs
TARGETS.register("docker")(build_context)  # a build context; no Docker engine needed
