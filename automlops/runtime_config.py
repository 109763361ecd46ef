"""The run-time commands' config (serve, predict, monitor) and deploy.signing: in a project, from the whole
checked config; outside one (e.g. a container holding only a bundle and the serving packages), from the
schema's defaults and overrides, with that section's checks only."""

from __future__ import annotations

from typing import Any

from automlops.config.checks import check_predict
from automlops.config.compose import CONF_DIR, CONFIG_NAME, RUNTIME_SECTIONS, SIGNING, compose, section
from automlops.config.schema import MonitorConfig, PredictConfig, ServeConfig, SigningConfig
from automlops.errors import ConfigError
from automlops.monitor.checks import check_monitor
from automlops.serve.checks import check_serve


def check_section(config: ServeConfig | PredictConfig | MonitorConfig) -> None:
    """Value checks of a run-time section composed without the rest of the config."""
    if isinstance(config, ServeConfig):
        problems = check_serve(config)
    elif isinstance(config, PredictConfig):
        problems = check_predict(config)
    else:
        problems = check_monitor(config)
    if problems:
        raise ConfigError("; ".join(problems))


def runtime_section(name: str, overrides: list[str]) -> Any:
    """A run-time section (serve, predict, monitor): runtime_config without the signing section."""
    return runtime_config(name, overrides)[0]


def runtime_config(name: str | None, overrides: list[str]) -> tuple[Any, SigningConfig]:
    """A run-time section (serve, predict, monitor; None: none) and deploy.signing, from the project's
    conf/ and overrides in one composition; outside a project (e.g. a container holding only a bundle)
    from the schema's defaults and `<name>.*` and `deploy.signing.*` overrides."""
    if (CONF_DIR / f"{CONFIG_NAME}.yaml").is_file():
        # lazy: every section's checks load the training libraries (SciPy, scikit-learn, ...), which a
        # container that only serves does not install; outside a project they are not needed
        from automlops.checks import to_typed

        config = to_typed(compose(overrides))
        return (getattr(config, name) if name else None), config.deploy.signing
    prefixes = (*([f"{name}."] if name else []), f"{SIGNING}.")
    overrides = [
        o.lstrip("+") for o in overrides
    ]  # +serve.x=1 and ++serve.x=1 set a key that must exist, as serve.x=1 does
    foreign = [o for o in overrides if not o.startswith(prefixes)]
    if foreign:
        raise ConfigError(
            f"override '{foreign[0]}': outside a project (no {CONF_DIR}/{CONFIG_NAME}.yaml here) only "
            f"{' and '.join(p + '*' for p in prefixes)} keys apply"
        )
    typed = None
    if name:
        typed = section(name, RUNTIME_SECTIONS[name], [o for o in overrides if o.startswith(f"{name}.")])
        check_section(typed)
    return typed, section(SIGNING, SigningConfig, [o for o in overrides if o.startswith(f"{SIGNING}.")])
