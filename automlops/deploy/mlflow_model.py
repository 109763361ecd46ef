"""The MLflow pyfunc face of an automlops bundle. MLflow stores the sealed bundle folder as the
model's one artifact; loading verifies it like `automlops serve` does, and every prediction goes
through `predict_frame`, so `mlflow models serve` enforces the same input contract and returns the
same numbers. Imports mlflow: only the mlflow deploy target and MLflow's own loader import this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from automlops.bundle import Bundle, load_bundle
from automlops.errors import InputError
from automlops.scoring import predict_frame
from automlops.signing import NO_KEYS

BUNDLE_ARTIFACT = "bundle"  # the key of the bundle folder in the model's artifacts


class BundleModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Answers with predict_frame's table: `prediction` and, for classifiers, one `proba_<class>`
    column per class (what `automlops predict` writes)."""

    def __init__(self) -> None:
        self.bundle: Bundle | None = None  # loaded in load_context; never pickled with the model

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:  # type: ignore[name-defined]
        # MLflow's loader has no automlops config: sha256 only here; the mlflow target checked the signature before logging
        self.bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]), keys=NO_KEYS)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if self.bundle is None:
            raise MlflowException("the automlops bundle is not loaded; load the model with mlflow.pyfunc.load_model")
        try:
            return predict_frame(self.bundle, pd.DataFrame(model_input))
        except InputError as error:  # a contract violation is the caller's: MLflow answers 400 with our line
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None
