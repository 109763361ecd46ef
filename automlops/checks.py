"""The typed, checked config that commands run on. config/ composes conf/ and types it (it imports no
package above it); each package checks its own section and owns its allowed names (data/checks.py,
deploy/checks.py, evaluate/checks.py, gate.py, monitor/checks.py, serve/checks.py, config/checks.py for
run, predict and URLs); this module, above them all, runs every check and raises once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from automlops.config import checks as config_checks
from automlops.config.compose import (CONF_DIR, CONFIG_NAME, PARAMS_FILE, RUNTIME_SECTIONS, SIGNING, compose, read_params,
                                      section, structure)
from automlops.config.resolvers import conf_digest
from automlops.config.schema import Config, MonitorConfig, PredictConfig, ServeConfig, SigningConfig
from automlops.data.checks import check_data
from automlops.deploy.checks import check_deploy
from automlops.errors import ConfigError
from automlops.evaluate.checks import check_evaluate
from automlops.gate import check_gate
from automlops.monitor.checks import check_monitor
from automlops.serve.checks import check_serve


def check_config(config: Config) -> None:
    problems = (config_checks.check_run(config) + check_data(config.data) + config_checks.check_search(config)
                + check_evaluate(config.evaluate, config.data.task) + check_gate(config.gate) + check_deploy(config.deploy)
                + check_serve(config.serve) + config_checks.check_predict(config.predict) + check_monitor(config.monitor)
                + config_checks.check_urls(config))
    if problems:
        count = f"{len(problems)} config problems: " if len(problems) > 1 else ""
        raise ConfigError(count + "; ".join(problems))


def check_section(section: ServeConfig | PredictConfig | MonitorConfig) -> None:
    """Value checks of a run-time section composed without the rest of the config."""
    if isinstance(section, ServeConfig):
        problems = check_serve(section)
    elif isinstance(section, PredictConfig):
        problems = config_checks.check_predict(section)
    else:
        problems = check_monitor(section)
    if problems:
        raise ConfigError("; ".join(problems))


def to_typed(cfg: DictConfig) -> Config:
    """The composed config as the typed Config, every check passed."""
    config = structure(cfg)
    check_config(config)
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


def runtime_section(name: str, overrides: list[str]) -> Any:
    """A run-time section (serve, predict, monitor): runtime_config without the signing section."""
    return runtime_config(name, overrides)[0]


def runtime_config(name: str | None, overrides: list[str]) -> tuple[Any, SigningConfig]:
    """A run-time section (serve, predict, monitor; None: none) and deploy.signing, from the project's
    conf/ and overrides in one composition; outside a project (e.g. a container holding only a bundle)
    from the schema's defaults and `<name>.*` and `deploy.signing.*` overrides."""
    if (CONF_DIR / f"{CONFIG_NAME}.yaml").is_file():
        config = to_typed(compose(overrides))
        return (getattr(config, name) if name else None), config.deploy.signing
    prefixes = (*([f"{name}."] if name else []), f"{SIGNING}.")
    overrides = [o.lstrip("+") for o in overrides]  # +serve.x=1 and ++serve.x=1 set a key that must exist, as serve.x=1 does
    foreign = [o for o in overrides if not o.startswith(prefixes)]
    if foreign:
        raise ConfigError(f"override '{foreign[0]}': outside a project (no {CONF_DIR}/{CONFIG_NAME}.yaml here) only "
                          f"{' and '.join(p + '*' for p in prefixes)} keys apply")
    typed = None
    if name:
        typed = section(name, RUNTIME_SECTIONS[name], [o for o in overrides if o.startswith(f"{name}.")])
        check_section(typed)
    return typed, section(SIGNING, SigningConfig, [o for o in overrides if o.startswith(f"{SIGNING}.")])
