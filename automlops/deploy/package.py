"""The package stage's bundle writer: the fitted model, its input example, the pinned requirements and
statistics, sealed by a manifest with every file's sha256 and optionally signed. Written atomically;
automlops.bundle reads bundles back."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automlops import __version__, children
from automlops.bundle import (
    EXAMPLE_FILE,
    FORMAT_VERSION,
    MANIFEST,
    MODEL_DIR,
    REQUIREMENTS,
    STATISTICS,
    TRAINING_ROWS,
    unsealed,
)
from automlops.config.schema import DeployConfig
from automlops.data.row_hashes import HASH_METHOD, hash_set
from automlops.io import atomic_dir, sha256_file, write_json_atomic
from automlops.records import Lineage, Manifest, ManifestMetrics, ModelInfo, PreparedMeta, SearchBest, TrainingRows
from automlops.signing import Signer, sign_manifest

KEY_PACKAGES = (
    "automlops",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "xgboost-cpu",  # the CPU build's distribution name (a core dependency): "xgboost" is not installed
    "catboost",  # AutoGluon's CatBoost family
    "optuna",
    "pandas",
    "numpy",
    "joblib",
    "pyarrow",
    "autogluon.tabular",
    "fastapi",
    "uvicorn",
)


@dataclass
class PackageInput:
    """Everything the upstream stages produced that a bundle holds."""

    name: str
    model_dir: Path  # the fitted model, saved in the format search/best.json names
    prepared: PreparedMeta  # prepare's meta.json: task, target, contract, data hash, data config
    search: SearchBest  # search's best.json: family, params, metric, lineage, search config
    metrics: dict[str, Any]  # evaluate's test metrics
    example: pd.DataFrame  # raw input rows, target excluded
    decision_threshold: float | None = None  # binary: evaluate.threshold, applied when serving too
    statistics: dict[str, Any] | None = None  # training columns' and test predictions' statistics (monitoring)
    training_rows: np.ndarray | None = None  # row hashes (automlops.data.row_hashes) of every row the model was fit on
    trained_on: tuple[str, ...] = ()  # the splits those rows came from


def write_bundle(inputs: PackageInput, cfg: DeployConfig, target: Path, signing: Signer | None = None) -> Path:
    with atomic_dir(target) as staging:
        shutil.copytree(inputs.model_dir, staging / MODEL_DIR)
        (staging / EXAMPLE_FILE).write_text(
            inputs.example.to_json(orient="records", indent=2, double_precision=15) + "\n"
        )
        packages = _versions()
        (staging / REQUIREMENTS).write_text(_requirements(packages))
        if inputs.statistics is not None:
            write_json_atomic(staging / STATISTICS, inputs.statistics)
        if inputs.training_rows is not None:
            np.save(staging / TRAINING_ROWS, hash_set(inputs.training_rows), allow_pickle=False)
        seal(staging, _manifest(inputs, cfg, packages), signing)
    return target


def seal(folder: Path, manifest: Manifest, signing: Signer | None = None) -> Manifest:
    """Write manifest.json with the sha256 of every other file in the folder, as it is now, and sign
    it (manifest.sig) with `signing`; without one, a stale signature is removed."""
    manifest = replace(
        manifest,
        files={
            p.relative_to(folder).as_posix(): sha256_file(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not unsealed(folder, p)
        },
    )
    write_json_atomic(folder / MANIFEST, manifest.to_dict())
    sign_manifest(folder / MANIFEST, signing)
    return manifest


SERVING_FIELDS = ("task", "classes", "positive_class", "decision_threshold", "input_schema", "dropped_columns")


RELEASE_FILES = ("blessing.json", "model_card.md", "model_card.html")  # what the deploy stage adds to the candidate


def content_digest(manifest: Manifest) -> str:
    """What the bundle is, without when it was made: the sha256 of its files as packaged (model,
    input example, requirements, statistics, training rows; not what deploy adds) and of the manifest
    fields that change an answer. Two runs of an unchanged pipeline give equal digests whatever the
    timestamps say, and the deploy stage publishes no new version for the second; a packaging change
    (deploy.example_rows) or another threshold is a new release."""
    written = manifest.to_dict()
    content = {
        "files": {name: sha for name, sha in sorted(manifest.files.items()) if name not in RELEASE_FILES},
        **{key: written.get(key) for key in SERVING_FIELDS},
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _manifest(inputs: PackageInput, cfg: DeployConfig, packages: dict[str, str]) -> Manifest:
    prepared, search = inputs.prepared, inputs.search
    return Manifest(
        format_version=FORMAT_VERSION,
        name=inputs.name,
        version=None,  # set when the local registry takes the bundle in
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        task=prepared.task,
        target=prepared.target,
        classes=prepared.classes,
        positive_class=prepared.positive_class,  # binary: what f1, pr_auc, brier and decision_threshold are about
        decision_threshold=inputs.decision_threshold,
        input_schema=prepared.contract,
        dropped_columns=prepared.dropped_columns,  # [{column, reason}]: prepare dropped them; predict ignores them
        metrics=ManifestMetrics(validation={search.metric: search.valid_score}, test=inputs.metrics),
        model=ModelInfo(engine=search.engine, format=search.format, family=search.family, params=search.params),
        lineage=Lineage(
            data_hash=prepared.data_hash,
            data_source=prepared.source,
            rows=prepared.rows,
            git_commit=_git_commit(),
            python=platform.python_version(),
            packages=packages,
            search=search.lineage,
        ),
        config={"data": prepared.config, "search": search.config, "deploy": asdict(cfg)},
        training_rows=None
        if inputs.training_rows is None
        else TrainingRows(
            file=TRAINING_ROWS,
            rows=len(inputs.training_rows),
            distinct=len(hash_set(inputs.training_rows)),
            splits=list(inputs.trained_on),
            hash=HASH_METHOD,
        ),
    )


def _git_commit() -> str | None:
    try:
        out = children.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = children.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
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


def _requirements(packages: dict[str, str]) -> str:
    pins = "".join(f"{name}=={version}\n" for name, version in sorted(packages.items()) if name != "automlops")
    return f"# what trained this model (automlops {packages['automlops']}, Python {platform.python_version()})\n{pins}"
