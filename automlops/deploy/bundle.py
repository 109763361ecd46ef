"""The bundle: a folder with the fitted model, its input example, the pinned requirements that
trained it and a manifest that describes, checks and traces it, optionally signed (signing.py).
Written atomically; read back (load_bundle, the one path every consumer takes) only after the
signature, when public keys are configured, every file's sha256 and the key libraries' versions fit."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automlops import __version__, children
from automlops.artifacts import load_model
from automlops.config.schema import DeployConfig
from automlops.data.contract import ColumnSpec, contract_from_dicts
from automlops.data.row_hashes import HASH_METHOD, hash_set
from automlops.deploy.model_registry import resolve
from automlops.deploy.signing import NO_KEYS, SIGNATURE, Signer, TrustedKeys, sign_manifest, verify_signature
from automlops.errors import BundleError
from automlops.io import atomic_dir, sha256_file, write_json_atomic
from automlops.records import Lineage, Manifest, ManifestMetrics, ModelInfo, PreparedMeta, SearchBest, TrainingRows

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_DIR = "model"
EXAMPLE_FILE = "input_example.json"
REQUIREMENTS = "requirements.txt"
STATISTICS = "statistics.json"  # the training snapshot's column statistics, for `automlops monitor`
TRAINING_ROWS = "training_rows.npy"  # the sorted distinct row hashes of every row the model was fit on, for the gate
KEY_PACKAGES = (
    "automlops",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "optuna",
    "pandas",
    "numpy",
    "joblib",
    "pyarrow",
    "autogluon.tabular",
    "fastapi",
    "uvicorn",
)
# libraries whose pickles may not load across versions: a major-version change refuses the bundle
PICKLE_PACKAGES = {
    "sklearn": ("scikit-learn", "lightgbm", "xgboost", "numpy", "pandas"),
    "autogluon": ("autogluon.tabular", "scikit-learn", "lightgbm", "numpy", "pandas"),
}


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
            if p.is_file() and not _unsealed(folder, p)
        },
    )
    write_json_atomic(folder / MANIFEST, manifest.to_dict())
    sign_manifest(folder / MANIFEST, signing)
    return manifest


def _unsealed(folder: Path, file: Path) -> bool:
    """The manifest and its signature, which cannot list their own sha256."""
    return file.parent == folder and file.name in (MANIFEST, SIGNATURE)


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


@dataclass
class Bundle:
    path: Path
    manifest: Manifest
    model: Any

    @cached_property
    def contract(self) -> list[ColumnSpec]:  # parsed once: the server asks for it on every request
        return contract_from_dicts(self.manifest.input_schema)

    @cached_property
    def dropped_columns(self) -> frozenset[str]:
        """Columns prepare dropped (id-like, dates, constant, all missing): sent for prediction, they are ignored."""
        return frozenset(str(item["column"]) for item in self.manifest.dropped_columns or [])

    def without_dropped(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` without the columns prepare dropped: a user may send the table shape the model was
        trained from, id and date columns included (predict and serve alike)."""
        ignored = [name for name in frame.columns if name in self.dropped_columns]
        return frame.drop(columns=ignored) if ignored else frame

    @cached_property
    def statistics(self) -> dict[str, Any] | None:
        """The training snapshot's statistics (sealed like every file); None in bundles packaged before them."""
        if STATISTICS not in self.manifest.files:
            return None
        return dict(json.loads((self.path / STATISTICS).read_text()))

    @cached_property
    def training_rows(self) -> np.ndarray | None:
        """The sorted hashes of the rows the model was fit on (sealed like every file); None in bundles
        packaged before they were recorded, whose training rows are unknown."""
        record = self.manifest.training_rows
        if not record or record.file not in self.manifest.files:
            return None
        return np.asarray(np.load(self.path / record.file, allow_pickle=False), dtype=np.uint64)


def read_manifest(path: Path | str, keys: TrustedKeys = NO_KEYS) -> Manifest:
    """The bundle's metadata, without loading the model; with `keys`, only when one of them signed it.
    `path` may also be a registry reference: models/<name> (its champion) or models/<name>@<alias or version>."""
    folder = resolve(path)
    manifest_file = folder / MANIFEST
    data = manifest_file.read_bytes()  # the bytes verified are the bytes parsed
    verify_signature(folder, data, keys)
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(
            f"--model: {manifest_file} is not valid JSON ({error}); repackage with `dvc repro package`"
        ) from error
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"--model: bundle format {manifest.get('format_version')} is not {FORMAT_VERSION}; repackage it with this automlops"
        )
    return Manifest.from_dict(manifest)


def verify_bundle(path: Path | str, keys: TrustedKeys = NO_KEYS) -> Manifest:
    """Check the manifest's signature against `keys` (none: not checked), then every file against its
    sha256 in the manifest, and that no file is unlisted; nothing is unpickled. Returns the manifest.
    Consumers pass the configured keys (deploy.signing.public_keys): tests/test_signing.py checks that
    every call in automlops/ does."""
    path = resolve(path)
    manifest = read_manifest(path, keys)
    listed = manifest.files
    for name, expected in listed.items():
        file = path / name
        if not file.is_file():
            raise BundleError(
                f"--model: bundle file {file} is missing; repackage with `dvc repro package` or `automlops run`"
            )
        if sha256_file(file) != expected:
            raise BundleError(
                f"--model: {file} does not match its sha256 in {MANIFEST} (modified or corrupt); refusing to load it"
            )
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and not _unsealed(path, p)}
    if not any(name.startswith(MODEL_DIR + "/") for name in present) or present - set(listed):
        unlisted = sorted(present - set(listed))[:3] or [MODEL_DIR + "/"]
        raise BundleError(
            f"--model: {', '.join(unlisted)} not covered by the sha256 list in {MANIFEST}; refusing to load it"
        )
    return manifest


def check_versions(manifest: Manifest) -> None:
    """A pickle from another major version of its library may load wrongly or not at all: refuse it
    naming both versions; a minor difference only warns."""
    trained = manifest.lineage.packages
    for name in PICKLE_PACKAGES.get(manifest.model.format, ()):
        if name not in trained:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # not every model needs every library (a linear model no LightGBM); unpickling says if it does
        was, now = trained[name].split("."), installed.split(".")
        if was[0] != now[0]:
            raise BundleError(
                f"--model: trained with {name} {trained[name]}, this environment has {installed} (another major "
                f"version); install {name}=={trained[name]} (see the bundle's {REQUIREMENTS}) or retrain"
            )
        if was[:2] != now[:2]:
            log.warning(
                "the bundle was trained with %s %s, this environment has %s; predictions may differ slightly",
                name,
                trained[name],
                installed,
            )


def load_bundle(path: Path | str, keys: TrustedKeys = NO_KEYS) -> Bundle:
    """Verify the signature (with `keys`, deploy.signing.public_keys), every file's sha256 and the
    library versions first, then unpickle: a modified bundle is never loaded, and with keys neither
    is one whose manifest was rewritten to match."""
    folder = resolve(path)
    manifest = verify_bundle(folder, keys=keys)
    check_versions(manifest)
    return Bundle(folder, manifest, load_model(manifest.model.format, folder / MODEL_DIR))
