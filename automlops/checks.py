"""The typed, checked config that commands run on. config/ composes conf/ and types it (it imports no
package above it); each package checks its own section and owns its allowed names (data/checks.py,
deploy/checks.py, evaluate/checks.py, gate.py, monitor/checks.py, serve/checks.py, config/checks.py for
run, predict and URLs); this module, above them all, runs every check and raises once. The run-time
commands' sections alone: runtime_config.py."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from automlops.config import checks as config_checks
from automlops.config.compose import CONF_DIR, PARAMS_FILE, read_params, structure
from automlops.config.resolvers import conf_digest
from automlops.config.schema import Config
from automlops.data.checks import check_data
from automlops.deploy.checks import check_deploy, check_refit
from automlops.errors import ConfigError
from automlops.evaluate.checks import check_evaluate
from automlops.gate import check_gate
from automlops.monitor.checks import check_monitor
from automlops.search.auto import resolve_auto
from automlops.search.checks import check_search
from automlops.serve.checks import check_serve


def check_config(config: Config) -> None:
    problems = (
        config_checks.check_run(config)
        + check_data(config.data)
        + check_search(config.search)
        + check_evaluate(config.evaluate, config.data.task)
        + check_gate(config.gate)
        + check_deploy(config.deploy)
        + check_refit(config.deploy, config.search.engine)
        + check_serve(config.serve)
        + config_checks.check_predict(config.predict)
        + check_monitor(config.monitor)
        + config_checks.check_urls(config)
    )
    if problems:
        count = f"{len(problems)} config problems: " if len(problems) > 1 else ""
        raise ConfigError(count + "; ".join(problems))


def to_typed(cfg: DictConfig) -> Config:
    """The composed config as the typed Config, every check passed. search.engine stays as written
    (`auto` too): the checks see the engine auto picks, the search stage resolves it again and logs why."""
    config = structure(cfg)
    check_config(resolve_auto(config))
    return config


def load_params(path: Path = PARAMS_FILE) -> Config:
    """Read params.yaml (as DVC sees it) back into the typed, checked Config."""
    return to_typed(read_params(path))


def check_params_fresh(path: Path = PARAMS_FILE, conf_dir: Path = CONF_DIR) -> None:
    """Refuse to train on a params.yaml composed from an older conf/."""
    recorded = load_params(path).conf_digest
    current = conf_digest(str(conf_dir))
    if recorded != current:
        raise ConfigError(
            f"{path} is stale: {conf_dir}/ changed after it was composed (digest {recorded or 'none'} != {current}); "
            "run `automlops compose [overrides]` (or `dvc exp run -S ...`) to bring it up to date, then `dvc repro`"
        )
