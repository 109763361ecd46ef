"""automlops: declarative AutoML pipelines from Hydra configs to packaged, servable models."""

__version__ = "0.1.0"
