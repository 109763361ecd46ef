"""The blessed candidate refit on every labelled row (deploy.refit_all_rows), as FLAML's retrain_full and
AutoGluon's refit_full do: the gate judged the candidate, and the served model is the same family and
settings fit on train+valid+test. The bundle is the candidate's with the model, training rows and
manifest replaced, written atomically: a refit that fails leaves no half bundle, and the champion stays.

The recorded test metrics cannot come from the refit model (the test rows are in its fit), so they stay
the candidate's, and the manifest says so (metrics.estimate_from, refit)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from automlops.artifacts import save_model
from automlops.bundle import MODEL_DIR, TRAINING_ROWS, read_manifest
from automlops.data.row_hashes import hash_set
from automlops.deploy.package import seal
from automlops.io import atomic_dir
from automlops.records import Manifest, Refit, TrainingRows
from automlops.signing import Signer


def estimate_from(rows: int, candidate_rows: int | None) -> str:
    """The label the recorded test metrics carry once the served model is the refit one."""
    fit = f"fit on {candidate_rows} rows" if candidate_rows is not None else "fit before the refit"
    return (
        f"the pre-refit candidate ({fit}) on the held-out test split; the served model was refit on all "
        f"{rows} labelled rows (deploy.refit_all_rows), test rows included, so no held-out score of it exists"
    )


def write_refit_bundle(
    candidate_dir: Path,
    target: Path,
    model: Any,
    training_rows: np.ndarray,
    refit: Refit,
    signing: Signer | None = None,
) -> Manifest:
    """`target` as the bundle in `candidate_dir` with `model` (fit on the rows hashed in `training_rows`)
    in place of its model; returns the sealed manifest."""
    candidate = read_manifest(candidate_dir)
    with atomic_dir(target) as staging:
        shutil.copytree(candidate_dir, staging, dirs_exist_ok=True)
        shutil.rmtree(staging / MODEL_DIR)
        save_model(model, candidate.model.format, staging / MODEL_DIR)
        np.save(staging / TRAINING_ROWS, hash_set(training_rows), allow_pickle=False)
        recorded = candidate.training_rows
        refit = replace(refit, candidate_rows=recorded.rows if recorded else None)
        manifest = replace(
            candidate,
            metrics=replace(candidate.metrics, estimate_from=estimate_from(refit.rows, refit.candidate_rows)),
            training_rows=TrainingRows(
                file=TRAINING_ROWS,
                rows=len(training_rows),
                distinct=len(hash_set(training_rows)),
                splits=list(refit.splits),
                hash=recorded.hash if recorded else None,
            ),
            refit=refit,
            files={},
        )
        manifest = seal(staging, manifest, signing)  # every file's sha256 again, and signed again (or unsigned)
    return manifest
