"""Reading what is monitored: a data file, or a folder of files and prediction logs, and late labels."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from automlops.data.contract import CATEGORICAL, ColumnSpec
from automlops.errors import InputError
from automlops.monitor.report import LOGGED_ANSWERS
from automlops.tables import SUFFIXES, json_frame, read_table

LOG_SUFFIX = ".jsonl"  # the server's prediction log (serve.prediction_log)


def read_batch(path: Path, flag: str = "--data", contract: list[ColumnSpec] | None = None) -> pd.DataFrame | None:
    """A file as a frame; a folder as all its data files and prediction logs together (a log's
    answers go into the LOGGED_ANSWERS column). None: a folder with nothing in it yet. With the
    model's `contract`, its columns are read as `automlops predict` reads them ("007" stays "007")."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (*SUFFIXES, LOG_SUFFIX))
        if not files:
            return None
        return pd.concat([_read_file(p, flag, contract) for p in files], ignore_index=True)
    if not path.exists():
        raise InputError(
            f"{flag}: '{path}' not found; give a .csv, .parquet, .json or {LOG_SUFFIX} file, or a folder of them"
        )
    return _read_file(path, flag, contract)


def _read_file(path: Path, flag: str, contract: list[ColumnSpec] | None) -> pd.DataFrame:
    return read_log(path, flag, contract) if path.suffix.lower() == LOG_SUFFIX else read_table(path, flag, contract)


def read_log(path: Path, flag: str = "--data", contract: list[ColumnSpec] | None = None) -> pd.DataFrame:
    """One prediction-log file: each entry's input rows, with the answer the server gave each."""
    categorical = [spec.name for spec in contract or [] if spec.kind == CATEGORICAL]
    frames = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            rows = json_frame(entry["inputs"], categorical)
            rows[LOGGED_ANSWERS] = entry["outputs"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, InputError) as error:
            raise InputError(
                f"{flag}: {path} line {number} is not a prediction-log entry ({error}); "
                "monitor only files written by serve.prediction_log"
            ) from None
        frames.append(rows)
    if not frames:
        raise InputError(f"{flag}: {path} holds no log entries")
    return pd.concat(frames, ignore_index=True)


def join_labels(batch: pd.DataFrame, labels_path: Path, id_column: str | None, target: str) -> pd.DataFrame:
    """Labels that arrived after the predictions, joined to the batch by row id (a row without a
    label stays unlabelled and is left out of the performance check)."""
    if not id_column:
        raise InputError("--labels: set monitor.id_column to the row id the batch and the labels file share")
    labels = read_table(labels_path, "--labels")
    for frame, name in ((batch, "the batch"), (labels, str(labels_path))):
        if id_column not in frame.columns:
            raise InputError(f"monitor.id_column: '{id_column}' is not a column of {name}; set it to the shared row id")
    if target not in labels.columns:
        raise InputError(f"--labels: {labels_path} has no '{target}' column (the model's target); add it")
    if labels[id_column].duplicated().any():
        raise InputError(f"--labels: {labels_path} repeats ids in '{id_column}'; give each row's label once")
    return batch.drop(columns=[target], errors="ignore").merge(labels[[id_column, target]], on=id_column, how="left")
