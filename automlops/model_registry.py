"""The local model registry: numbered bundle versions plus named aliases (champion, ...).

    models/<name>/versions/<n>/   sealed bundles, never changed once written
    models/<name>/aliases.json    {"aliases": {"champion": 3}, "history": [...], "last_version": 5}

A version appears in one rename and aliases.json is replaced in one rename, so a crash at any
point leaves the previous champion serving. Every change holds the model's lock (`locked`), which the
deploy stage holds from its champion check to its last target. Version numbers are never reused:
`last_version` remembers the highest one ever added, deleted or not. The `bundle` deploy target
(deploy/registry_target.py) publishes here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

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
        raise BundleError(
            f"--model: '{text}' is neither a bundle (no manifest.json) nor a registered model (no {ALIASES}); "
            "pass models/<name>, models/<name>@<alias> or a bundle folder"
        )
    return version_dir(folder, _version_of(folder, alias or DEFAULT_ALIAS))


def version_dir(registry: Path, version: int) -> Path:
    return registry / VERSIONS / str(version)


def _version_of(registry: Path, alias: str) -> int:
    versions = list_versions(registry)
    if alias.removeprefix("v").isdigit():
        version = int(alias.removeprefix("v"))
        if version not in versions:
            raise RegistryError(
                f"--model: {registry} has no version {version}; it has {', '.join(map(str, versions)) or 'none'}"
            )
        return version
    aliases = read_aliases(registry)["aliases"]
    if alias not in aliases:
        known = ", ".join(f"{a} (v{v})" for a, v in sorted(aliases.items())) or "none yet"
        raise RegistryError(
            f"--model: {registry} has no alias '{alias}'{did_you_mean(alias, aliases)}; its aliases: {known}"
        )
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
        raise RegistryError(
            f"{file}: not valid JSON ({error}); restore it from the history in git/DVC or re-promote a version"
        ) from error


def champion(registry: Path, alias: str = DEFAULT_ALIAS) -> Path | None:
    aliases = read_aliases(registry)["aliases"]
    return version_dir(registry, int(aliases[alias])) if alias in aliases else None


def next_version(registry: Path) -> int:
    """One above every version ever added, so a deleted version's number is never given again."""
    state = read_aliases(registry)
    history = [int(entry["version"]) for entry in state["history"] if isinstance(entry.get("version"), int)]
    return max([0, *list_versions(registry), int(state.get("last_version") or 0), *history]) + 1


_guard = threading.RLock()  # one thread of this process at a time holds registry locks
_held: dict[Path, tuple[IO[str], int]] = {}  # registry -> (its locked .lock file, nesting depth)


@contextmanager
def locked(registry: Path) -> Iterator[None]:
    """One writer at a time per registered model (deploys, promotions, rollbacks, deletions), across
    processes (flock) and re-entrant within one: the deploy stage holds it from its champion check to
    its last target, and the add_version/promote calls inside take it again."""
    key = registry.absolute()
    with _guard:
        if key in _held:
            handle, depth = _held[key]
            _held[key] = (handle, depth + 1)
            try:
                yield
            finally:
                _held[key] = (handle, depth)
            return
        try:
            registry.mkdir(parents=True, exist_ok=True)
            handle = open(registry / ".lock", "a")  # noqa: SIM115  (held for the block)
        except OSError as error:
            raise RegistryError(
                f"deploy.dir: cannot write to {registry} ({error.strerror}); make it writable or set deploy.dir"
            ) from error
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            _held[key] = (handle, 1)
            try:
                yield
            finally:
                del _held[key]


def add_version(registry: Path, source: Path, version: int) -> Path:
    """Copy a sealed bundle in as `version`; it appears in one rename or not at all."""
    with locked(registry):
        target = version_dir(registry, version)
        if target.exists():
            raise RegistryError(
                f"{registry}: version {version} was registered meanwhile by another run; rerun the deploy stage"
            )
        target.parent.mkdir(exist_ok=True)
        staging = temp_dir(target.parent, f".{version}.", ".staging")
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        state = read_aliases(registry)
        state["last_version"] = max(version, int(state.get("last_version") or 0))
        write_json_atomic(registry / ALIASES, state)
    return target


def promote(registry: Path, version: int, alias: str = DEFAULT_ALIAS, action: str = "promote") -> int | None:
    """Point `alias` at `version`; returns the version it pointed at before."""
    with locked(registry):
        if version not in list_versions(registry):
            raise RegistryError(
                f"{registry} has no version {version}; `automlops models list {registry}` shows the versions"
            )
        state = read_aliases(registry)
        previous = state["aliases"].get(alias)
        state["aliases"][alias] = version
        state["history"].append(
            {"at": _now(), "action": action, "alias": alias, "version": version, "previous": previous}
        )
        write_json_atomic(registry / ALIASES, state)
    return previous


def rollback(registry: Path, alias: str = DEFAULT_ALIAS) -> int:
    """Point `alias` back at the version it held before its latest promotion; repeatable."""
    with locked(registry):
        state = read_aliases(registry)
        stack: list[int] = []  # the alias's promotions, undone by rollbacks
        for entry in state["history"]:
            if entry.get("alias") == alias:
                if entry["action"] == "rollback":
                    stack.pop()
                else:
                    stack.append(entry["version"])
        if len(stack) < 2:
            raise RegistryError(
                f"{registry}: alias '{alias}' has no earlier version to roll back to; "
                f"`automlops models promote {registry} <version>` points it at any version"
            )
        current, earlier = stack[-1], stack[-2]
        if earlier not in list_versions(registry):
            raise RegistryError(
                f"{registry}: alias '{alias}' held v{earlier} before v{current}, but v{earlier} was deleted; "
                f"`automlops models promote {registry.name} <version>` points it at a version that exists"
            )
        state["aliases"][alias] = earlier
        state["history"].append(
            {"at": _now(), "action": "rollback", "alias": alias, "version": earlier, "previous": current}
        )
        write_json_atomic(registry / ALIASES, state)
    return earlier


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def alias_targets(registry: Path) -> dict[int, list[str]]:
    """{version: [the aliases pointing at it]}."""
    targets: dict[int, list[str]] = {}
    for alias, version in sorted(read_aliases(registry)["aliases"].items()):
        targets.setdefault(int(version), []).append(alias)
    return targets


def delete_version(registry: Path, version: int) -> None:
    """Remove one version, never an alias's target (a server may be following the alias). Its number
    is not given again."""
    with locked(registry):
        if version not in list_versions(registry):
            raise RegistryError(
                f"{registry} has no version {version}; it has {', '.join(map(str, list_versions(registry))) or 'none'}"
            )
        aliases = alias_targets(registry).get(version)
        if aliases:
            names = ", ".join(f"'{a}'" for a in aliases)
            raise RegistryError(
                f"{registry}: v{version} is the target of alias {names}; point the alias at another version first "
                f"(`automlops models promote {registry.name} <version> --alias {aliases[0]}`, or `models rollback`)"
            )
        _remove(registry, [version])


def prune(registry: Path, keep: int) -> tuple[list[int], list[int]]:
    """Delete all but the `keep` newest versions, keeping every alias target; returns (deleted, the
    alias targets kept beyond the newest `keep`)."""
    if keep < 0:
        raise RegistryError(f"--keep: must be >= 0, got {keep}")
    with locked(registry):
        versions = list_versions(registry)
        newest = set(versions[len(versions) - keep :]) if keep else set()
        targets = alias_targets(registry)
        deleted = [v for v in versions if v not in newest and v not in targets]
        _remove(registry, deleted)
    return deleted, [v for v in versions if v not in newest and v in targets]


def _remove(registry: Path, versions: list[int]) -> None:
    """Under the lock: record the deletions and the highest number, then take each folder out in one rename."""
    if not versions:
        return
    state = read_aliases(registry)
    state["last_version"] = max([*list_versions(registry), int(state.get("last_version") or 0)])
    state["history"].extend({"at": _now(), "action": "delete", "version": v} for v in versions)
    write_json_atomic(registry / ALIASES, state)
    for version in versions:
        doomed = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".deleting", dir=registry / VERSIONS))
        os.rename(version_dir(registry, version), doomed / str(version))
        shutil.rmtree(doomed, ignore_errors=True)
