"""The typed hand-offs (automlops.records) read and write the JSON the stages always wrote: a real
bundle's manifest.json comes back byte for byte, an older manifest without the newer keys still
reads, and keys a newer writer added survive a rewrite."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conftest import champion

from automlops.io import finite
from automlops.records import Blessing, Lineage, Manifest, PreparedMeta, SearchBest, TrainingRows

FULL: dict[str, Any] = {
    "format_version": 1,
    "name": "penguins",
    "version": 3,
    "created_at": "2026-11-28T03:05:28+00:00",
    "task": "binary",
    "target": "sex",
    "classes": ["female", "male"],
    "positive_class": "male",
    "decision_threshold": 0.42,
    "input_schema": [
        {
            "name": "island",
            "kind": "categorical",
            "dtype": "object",
            "nullable": False,
            "categories": ["Biscoe", "Dream"],
            "min": None,
            "max": None,
        }
    ],
    "dropped_columns": [{"column": "id", "reason": "id-like"}],
    "metrics": {"validation": {"roc_auc": 0.97}, "test": {"roc_auc": 0.96, "f1": 0.9}},
    "model": {"engine": "optuna", "format": "sklearn", "family": "lightgbm", "params": {"n_estimators": 150}},
    "lineage": {
        "data_hash": "sha256:ab12",
        "data_source": "builtin dataset penguins",
        "rows": {"train": 200, "test": 69},
        "git_commit": None,
        "python": "3.11.7",
        "packages": {"scikit-learn": "1.9.1"},
        "search": {"engine": "optuna", "study_name": "automlops-9f8e"},
    },
    "config": {"data": {"source": "builtin"}, "search": {"engine": "optuna"}, "deploy": {"alias": "champion"}},
    "training_rows": {
        "file": "training_rows.npy",
        "rows": 200,
        "distinct": 199,
        "splits": ["train", "valid"],
        "hash": "xxh",
    },
    "files": {"model/model.joblib": "ab" * 32},
    "blessing": {"passed": True, "checks": ["roc_auc 0.96 >= 0.9: ok"]},
}


def written(record: Manifest | PreparedMeta | SearchBest | Blessing) -> str:
    """The bytes automlops.io.write_json_atomic writes for it."""
    return json.dumps(finite(record.to_dict()), indent=2, default=str, allow_nan=False) + "\n"


def test_a_manifest_round_trips_with_its_keys_in_order() -> None:
    manifest = Manifest.from_dict(FULL)
    assert manifest.to_dict() == FULL and list(manifest.to_dict()) == list(FULL)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.model.family == "lightgbm" and manifest.metrics.test["f1"] == 0.9
    assert manifest.training_rows == TrainingRows("training_rows.npy", 200, 199, ["train", "valid"], "xxh")
    assert manifest.blessing is not None and manifest.blessing.passed


def test_an_older_manifest_without_the_newer_keys_reads_with_defaults() -> None:
    old = copy.deepcopy(FULL)
    for key in ("positive_class", "dropped_columns", "training_rows", "blessing", "decision_threshold"):
        del old[key]
    del old["lineage"]["git_commit"]
    manifest = Manifest.from_dict(old)
    assert (manifest.positive_class, manifest.dropped_columns, manifest.training_rows, manifest.blessing) == (
        None,
        None,
        None,
        None,
    )
    assert manifest.lineage.git_commit is None and manifest.lineage.python == "3.11.7"
    assert "blessing" not in manifest.to_dict()  # a candidate has none, and none is written for it
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    bare = Manifest.from_dict(
        {
            "format_version": 1,
            "name": "x",
            "task": "regression",
            "target": "y",
            "model": {"engine": "optuna", "format": "sklearn", "family": "ridge"},
        }
    )
    assert bare.lineage == Lineage() and bare.metrics.test == {} and bare.files == {}


def test_keys_a_newer_writer_added_are_kept_on_rewrite() -> None:
    newer = {**copy.deepcopy(FULL), "signed_by": "ci"}
    newer["model"]["quantized"] = True
    newer["lineage"]["host"] = "builder-3"
    manifest = Manifest.from_dict(newer)
    assert manifest.extra == {"signed_by": "ci"} and manifest.lineage.extra == {"host": "builder-3"}
    assert manifest.to_dict() == newer


def test_real_bundles_manifests_come_back_byte_for_byte(penguins_run: tuple[Path, Any]) -> None:
    root, _ = penguins_run
    for folder in (root / "artifacts" / "bundle", champion(root, "penguins")):  # the candidate, and a published version
        text = (folder / "manifest.json").read_text()
        manifest = Manifest.from_json(text)
        assert written(manifest) == text, folder
        assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.version == 1 and manifest.blessing is not None and manifest.blessing.passed
    meta_text = (root / "data" / "prepared" / "meta.json").read_text()
    best_text = (root / "artifacts" / "search" / "best.json").read_text()
    meta, best = PreparedMeta.from_dict(json.loads(meta_text)), SearchBest.from_dict(json.loads(best_text))
    assert written(meta) == meta_text and written(best) == best_text
    assert (meta.target, meta.task, best.format) == ("species", "multiclass", "sklearn")
    for file in (root / "metrics" / "blessing.json", champion(root, "penguins") / "blessing.json"):
        text = file.read_text()
        blessing = Blessing.from_dict(json.loads(text))
        assert written(blessing) == text and blessing.passed and blessing.candidate is not None, file


def test_older_meta_and_best_without_the_newer_keys_read_with_defaults() -> None:
    meta = PreparedMeta.from_dict(
        {
            "target": "y",
            "task": "binary",
            "classes": [0, 1],
            "features": ["a"],
            "contract": [{"name": "a", "kind": "numeric"}],
            "data_hash": "h",
            "source": "s",
            "rows": {"train": 8},
        }
    )
    assert (meta.positive_class, meta.split_columns, meta.dropped_columns, meta.config) == (None, [], [], None)
    assert "config" not in meta.to_dict()  # prepare() returns it without; the stage adds it as it writes meta.json
    best = SearchBest.from_dict(
        {
            "engine": "optuna",
            "format": "sklearn",
            "family": "ridge",
            "params": {},
            "metric": "r2",
            "valid_score": 0.5,
            "lineage": {},
            "config": {},
        }
    )
    assert best.trained_on is None and "trained_on" not in best.to_dict()
    assert SearchBest.from_dict(best.to_dict()) == best and PreparedMeta.from_dict(meta.to_dict()) == meta
    gated = Blessing.from_dict({"passed": False, "checks": [], "infra": None, "champion": None, "comparison": None})
    assert (gated.candidate, gated.rechecked) == (None, None) and list(gated.to_dict()) == [
        "passed",
        "checks",
        "infra",
        "champion",
        "comparison",
    ]


def test_mypy_names_a_misspelled_field(tmp_path: Path) -> None:
    """What the records are for: a reader that spells a key wrong is a type error, found before any run."""
    from mypy import api

    reader = tmp_path / "reader.py"
    reader.write_text(
        "from automlops.records import Manifest\n\n\ndef task(manifest: Manifest) -> str:\n    return manifest.taks\n"
    )
    out, _, code = api.run([str(reader), "--config-file=", "--no-incremental", "--follow-imports=silent"])
    assert code == 1 and '"Manifest" has no attribute "taks"' in out, out
