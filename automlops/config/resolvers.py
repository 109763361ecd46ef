"""OmegaConf resolvers that every composition of conf/ uses, ours and DVC's alike.

`${oc.env:VAR}` is kept as written instead of being resolved, so that a secret never lands in
params.yaml, a bundle or a log; `expand_env` fills it in only where the value is used.
`${automlops_conf_digest:}` fingerprints conf/ so a stale params.yaml can be detected.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from automlops.errors import ConfigError

_ENV_REFERENCE = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")
_NO_DEFAULT = object()


def _keep_env_reference(key: str, default: object = _NO_DEFAULT) -> str:
    if default is _NO_DEFAULT:
        return "${oc.env:%s}" % key
    return "${oc.env:%s,%s}" % (key, default)


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


def expand_env(value: str, key: str) -> str:
    """Replace `${oc.env:VAR[,default]}` in value with the environment's value, at the point of use."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{key}: environment variable {name} is not set; export {name}=... before running")

    return _ENV_REFERENCE.sub(substitute, value)


def mask_env(text: str) -> str:
    """Hide a password that a URL spells out in clear (user:password@host); `${oc.env:...}`
    references are not secrets and stay readable."""
    references = [match.group(0) for match in _ENV_REFERENCE.finditer(text)]
    for i, reference in enumerate(references):
        text = text.replace(reference, f"\0{i}\0", 1)
    text = re.sub(r"(://[^:/@]+:)[^@/\0]+@", r"\1***@", text)
    for i, reference in enumerate(references):
        text = text.replace(f"\0{i}\0", reference, 1)
    return text
