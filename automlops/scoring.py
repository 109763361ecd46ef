"""A bundle's answer for a frame: the input contract enforced, then labels and class probabilities,
with the bundle's decision threshold and positive class, as evaluate measured them. predict, serve,
monitor and the deploy targets all score here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from automlops.bundle import Bundle
from automlops.data.contract import enforce_contract
from automlops.errors import InputError


def predict_frame(
    bundle: Bundle,
    frame: pd.DataFrame,
    probabilities: bool = True,
    keep: tuple[str, ...] = (),
    unknown_categories: str = "model",
) -> pd.DataFrame:
    """Predictions (and class probabilities) per row; `keep` columns (ids, labels) are copied
    through to the output untouched instead of being refused as unexpected."""
    missing = [name for name in keep if name not in frame.columns]
    if missing:
        raise InputError(f"--keep: column(s) {', '.join(missing)} not in the input")
    x = enforce_contract(bundle.without_dropped(frame.drop(columns=list(keep))), bundle.contract, unknown_categories)
    out = frame[list(keep)].copy()
    for name, values in score_rows(bundle, x, probabilities).items():
        out[name] = values.to_numpy()
    return out


def score_rows(bundle: Bundle, x: pd.DataFrame, probabilities: bool) -> pd.DataFrame:
    """The model's answer for rows already typed by enforce_contract: `prediction`, plus one
    `proba_<class>` column per class when asked."""
    labels, proba = score_arrays(bundle, x, probabilities)
    out = pd.DataFrame({"prediction": labels}, index=x.index)
    if proba is not None:
        for i, label in enumerate(bundle.model.classes_):
            out[f"proba_{label}"] = proba[:, i]
    return out


def score_arrays(bundle: Bundle, x: pd.DataFrame, probabilities: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """score_rows as arrays (a server slices one model call's answer between requests): the label of
    each row, and when asked the class probabilities, one column per `model.classes_`. A binary
    bundle with a `decision_threshold` in its manifest predicts its positive class from that
    probability on."""
    from automlops.evaluate.decision import (
        predict_labels,
    )  # lazy: the evaluate package loads scikit-learn, which serving a model need not

    model, task = bundle.model, bundle.manifest.task
    threshold = bundle.manifest.decision_threshold if task == "binary" else None  # evaluate.threshold
    wanted = probabilities or threshold is not None
    proba = model.predict_proba(x) if wanted and task != "regression" and hasattr(model, "predict_proba") else None
    labels = predict_labels(
        model, x, task, threshold, proba, bundle.manifest.positive_class
    )  # what the test metrics measured
    return labels, proba if probabilities else None
