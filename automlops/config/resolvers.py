"""OmegaConf resolvers that every composition of conf/ uses, ours and DVC's alike.

`${oc.env:VAR}` is kept as written instead of being resolved, so that a secret never lands in
params.yaml, a bundle or a log; `automlops.urls.expand_env` fills it in only where the value is used.
`${automlops_conf_digest:}` fingerprints conf/ so a stale params.yaml can be detected.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import OmegaConf

from automlops.urls import expand_env
from automlops.urls import mask_secrets as mask_env

__all__ = [
    "conf_digest",
    "expand_env",
    "mask_env",
    "model_name",
    "register_resolvers",
]  # expand_env, mask_env: re-exported

_NO_DEFAULT = object()


def _keep_env_reference(key: str, default: object = _NO_DEFAULT) -> str:
    if default is _NO_DEFAULT:
        return "${oc.env:" + key + "}"
    return "${oc.env:" + f"{key},{default}" + "}"


def conf_digest(conf_dir: str = "conf") -> str:
    """sha256 over the relative paths and bytes of every YAML file under conf_dir."""
    root = Path(conf_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()[:16]


def model_name(source: str | None, name: str | None, path: str | None) -> str:
    """A default model name that follows the data: the builtin dataset's name or the file's stem."""
    if source == "builtin" and name:
        return str(name)
    if path and "${" not in str(path):
        return Path(str(path)).stem
    return str(source or "model")


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("automlops_model_name", model_name, replace=True)
    OmegaConf.register_new_resolver("oc.env", _keep_env_reference, replace=True)
    OmegaConf.register_new_resolver("automlops_conf_digest", lambda d="conf": conf_digest(d), replace=True)
