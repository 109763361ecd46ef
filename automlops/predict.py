"""`automlops predict`: a file scored into another, chunk by chunk.

CSV and Parquet are streamed (`predict.chunk_rows` rows at a time), so memory stays bounded whatever the
file's size; JSON (a list of records) is read whole. Each chunk is checked and scored, then appended to a
staging file that replaces the output in one rename at the end: a failure leaves no partial output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd

from automlops.bundle import Bundle
from automlops.errors import InputError, did_you_mean
from automlops.io import atomic_file
from automlops.scoring import predict_frame
from automlops.tables import SINKS, SUFFIXES, open_input


def predict_file(
    bundle: Bundle,
    source: Path,
    target: Path,
    keep: Sequence[str] = (),
    chunk_rows: int = 100_000,
    progress: bool = False,
) -> int:
    """Score `source` into `target` chunk by chunk and return the number of rows. `keep` columns
    (predict.id_columns, --keep) are copied to the output first, in order; `progress` draws a bar on
    stderr when it is a terminal."""
    check_paths(source, target)
    keep = list(dict.fromkeys(keep))
    table = open_input(source, bundle.contract, keep, chunk_rows)
    absent = [name for name in keep if name not in table.columns]
    if absent:
        raise InputError(
            f"--input '{source}': id column(s) {', '.join(absent)} (predict.id_columns or --keep) not in the "
            f"file{did_you_mean(absent[0], table.columns)}; its columns: {', '.join(table.columns[:20])}"
        )
    features = {spec.name for spec in bundle.contract}
    passed = tuple(name for name in keep if name not in features)  # an id that is also a feature is scored too
    rows = 0
    sink = SINKS[SUFFIXES[target.suffix.lower()]]
    with (
        atomic_file(target) as staging,
        closing(sink(staging, table.keep_types)) as output,
        _progress(progress, table.size) as advance,
    ):
        for chunk, done in table.chunks:
            try:
                out = predict_frame(bundle, chunk, keep=passed)
            except InputError as error:
                raise InputError(f"--input '{source}': {str(error).removeprefix('input: ')}") from None
            if len(passed) < len(keep):
                out = pd.concat([chunk[keep], out.drop(columns=list(passed))], axis=1)
            output.write(out)
            rows += len(out)
            advance(done, rows)
        if not rows:
            raise InputError(f"--input '{source}': no rows to predict; it needs a header and at least one row")
    return rows


def check_paths(source: Path, target: Path) -> None:
    if source.suffix.lower() not in SUFFIXES:
        raise InputError(
            f"--input: '{source}' has an unsupported extension; use .csv, .parquet (.pq) or .json (a list of records)"
        )
    if target.suffix.lower() not in SUFFIXES:
        raise InputError(f"--output: '{target}' has an unsupported extension; use .csv, .parquet (.pq) or .json")
    if not source.is_file():
        raise InputError(f"--input: file '{source}' not found")


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr when it is a terminal (not with -q, in CI or when piped); a no-op otherwise."""
    if not (enabled and sys.stderr.isatty() and not os.environ.get("CI")):
        yield lambda done, rows: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("predict"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = bar.add_task("predict", total=total or None, rows="0")
    with bar:
        yield lambda done, rows: bar.update(task, completed=done, rows=f"{rows:,}")
