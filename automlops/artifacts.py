"""Model formats behind one registry: how a fitted model is written into a folder and read back.
The search stage, evaluation and bundles all go through here, whatever engine made the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automlops.registry import Registry


@dataclass(frozen=True)
class ModelFormat:
    save: Callable[[Any, Path], None]  # write the model into an existing, empty folder
    load: Callable[[Path], Any]  # an object with predict (and predict_proba, classes_ for classifiers)


FORMATS: Registry[ModelFormat] = Registry("model format")


def _save_sklearn(model: Any, folder: Path) -> None:
    import joblib

    joblib.dump(model, folder / "model.joblib")


def _load_sklearn(folder: Path) -> Any:
    import joblib

    return joblib.load(folder / "model.joblib")


def _save_autogluon(model: Any, folder: Path) -> None:
    model.save(folder)


def _load_autogluon(folder: Path) -> Any:
    from automlops.search.autogluon_engine import AutoGluonModel

    return AutoGluonModel.load(folder)


FORMATS.register("sklearn")(ModelFormat(_save_sklearn, _load_sklearn))
FORMATS.register("autogluon")(ModelFormat(_save_autogluon, _load_autogluon))


def save_model(model: Any, model_format: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    FORMATS.get(model_format).save(model, folder)


def load_model(model_format: str, folder: Path) -> Any:
    return FORMATS.get(model_format).load(folder)
