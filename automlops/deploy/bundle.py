"""The bundle: a folder with the fitted pipeline, its input example and a manifest that describes,
checks and traces it. Written atomically; read back only after every file's sha256 matches."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from automlops import __version__
from automlops.config.schema import DeployConfig
from automlops.data.contract import ColumnSpec, contract_from_dicts
from automlops.deploy import TARGETS, PackageInput
from automlops.errors import BundleError
from automlops.io import atomic_dir, sha256_file, write_json_atomic

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_DIR = "model"
EXAMPLE_FILE = "input_example.json"
KEY_PACKAGES = ("automlops", "scikit-learn", "lightgbm", "optuna", "pandas", "numpy", "joblib", "autogluon.tabular")


@TARGETS.register("bundle")
def write_bundle(inputs: PackageInput, cfg: DeployConfig) -> Path:
    target = Path(cfg.dir) / inputs.name
    with atomic_dir(target) as staging:
        shutil.copytree(inputs.model_dir, staging / MODEL_DIR)
        (staging / EXAMPLE_FILE).write_text(inputs.example.to_json(orient="records", indent=2, double_precision=15) + "\n")
        manifest = _manifest(inputs, cfg)
        manifest["files"] = {p.relative_to(staging).as_posix(): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()}
        write_json_atomic(staging / MANIFEST, manifest)
    return target


def _manifest(inputs: PackageInput, cfg: DeployConfig) -> dict[str, Any]:
    prepared, search = inputs.prepared, inputs.search
    return {
        "format_version": FORMAT_VERSION,
        "name": inputs.name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": prepared["task"],
        "target": prepared["target"],
        "classes": prepared["classes"],
        "input_schema": prepared["contract"],
        "metrics": {"validation": {search["metric"]: search["valid_score"]}, "test": inputs.metrics},
        "model": {"engine": search["engine"], "format": search["format"], "family": search["family"], "params": search["params"]},
        "lineage": {
            "data_hash": prepared["data_hash"],
            "data_source": prepared["source"],
            "rows": prepared["rows"],
            "git_commit": _git_commit(),
            "python": platform.python_version(),
            "packages": _versions(),
            "search": search["lineage"],
        },
        "config": {"data": prepared["config"], "search": search["config"], "deploy": asdict(cfg)},
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions.setdefault("automlops", __version__)
    return versions


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any]
    model: Any

    @property
    def contract(self) -> list[ColumnSpec]:
        return contract_from_dicts(self.manifest["input_schema"])


def read_manifest(path: Path) -> dict[str, Any]:
    """The bundle's metadata, without loading (or trusting) the model."""
    manifest_file = Path(path) / MANIFEST
    if not manifest_file.is_file():
        raise BundleError(f"--model: '{path}' is not a bundle (no {MANIFEST}); pass a folder under models/ made by `automlops run`")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"--model: {manifest_file} is not valid JSON ({error}); repackage with `dvc repro package`") from error
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"--model: bundle format {manifest.get('format_version')} is not {FORMAT_VERSION}; repackage it with this automlops")
    return manifest


def load_bundle(path: Path) -> Bundle:
    """Verify every file's sha256 first, then unpickle: a modified bundle is never loaded."""
    from automlops.artifacts import load_model

    path = Path(path)
    manifest = read_manifest(path)
    for name, expected in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"--model: bundle file {file} is missing; repackage with `dvc repro package` or `automlops run`")
        if sha256_file(file) != expected:
            raise BundleError(f"--model: {file} does not match its sha256 in {MANIFEST} (modified or corrupt); refusing to load it")
    listed = set(manifest.get("files", {}))
    present = {p.relative_to(path).as_posix() for p in (path / MODEL_DIR).rglob("*") if p.is_file()}
    if not present or present - listed:
        unlisted = sorted(present - listed)[:3] or [MODEL_DIR + "/"]
        raise BundleError(f"--model: {', '.join(unlisted)} not covered by the sha256 list in {MANIFEST}; refusing to load it")
    return Bundle(path, manifest, load_model(manifest["model"]["format"], path / MODEL_DIR))
