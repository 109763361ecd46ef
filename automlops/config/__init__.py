"""Typed configuration: schemas, Hydra composition, params.yaml, cross-field checks."""

from automlops.config.schema import Config, DataConfig, DeployConfig, RunConfig, SearchConfig, SplitConfig

__all__ = ["Config", "DataConfig", "DeployConfig", "RunConfig", "SearchConfig", "SplitConfig"]
