"""Imported by Hydra's plugin scan in any process that composes conf/ (automlops, `dvc exp run`):
registers automlops' resolvers and config schema, so DVC's composition matches ours exactly."""

from automlops.config.compose import prepare_hydra

prepare_hydra()
