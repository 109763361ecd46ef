"""Atomic file and directory writes: a reader never sees a half-written artifact.

Temporary files and folders are created with modes 0666/0777 and the kernel applies the umask (and a
folder's default ACL), so what a rename publishes has the modes a plain `open`/`mkdir` would give:
0644/0755 under umask 022, 0600/0700 under 077. `tempfile.mkstemp`/`mkdtemp` would make them
0600/0700 whatever the umask, and another user could not read or serve the registry."""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ATTEMPTS = 100  # fresh random names tried before giving up (as tempfile does)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh(path.parent, f".{path.name}.", ".tmp", _create_file)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    """Strict JSON (RFC 8259 has no NaN or Infinity, which Python would write and other readers refuse):
    a non-finite float is written as null."""
    write_text_atomic(path, json.dumps(finite(data), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n")


def finite(data: Any) -> Any:
    """`data` with every NaN/inf float (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(value) for value in data]
    return data


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh staging directory beside target; on success it replaces target in one rename,
    on any failure it is removed and target is left exactly as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir(target.parent, f".{target.name}.", ".staging")
    try:
        yield staging
        if target.exists():
            retired = temp_dir(target.parent, f".{target.name}.", ".old")
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def temp_dir(parent: Path, prefix: str, suffix: str) -> Path:
    """A new empty folder in `parent` with a random name; its mode follows the umask (see the module doc)."""
    return _fresh(parent, prefix, suffix, lambda path: os.mkdir(path, 0o777))


def _create_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))


def _fresh(parent: Path, prefix: str, suffix: str, create: Callable[[Path], None]) -> Path:
    """Create a new file or folder named prefix + random + suffix in `parent`; `create` must fail if it exists."""
    for _ in range(ATTEMPTS):
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{parent}: no free temporary name {prefix}*{suffix} after {ATTEMPTS} tries")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
