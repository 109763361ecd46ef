"""The bundle as its consumers see it: a folder with the fitted model, its input example, the pinned
requirements that trained it and a manifest that describes, checks and traces it, optionally signed
(automlops.signing). load_bundle is the one path every consumer takes (predict, serve, monitor, the
gate, the deploy targets): it loads only after the signature, when public keys are configured, every
file's sha256 and the key libraries' versions fit. deploy/package.py writes bundles."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automlops.artifacts import load_model
from automlops.data.contract import ColumnSpec, contract_from_dicts
from automlops.errors import BundleError
from automlops.io import sha256_file
from automlops.model_registry import resolve
from automlops.records import Manifest
from automlops.signing import NO_KEYS, SIGNATURE, TrustedKeys, verify_signature

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_DIR = "model"
EXAMPLE_FILE = "input_example.json"
REQUIREMENTS = "requirements.txt"
STATISTICS = "statistics.json"  # the training snapshot's column statistics, for `automlops monitor`
TRAINING_ROWS = "training_rows.npy"  # the sorted distinct row hashes of every row the model was fit on, for the gate
# libraries whose pickles may not load across versions: a major-version change refuses the bundle
PICKLE_PACKAGES = {
    "sklearn": ("scikit-learn", "lightgbm", "xgboost", "numpy", "pandas"),
    "autogluon": ("autogluon.tabular", "scikit-learn", "lightgbm", "numpy", "pandas"),
}


def unsealed(folder: Path, file: Path) -> bool:
    """The manifest and its signature, which cannot list their own sha256."""
    return file.parent == folder and file.name in (MANIFEST, SIGNATURE)


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
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and not unsealed(path, p)}
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
