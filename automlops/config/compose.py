"""Compose conf/ with Hydra into a typed Config, and read/write params.yaml (what DVC tracks)."""

from __future__ import annotations

import difflib
import re
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from automlops.config.resolvers import register_resolvers
from automlops.config.schema import Config, MonitorConfig, PredictConfig, ServeConfig
from automlops.errors import ConfigError
from automlops.io import write_text_atomic

CONF_DIR = Path("conf")
CONFIG_NAME = "config"
SCHEMA_NAME = "automlops_schema"
PARAMS_FILE = Path("params.yaml")
PARAMS_HEADER = (
    "# Composed from conf/ by `automlops compose` (or `dvc exp run`). Edit conf/, not this file;\n"
    "# `dvc repro` refuses to run when conf/ changed after this file was composed.\n"
)


def prepare_hydra() -> None:
    """Register resolvers and the root schema; idempotent."""
    from hydra.core.config_store import ConfigStore

    register_resolvers()
    ConfigStore.instance().store(name=SCHEMA_NAME, node=Config)


def compose(overrides: list[str], conf_dir: Path = CONF_DIR) -> DictConfig:
    """Hydra composition of conf/ plus command-line overrides, resolved and schema-checked."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    if not (conf_dir / f"{CONFIG_NAME}.yaml").is_file():
        raise ConfigError(
            f"{conf_dir}/{CONFIG_NAME}.yaml not found in {Path.cwd()}; run automlops from the project root "
            "(the folder that holds conf/ and dvc.yaml)"
        )
    prepare_hydra()
    try:
        with initialize_config_dir(str(conf_dir.resolve()), version_base=None):
            cfg = hydra_compose(CONFIG_NAME, overrides=overrides)
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(describe_config_error(error)) from error
    except yaml.YAMLError as error:  # the message names the file, line and column
        raise ConfigError(
            f"config: a file under {conf_dir}/ is not valid YAML: {' '.join(str(error).split())}"
        ) from error
    return cfg


RUNTIME_SECTIONS = {"serve": ServeConfig, "predict": PredictConfig, "monitor": MonitorConfig}
SIGNING = "deploy.signing"  # every run-time command loads a bundle, so it needs the keys that verify it


def section(name: str, schema: type, overrides: list[str]) -> Any:
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(schema), OmegaConf.from_dotlist([o[len(name) + 1 :] for o in overrides])
        )
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(describe_config_error(error, section=name)) from error


def structure(cfg: DictConfig) -> Config:
    """The composed config as the typed Config, unknown keys refused; unchecked: automlops.checks.to_typed
    also runs every section's value checks."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
        assert isinstance(merged, DictConfig)
        _refuse_unknown_keys(merged)
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(describe_config_error(error)) from error
    assert isinstance(config, Config)
    return config


def _refuse_unknown_keys(cfg: DictConfig) -> None:
    """Hydra's `+key=value` and `++key=value` add a key the schema does not have (plain `key=value` is
    refused by Hydra itself), and OmegaConf then sets it as a stray attribute: refuse it, as a typo."""
    unknown = _unknown_keys(cfg)
    if unknown:
        shown = "; ".join(f"config key '{key}': not in the schema{_suggest_key(key)}" for key in unknown[:5])
        raise ConfigError(
            f"{shown}. An override may only set a key that exists (with or without + or ++); fix the key in "
            "conf/ or on the command line (`automlops run --cfg` prints the composed config)."
        )


def _unknown_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys of structured nodes that their dataclass lacks, depth first; free-form dicts
    (search.space, hyperparameters) hold any key, though structured values inside them are checked."""
    kind = OmegaConf.get_type(node)
    known = {f.name for f in fields(kind)} if kind is not None and is_dataclass(kind) else None
    unknown = []
    for key in node.keys():
        path, child = f"{prefix}{key!s}", node._get_node(key)
        nested = child if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing() else None
        if known is not None and key not in known:
            unknown += (
                _leaves(nested, f"{path}.") if nested is not None and len(nested) else [path]
            )  # +serch.n_trials=3: 'serch.n_trials'
        elif nested is not None:
            unknown += _unknown_keys(nested, f"{path}.")
    return unknown


def _leaves(node: Any, prefix: str) -> list[str]:
    return [
        leaf
        for key in node.keys()
        for leaf in (
            _leaves(node[key], f"{prefix}{key}.")
            if isinstance(node[key], DictConfig) and len(node[key])
            else [f"{prefix}{key}"]
        )
    ]


def write_params(cfg: DictConfig, path: Path = PARAMS_FILE) -> None:
    write_text_atomic(path, PARAMS_HEADER + OmegaConf.to_yaml(cfg))


def read_params(path: Path = PARAMS_FILE) -> DictConfig:
    """params.yaml (as DVC sees it), untyped: automlops.checks.load_params types and checks it."""
    if not path.is_file():
        raise ConfigError(f"{path} not found; create it with `automlops compose` from the project root")
    prepare_hydra()
    try:
        raw = OmegaConf.load(path)
    except Exception as error:  # yaml errors come in several types
        raise ConfigError(f"{path} is not valid YAML ({error}); recreate it with `automlops compose`") from error
    return raw  # type: ignore[return-value]


def describe_config_error(error: BaseException, section: str = "") -> str:
    """Flatten a Hydra/OmegaConf error chain into one line that names the key and the fix.
    `section`: the error comes from that section merged alone (its keys lack the `section.` prefix)."""
    messages: list[str] = []
    full_key = ""
    current: BaseException | None = error
    while current is not None:
        full_key = full_key or str(getattr(current, "full_key", "") or "")
        text = str(getattr(current, "msg", None) or current)
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("Config search path"):
                break  # the rest lists Hydra's search path: noise to an analyst
            if line and not re.match(
                r"(full_key|object_type|reference_type|Set the environment|To append to your config)\b|.*\$VALUE", line
            ):
                if line not in messages:
                    messages.append(line)
        current = current.__cause__ or current.__context__
    override = re.search(r"Could not (?:override|append to config\.) '([^']+)'", " ".join(messages))
    overridden = override.group(1).lstrip("+~") if override else ""
    # the override's whole key ('serch.n_trials', where the error names 'serch'), so that did-you-mean names it whole
    key = overridden if overridden.startswith(full_key) else full_key
    if section and key and not key.startswith(f"{section}."):
        key = f"{section}.{key}"
        messages = [m.replace(f"'{key[len(section) + 1 :]}'", f"'{key}'") for m in messages]
    hint = _suggest_key(key) if key else ""
    where = f"config key '{key}': " if key else "config: "
    messages = [
        re.sub(r"^In '([^']+)': (\w+ raised while composing config:\s*)?", r"in conf/\1.yaml: ", m).strip()
        for m in messages
    ]
    fix = (
        f" Fix the {section}.* override on the command line."
        if section
        else " Fix the key or value in conf/ or on the command line (`automlops run --cfg` prints the composed config)."
    )
    return f"{where}{' '.join(messages).rstrip('.')}.{hint}{fix}"


def _suggest_key(key: str) -> str:
    """' (did you mean 'search.n_trials'?)' for 'serch.n_trials' or 'search.n_trialz': the whole key,
    each misspelled part replaced by the closest one the schema has; '' when a part has none close."""
    node: object = OmegaConf.to_container(OmegaConf.structured(Config))  # MISSING values keep their keys
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or not node:  # a leaf or a free-form dict (search.space): any key below
            break
        if part not in node:
            close = difflib.get_close_matches(part, [str(k) for k in node], n=1, cutoff=0.6)
            if not close:
                return ""
            parts[i] = close[0]
        node = node[parts[i]]
    suggestion = ".".join(parts)
    return f" (did you mean '{suggestion}'?)" if suggestion != key else ""
