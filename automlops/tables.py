"""Tables in and out: CSV, Parquet and JSON read as training typed its data, and predictions written back.

Every format is typed as training typed its data, so the same rows as CSV, Parquet or JSON give the same
predictions: categorical columns are read as text (a CSV's "007" stays "007", a JSON 7 becomes "7" even
beside nulls), numbers are parsed exactly (CSV floats round-trip, like JSON's), and rows are numbered from
0 across the whole file in errors. `automlops predict`, the server's bodies and monitor's batches read here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from automlops.data.contract import CATEGORICAL, ColumnSpec
from automlops.errors import InputError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


# pandas' default missing-value tokens: model columns read from CSV keep them, as training's CSV reader did
NA_TOKENS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


BOOLEAN_TOKENS = {"true": "True", "TRUE": "True", "false": "False", "FALSE": "False"}  # what pandas parses as booleans


def _read_json(path: Path) -> pd.DataFrame:
    return records_from_json(parse_json(path.read_text()))


def parse_json(text: str | bytes) -> Any:
    """json.loads, except that an integer literal past Python's int-string limit (4,300 digits), which
    json.loads refuses with a ValueError naming no field, is read as the float it overflows to (±inf, as
    1e400 is): the input checks then name its column and row."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:  # the int-string limit; the second parse pays for the hook only on such bodies
        return json.loads(text, parse_int=_long_int)


def _long_int(literal: str) -> int | float:
    try:
        return int(literal)
    except ValueError:
        return float(literal)


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": lambda path: pd.read_csv(path, float_precision="round_trip"),
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".json": _read_json,
}


def read_table(path: Path, flag: str = "--input", contract: list[ColumnSpec] | None = None) -> pd.DataFrame:
    """A whole small file as a frame (`predict_file` streams large ones). With a `contract`, the
    model's columns are read as predict_file reads them (monitor's batches: "007" stays "007");
    without, as pandas reads them (a labels file)."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"{flag}: '{path}' has an unsupported extension; use .csv, .parquet or .json (a list of records)"
        )
    if not path.is_file():
        raise InputError(f"{flag}: file '{path}' not found")
    try:
        return reader(path) if contract is None else _typed_table(path, contract)
    except pd.errors.EmptyDataError:
        raise InputError(f"{flag}: '{path}' is empty; it needs a header and at least one row") from None
    except InputError as error:
        raise InputError(f"{flag}: {error}") from None
    except Exception as error:  # parser errors come in many types
        raise InputError(f"{flag}: cannot read '{path}' ({str(error).splitlines()[0]})") from error


def _typed_table(path: Path, contract: list[ColumnSpec]) -> pd.DataFrame:
    """A whole file, typed as open_input types each chunk."""
    kind = SUFFIXES[path.suffix.lower()]
    if kind == "csv":
        columns = [str(name) for name in pd.read_csv(path, nrows=0).columns]
        return csv_booleans(pd.read_csv(path, **csv_options(contract, columns)), contract)
    if kind == "json":
        return json_frame(
            parse_json(path.read_text(encoding="utf-8")), [spec.name for spec in contract if spec.kind == CATEGORICAL]
        )
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas(integer_object_nulls=True)


@dataclass
class Input:
    """An input file opened for scoring: its columns, and its rows in chunks typed as training typed them."""

    columns: list[str]
    size: int  # progress total: bytes for CSV, rows otherwise
    keep_types: dict[str, Any]  # arrow type per kept column, so that every chunk writes alike to Parquet
    chunks: Iterator[tuple[pd.DataFrame, int]]  # (rows indexed by their number in the whole file, progress so far)


def open_input(path: Path, contract: list[ColumnSpec], keep: Sequence[str], chunk_rows: int) -> Input:
    opener = {"csv": _csv_input, "parquet": _parquet_input, "json": _json_input}[SUFFIXES[path.suffix.lower()]]
    try:
        return opener(path, contract, keep, chunk_rows)
    except pd.errors.EmptyDataError:
        raise InputError(f"--input '{path}': the file is empty; it needs a header and at least one row") from None
    except InputError as error:
        raise InputError(f"--input '{path}': {str(error).removeprefix('body: ').removeprefix('input: ')}") from None
    except Exception as error:  # parser errors come in many types
        raise _unreadable(path, error) from error


def _unreadable(path: Path, error: Exception) -> InputError:
    return InputError(
        f"--input '{path}': cannot read it ({(str(error).splitlines() or [type(error).__name__])[0][:300]})"
    )


def _guarded(path: Path, chunks: Iterator[tuple[pd.DataFrame, int]]) -> Iterator[tuple[pd.DataFrame, int]]:
    """Parse errors found mid-file (chunk k) become one line naming the file (pandas names the line)."""
    try:
        yield from chunks
    except InputError:
        raise
    except Exception as error:
        raise _unreadable(path, error) from error


def csv_options(contract: list[ColumnSpec], columns: Sequence[str], keep: Sequence[str] = ()) -> dict[str, Any]:
    """read_csv arguments that type a CSV as training typed it, and as JSON is typed: categorical columns
    as text (typing digits per chunk would make "007" 7, and 7.0 beside an empty value), floats parsed
    exactly (pandas' default parser is off by one unit in the last place for some values), and kept
    non-model columns verbatim as text (only an empty field is missing)."""
    features = {spec.name for spec in contract}
    text = {spec.name for spec in contract if spec.kind == CATEGORICAL} | {
        name for name in keep if name not in features
    }
    verbatim = {name for name in keep if name not in features}
    return {
        "dtype": dict.fromkeys(sorted(text), str),
        "float_precision": "round_trip",
        "keep_default_na": False,
        "na_values": {name: [""] if name in verbatim else list(NA_TOKENS) for name in columns},
    }


def csv_booleans(frame: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """A CSV read with csv_options, its boolean columns' true/TRUE/false/FALSE spelled True/False:
    training's CSV reader parsed them all as booleans (CSV files and CSV request bodies alike)."""
    for spec in contract:
        if (
            spec.kind == CATEGORICAL
            and spec.categories
            and set(spec.categories) <= {"False", "True"}
            and spec.name in frame.columns
        ):
            column = frame[spec.name]
            frame[spec.name] = column.mask(column.isin(list(BOOLEAN_TOKENS)), column.map(BOOLEAN_TOKENS))
    return frame


def _csv_input(path: Path, contract: list[ColumnSpec], keep: Sequence[str], chunk_rows: int) -> Input:
    import pyarrow as pa

    columns = [str(name) for name in pd.read_csv(path, nrows=0).columns]
    options = csv_options(contract, columns, keep)

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        with path.open("rb") as handle, pd.read_csv(handle, chunksize=chunk_rows, **options) as reader:
            for frame in reader:
                if frame.empty:  # a header without rows: reported once, after the loop
                    continue
                yield (
                    csv_booleans(frame, contract),
                    handle.tell(),
                )  # pandas numbers the rows of chunk k on from chunk k-1

    numeric = {spec.name for spec in contract if spec.kind != CATEGORICAL}
    types = {name: pa.float64() if name in numeric else pa.string() for name in keep}  # as the model reads them
    return Input(columns, path.stat().st_size, types, _guarded(path, chunks()))


def _parquet_input(path: Path, contract: list[ColumnSpec], keep: Sequence[str], chunk_rows: int) -> Input:
    """Streamed by record batch; memory is bounded by chunk_rows and by the file's row groups."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    schema = file.schema_arrow

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        start = 0
        with file:
            for batch in file.iter_batches(batch_size=chunk_rows):
                frame = batch.to_pandas(integer_object_nulls=True)  # ints beside nulls stay ints: category 7, not 7.0
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame, start

    types = {name: schema.field(name).type for name in keep if name in schema.names}
    return Input([str(name) for name in schema.names], file.metadata.num_rows, types, _guarded(path, chunks()))


def _json_input(path: Path, contract: list[ColumnSpec], keep: Sequence[str], chunk_rows: int) -> Input:
    """Read whole (a JSON document cannot be parsed in pieces), then scored in chunks."""
    body = parse_json(path.read_text(encoding="utf-8"))
    as_sent = [spec.name for spec in contract if spec.kind == CATEGORICAL] + list(keep)
    frame = json_frame(body, as_sent)
    types = {name: _arrow(frame[name]).type for name in keep if name in frame.columns}

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        for start in range(0, len(frame), chunk_rows):
            piece = frame.iloc[start : start + chunk_rows]
            yield piece, start + len(piece)

    return Input([str(name) for name in frame.columns], len(frame), types, chunks())


def json_frame(body: Any, as_sent: Sequence[str] = ()) -> pd.DataFrame:
    """records_from_json, except that the `as_sent` columns hold the JSON values as given (object dtype):
    pandas would turn a column of 7 and null into 7.0 and NaN, so a category "7" would become "7.0"."""
    frame = records_from_json(body)
    wanted = [name for name in dict.fromkeys(as_sent) if name in frame.columns]
    if not wanted:
        return frame
    records = body
    if isinstance(body, dict):
        split = body.get("dataframe_split")
        if isinstance(split, dict):
            records = [dict(zip(frame.columns, row)) for row in split.get("data") or []]
        else:
            records = next(body[key] for key in ("dataframe_records", "records", "instances", "inputs") if key in body)
    for name in wanted:
        frame[name] = pd.Series([record.get(name) for record in records], index=frame.index, dtype=object)
    return frame


class _CsvSink:
    """CSV chunks appended under one header."""

    def __init__(self, path: Path, keep_types: dict[str, Any]) -> None:
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.header = True

    def write(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.handle, header=self.header, index=False)
        self.header = False

    def close(self) -> None:
        self.handle.close()


class _JsonSink:
    """One JSON array of records, written a chunk at a time (one record per line)."""

    def __init__(self, path: Path, keep_types: dict[str, Any]) -> None:
        self.handle = path.open("w", encoding="utf-8")
        self.handle.write("[")
        self.separator = "\n"

    def write(self, frame: pd.DataFrame) -> None:
        records = frame.to_json(orient="records", lines=True, double_precision=15).strip("\n")
        self.handle.write(self.separator + records.replace("\n", ",\n"))  # JSON strings escape their newlines
        self.separator = ",\n"

    def close(self) -> None:
        self.handle.write("\n]\n")
        self.handle.close()


class _ParquetSink:
    """One Parquet file whose schema the first chunk fixes (kept columns: the input's types), so a later
    chunk whose column is all empty, or typed otherwise (int here, float there), is cast to it."""

    def __init__(self, path: Path, keep_types: dict[str, Any]) -> None:
        self.path, self.keep_types = path, keep_types
        self.writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            fields = [
                pa.field(str(name), self.keep_types.get(name) or _arrow(frame[name]).type) for name in frame.columns
            ]
            self.writer = pq.ParquetWriter(self.path, pa.schema(fields))
        schema = self.writer.schema
        self.writer.write_table(
            pa.Table.from_arrays([_arrow(frame[field.name], field.type) for field in schema], schema=schema)
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Sink(Protocol):
    def write(self, frame: pd.DataFrame) -> None: ...
    def close(self) -> None: ...


SINKS: dict[str, Callable[[Path, dict[str, Any]], Sink]] = {"csv": _CsvSink, "json": _JsonSink, "parquet": _ParquetSink}


def _arrow(series: pd.Series, kind: Any = None) -> Any:
    """One output column as an arrow array of type `kind` (None: inferred)."""
    import pyarrow as pa

    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python types (JSON ids 7 and "a7"): as text
        array = pa.array(series.map(lambda value: None if _missing(value) else str(value)), type=pa.string())
    if kind is None or array.type == kind:
        return array
    if array.null_count == len(array):
        return pa.nulls(len(array), kind)
    try:
        return array.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(
            f"--output: column '{series.name}' holds {array.type} values here but {kind} in earlier rows; "
            "write .csv or .json, or make the column one type"
        ) from None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


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
        raise InputError(
            f"body: record(s) {', '.join(map(str, bad[:5]))} are not JSON objects; send objects of column -> value"
        )
    keys = set(body[0])
    for i, record in enumerate(body):
        if set(record) != keys:
            missing, extra = sorted(keys - set(record)), sorted(set(record) - keys)
            differences = ([f"lacks {', '.join(missing)}"] if missing else []) + (
                [f"adds {', '.join(extra)}"] if extra else []
            )
            raise InputError(
                f"body: record {i} {' and '.join(differences)} compared with record 0; every record needs the same fields"
            )
    try:
        return pd.DataFrame.from_records(body, columns=list(body[0]))
    except OverflowError:
        found = next(((i, k) for i, record in enumerate(body) for k, v in record.items() if _too_large(v)), None)
        where = f"column '{found[1]}' row {found[0]}: " if found else ""
        raise InputError(f"input: {where}number too large for a float; send a value within float range") from None


def _too_large(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max
