"""Request bodies to rows: JSON (records, columns, MLflow envelopes) and CSV, typed by the bundle's
contract like files given to `automlops predict` (JSON is also held to its own types: no "42" for a
number), and read with a size limit. Small JSON bodies that fit the contract are typed in plain
Python; anything else becomes a DataFrame for enforce_contract."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from automlops.data.contract import CATEGORICAL, MAX_PROBLEMS_SHOWN, NUMERIC, ColumnSpec, TypedRows, typed_records
from automlops.errors import InputError
from automlops.tables import csv_booleans, csv_options, parse_json, records_from_json

CSV_TYPES = ("text/csv", "application/csv")
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")  # /invocations: exactly one of these
ENVELOPES = ("dataframe_split", "dataframe_records", "records", "instances", "inputs")  # /predict: the first one found
QUICK_ROWS = 1000  # JSON bodies up to this many records are typed in plain Python (pandas only catches up at ~5,000)


class BodyTooLarge(Exception):
    pass


class TooManyRows(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


async def read_limited(request: Any, limit: int) -> bytes:
    """The body, refused (BodyTooLarge) as soon as it exceeds `limit` bytes, declared or streamed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Rows:
    """A request body's rows: `typed` already (small JSON bodies whose every value fits the contract,
    see contract.typed_records), else `frame` as sent, for enforce_contract to check and name each
    problem. `records` are the JSON records as sent (the prediction log's inputs) when typed."""

    count: int
    typed: TypedRows | None = None
    frame: pd.DataFrame | None = None
    records: list[dict[str, Any]] | None = None


def read_rows(
    body: bytes, content_type: str, contract: list[ColumnSpec], strict_envelope: bool = False, quick: bool = True
) -> Rows:
    """strict_envelope (MLflow's /invocations): JSON must be an object holding exactly one of MLflow's
    keys. quick: type up to QUICK_ROWS JSON records in plain Python (only right when unseen categories
    are left to the model)."""
    if not body.strip():
        raise InputError(
            'body: empty; send a JSON list of records like [{"column": value, ...}] or CSV with a header row'
        )
    if content_type.split(";")[0].strip().lower() in CSV_TYPES:
        frame = _csv(body, contract)
        return Rows(len(frame), frame=frame)
    try:
        parsed = parse_json(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(
            f"body: not valid JSON ({type(error).__name__} at char {getattr(error, 'pos', '?')}); "
            "send a list of records, or CSV with Content-Type: text/csv"
        ) from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise InputError("body: JSON nested too deeply; send a list of flat records") from None
    records = _records(parsed, strict_envelope)
    if not isinstance(records, list):  # records_from_json would also unwrap an envelope nested in another
        raise InputError('body: expected a JSON list of records like [{"column": value, ...}] (see input_example.json)')
    typed = typed_records(records, contract) if quick and len(records) <= QUICK_ROWS else None
    if typed is not None:
        return Rows(typed.count, typed=typed, records=records)
    frame = records_from_json(records)  # checks that these are records, all with the same fields
    for spec in contract:  # categories as sent: pandas would make [7, null] 7.0 and NaN, and "7.0" is another category
        if spec.kind == CATEGORICAL and spec.name in frame.columns and frame[spec.name].dtype != object:
            frame[spec.name] = pd.Series([record[spec.name] for record in records], index=frame.index, dtype=object)
    _check_json_types(frame, contract)
    return Rows(len(frame), frame=frame)


def _records(parsed: Any, strict_envelope: bool) -> Any:
    """The list of records a JSON body holds, or what stands in its place (refused by the caller)."""
    keys = (
        [k for k in (MLFLOW_KEYS if strict_envelope else ENVELOPES) if k in parsed] if isinstance(parsed, dict) else []
    )
    if strict_envelope and len(keys) != 1:
        got = (
            (("keys " + ", ".join(sorted(str(k)[:40] for k in parsed)[:5])) if parsed else "an empty object")
            if isinstance(parsed, dict)
            else f"a JSON {_json_kind(parsed)}"
        )
        raise InputError(
            f"body: expected a JSON object with exactly one of {', '.join(MLFLOW_KEYS)} (MLflow's scoring "
            f"protocol), or CSV with Content-Type: text/csv; got {got}"
        )
    if keys and keys[0] == "dataframe_split":
        return _split(parsed["dataframe_split"])
    if keys and keys[0] in ("instances", "inputs") and isinstance(parsed[keys[0]], dict):
        return _columns(parsed[keys[0]], f"body.{keys[0]}")
    if keys:
        return parsed[keys[0]]
    if isinstance(parsed, dict) and parsed and all(isinstance(v, list) for v in parsed.values()):
        return _columns(parsed, "body")
    return parsed


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object"}.get(type(value), "number")


def _split(split: Any) -> list[dict[str, Any]]:
    """MLflow's {"columns": [...], "data": [[...], ...]} as records, its shape checked first (pandas'
    own errors name no row and can fail on odd column labels)."""
    where = "body.dataframe_split"
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not isinstance(split.get("data"), list)
    ):
        raise InputError(f'{where}: expected {{"columns": ["column", ...], "data": [[value, ...], ...]}}')
    columns = split["columns"]
    if not all(isinstance(name, str) for name in columns):
        bad = next(i for i, name in enumerate(columns) if not isinstance(name, str))
        raise InputError(f"{where}.columns: item {bad} is not a string; columns are named by strings")
    counts: Counter[str] = Counter(columns)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise InputError(
            f"{where}.columns: column(s) {', '.join(repeated[:5])} given more than once; send each column once"
        )
    rows = [i for i, row in enumerate(split["data"]) if not isinstance(row, list) or len(row) != len(columns)]
    if rows:
        raise InputError(
            f"{where}.data: row(s) {', '.join(map(str, rows[:5]))} are not lists of {len(columns)} value(s), "
            "one per column"
        )
    return [dict(zip(columns, row)) for row in split["data"]]


def _columns(columns: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Column-oriented JSON, {"column": [value, ...], ...} with every list as long as the others, as records."""
    lengths = {name: len(values) for name, values in columns.items() if isinstance(values, list)}
    if len(lengths) != len(columns) or len(set(lengths.values())) > 1:
        raise InputError(
            f"{where}: column-oriented input needs a list per column, all of one length; "
            f"got lengths {dict(list(lengths.items())[:5])}"
        )
    if not lengths or not next(iter(lengths.values())):
        raise InputError(f"{where}: no rows; send at least one value per column")
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def _check_json_types(frame: pd.DataFrame, contract: list[ColumnSpec]) -> None:
    """JSON carries types, so hold it to them: a numeric column takes numbers or null (not "42"), and
    no column takes an array or an object. Missing columns are left to enforce_contract to name, and so are
    extra ones (ignored when prepare dropped them, else refused)."""
    kinds = {spec.name: spec.kind for spec in contract}
    if not set(kinds) <= set(frame.columns):
        return
    problems: list[str] = []
    for name in kinds:
        if frame[name].dtype != object:  # numbers, booleans or all null: nothing JSON-specific to refuse
            continue
        wrong = (list, dict, str) if kinds[name] == NUMERIC else (list, dict)
        values = frame[name].tolist()
        for i in [i for i, value in enumerate(values) if type(value) in wrong][
            : MAX_PROBLEMS_SHOWN + 1
        ]:  # one pass at C speed
            value, row = values[i], frame.index[i]
            problems.append(
                f"column '{name}' row {row}: expected a number, got a string ({value[:40]!r})"
                if isinstance(value, str)
                else f"column '{name}' row {row}: expected a single value, got a JSON {_json_kind(value)}"
            )
    if problems:
        more = "; and more problem(s)" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise InputError("input: " + "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + more)


def _csv(body: bytes, contract: list[ColumnSpec]) -> pd.DataFrame:
    try:  # typed exactly as `automlops predict` types a CSV file
        return csv_booleans(
            pd.read_csv(io.BytesIO(body), **csv_options(contract, [spec.name for spec in contract])), contract
        )
    except pd.errors.EmptyDataError:
        raise InputError("body: the CSV is empty; send a header row and at least one row") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"body: not valid CSV ({str(error).splitlines()[0][:200]})") from None
