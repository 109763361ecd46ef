"""The local model registry: numbered bundle versions plus named aliases (champion, ...).

    models/<name>/versions/<n>/   sealed bundles, never changed once written
    models/<name>/aliases.json    {"aliases": {"champion": 3}, "history": [...]}

A version appears in one rename and aliases.json is replaced in one rename, so a crash at any
point leaves the previous champion serving. The `bundle` deploy target publishes here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from automlops.config.schema import DeployConfig
from automlops.deploy import TARGETS, Release
from automlops.errors import BundleError, RegistryError, did_you_mean
from automlops.io import temp_dir, write_json_atomic

ALIASES = "aliases.json"
VERSIONS = "versions"
DEFAULT_ALIAS = "champion"


def resolve(ref: Path | str) -> Path:
    """A bundle folder from a reference: a bundle folder itself, `models/<name>` (its champion), or
    `models/<name>@<alias>` / `models/<name>@<version>`."""
    text = str(ref)
    base, _, alias = text.rpartition("@") if "@" in Path(text).name else (text, "", "")
    folder = Path(base)
    if not alias and (folder / "manifest.json").is_file():
        return folder
    if not (folder / ALIASES).is_file() and not (folder / VERSIONS).is_dir():
        raise BundleError(f"--model: '{text}' is neither a bundle (no manifest.json) nor a registered model (no {ALIASES}); "
                          "pass models/<name>, models/<name>@<alias> or a bundle folder")
    return version_dir(folder, _version_of(folder, alias or DEFAULT_ALIAS))


def version_dir(registry: Path, version: int) -> Path:
    return registry / VERSIONS / str(version)


def _version_of(registry: Path, alias: str) -> int:
    versions = list_versions(registry)
    if alias.removeprefix("v").isdigit():
        version = int(alias.removeprefix("v"))
        if version not in versions:
            raise RegistryError(f"--model: {registry} has no version {version}; it has {', '.join(map(str, versions)) or 'none'}")
        return version
    aliases = read_aliases(registry)["aliases"]
    if alias not in aliases:
        known = ", ".join(f"{a} (v{v})" for a, v in sorted(aliases.items())) or "none yet"
        raise RegistryError(f"--model: {registry} has no alias '{alias}'{did_you_mean(alias, aliases)}; its aliases: {known}")
    return int(aliases[alias])


def list_versions(registry: Path) -> list[int]:
    folder = registry / VERSIONS
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def read_aliases(registry: Path) -> dict[str, Any]:
    file = registry / ALIASES
    if not file.is_file():
        return {"aliases": {}, "history": []}
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise RegistryError(f"{file}: not valid JSON ({error}); restore it from the history in git/DVC or re-promote a version") from error


def champion(registry: Path, alias: str = DEFAULT_ALIAS) -> Path | None:
    aliases = read_aliases(registry)["aliases"]
    return version_dir(registry, int(aliases[alias])) if alias in aliases else None


def next_version(registry: Path) -> int:
    versions = list_versions(registry)
    return versions[-1] + 1 if versions else 1


@contextmanager
def _locked(registry: Path) -> Iterator[None]:
    """One writer at a time per registered model (deploys, promotions and rollbacks)."""
    try:
        registry.mkdir(parents=True, exist_ok=True)
        handle = open(registry / ".lock", "a")  # noqa: SIM115  (held for the block)
    except OSError as error:
        raise RegistryError(f"deploy.dir: cannot write to {registry} ({error.strerror}); make it writable or set deploy.dir") from error
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def add_version(registry: Path, source: Path, version: int) -> Path:
    """Copy a sealed bundle in as `version`; it appears in one rename or not at all."""
    with _locked(registry):
        target = version_dir(registry, version)
        if target.exists():
            raise RegistryError(f"{registry}: version {version} was registered meanwhile by another run; rerun the deploy stage")
        target.parent.mkdir(exist_ok=True)
        staging = temp_dir(target.parent, f".{version}.", ".staging")
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def promote(registry: Path, version: int, alias: str = DEFAULT_ALIAS, action: str = "promote") -> int | None:
    """Point `alias` at `version`; returns the version it pointed at before."""
    with _locked(registry):
        if version not in list_versions(registry):
            raise RegistryError(f"{registry} has no version {version}; `automlops models list {registry}` shows the versions")
        state = read_aliases(registry)
        previous = state["aliases"].get(alias)
        state["aliases"][alias] = version
        state["history"].append({"at": _now(), "action": action, "alias": alias, "version": version, "previous": previous})
        write_json_atomic(registry / ALIASES, state)
    return previous


def rollback(registry: Path, alias: str = DEFAULT_ALIAS) -> int:
    """Point `alias` back at the version it held before its latest promotion; repeatable."""
    with _locked(registry):
        state = read_aliases(registry)
        stack: list[int] = []  # the alias's promotions, undone by rollbacks
        for entry in state["history"]:
            if entry["alias"] == alias:
                if entry["action"] == "rollback":
                    stack.pop()
                else:
                    stack.append(entry["version"])
        if len(stack) < 2:
            raise RegistryError(f"{registry}: alias '{alias}' has no earlier version to roll back to; "
                                f"`automlops models promote {registry} <version>` points it at any version")
        current, earlier = stack[-1], stack[-2]
        state["aliases"][alias] = earlier
        state["history"].append({"at": _now(), "action": "rollback", "alias": alias, "version": earlier, "previous": current})
        write_json_atomic(registry / ALIASES, state)
    return earlier


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@TARGETS.register("bundle")
def publish_to_registry(release: Release, cfg: DeployConfig) -> dict[str, Any]:
    registry = Path(cfg.dir) / release.name
    version = release.manifest.get("version")
    if not isinstance(version, int):
        raise RegistryError(f"{release.bundle}: the release has no version number; run the deploy stage to publish it")
    path = add_version(registry, release.bundle, version)
    previous = promote(registry, version, release.alias)
    return {"version": version, "path": str(path), "alias": release.alias, "previous": previous}
