"""Batch and single-request prediction on a bundle, with the bundle's input contract enforced."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from automlops.data.contract import validate_input
from automlops.deploy.bundle import Bundle
from automlops.errors import InputError
from automlops.io import atomic_file

def _read_json(path: Path) -> pd.DataFrame:
    return records_from_json(json.loads(path.read_text()))


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".json": _read_json,
}


def predict_frame(bundle: Bundle, frame: pd.DataFrame, probabilities: bool = True, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Predictions (and class probabilities) per row; `keep` columns (ids, labels) are copied
    through to the output untouched instead of being refused as unexpected. A binary bundle with a
    `decision_threshold` in its manifest predicts its positive class from that probability on."""
    from automlops.evaluate.decision import predict_labels

    missing = [name for name in keep if name not in frame.columns]
    if missing:
        raise InputError(f"--keep: column(s) {', '.join(missing)} not in the input")
    x = validate_input(frame.drop(columns=list(keep)), bundle.contract)
    model, task = bundle.model, bundle.manifest["task"]
    threshold = bundle.manifest.get("decision_threshold") if task == "binary" else None  # evaluate.threshold
    wanted = probabilities or threshold is not None
    proba = model.predict_proba(x) if wanted and task != "regression" and hasattr(model, "predict_proba") else None
    out = frame[list(keep)].copy()
    out["prediction"] = predict_labels(model, x, task, threshold, proba)  # the rule the test metrics measured
    if probabilities and proba is not None:
        for i, label in enumerate(model.classes_):
            out[f"proba_{label}"] = proba[:, i]
    return out


def read_table(path: Path) -> pd.DataFrame:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"--input: '{path}' has an unsupported extension; use .csv, .parquet or .json (a list of records)")
    if not path.is_file():
        raise InputError(f"--input: file '{path}' not found")
    try:
        return reader(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"--input: '{path}' is empty; it needs a header and at least one row") from None
    except InputError as error:
        raise InputError(f"--input: {error}") from None
    except Exception as error:  # parser errors come in many types
        raise InputError(f"--input: cannot read '{path}' ({str(error).splitlines()[0]})") from error


def write_table(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise InputError(f"--output: '{path}' has an unsupported extension; use .csv, .parquet or .json")
    with atomic_file(path) as file:  # the output appears complete or not at all
        if suffix == ".csv":
            frame.to_csv(file, index=False)
        elif suffix == ".json":
            frame.to_json(file, orient="records", indent=2, double_precision=15)
        else:
            frame.to_parquet(file, index=False)


def records_from_json(body: Any) -> pd.DataFrame:
    """Accept a list of records (as input_example.json stores them) or MLflow-style envelopes."""
    if isinstance(body, dict):
        if "dataframe_split" in body and isinstance(body["dataframe_split"], dict):
            split = body["dataframe_split"]
            try:
                return pd.DataFrame(split.get("data"), columns=split.get("columns"))
            except (ValueError, TypeError) as error:
                raise InputError(f"body.dataframe_split: columns and data do not fit together ({error})") from None
        for key in ("dataframe_records", "records", "instances", "inputs"):
            if key in body:
                body = body[key]
                break
    if not isinstance(body, list):
        raise InputError('body: expected a JSON list of records like [{"column": value, ...}] (see input_example.json)')
    if not body:
        raise InputError("body: the list of records is empty; send at least one record")
    bad = [i for i, record in enumerate(body) if not isinstance(record, dict)]
    if bad:
        raise InputError(f"body: record(s) {', '.join(map(str, bad[:5]))} are not JSON objects; send objects of column -> value")
    keys = set(body[0])
    for i, record in enumerate(body):
        if set(record) != keys:
            missing, extra = sorted(keys - set(record)), sorted(set(record) - keys)
            differences = ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"adds {', '.join(extra)}"] if extra else [])
            raise InputError(f"body: record {i} {' and '.join(differences)} compared with record 0; every record needs the same fields")
    try:
        return pd.DataFrame.from_records(body, columns=list(body[0]))
    except OverflowError:
        found = next(((i, k) for i, record in enumerate(body) for k, v in record.items() if _too_large(v)), None)
        where = f"column '{found[1]}' row {found[0]}: " if found else ""
        raise InputError(f"input: {where}number too large for a float; send a value within float range") from None


def _too_large(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max
