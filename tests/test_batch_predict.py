"""Batch scoring (`automlops predict`) on the real penguins bundle: chunked output equals one-chunk
output, CSV, Parquet and JSON rows type (and fail) the same way, a failure leaves no output, predict.*
comes from conf/ or the schema, and the progress bar shows on a terminal only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import champion, cli, run_env

from automlops.bundle import Bundle, load_bundle
from automlops.data.contract import enforce_contract
from automlops.errors import InputError
from automlops.predict import predict_file
from automlops.tables import open_input

pytestmark = pytest.mark.slow  # needs the packaged penguins bundle (one real run per session)

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
CHUNK = 7  # rows per chunk in the multi-chunk runs: 351 rows make 51 chunks, the last one partial


@pytest.fixture(scope="module")
def bundle_dir(penguins_run: tuple[Path, Any]) -> Path:
    root, _ = penguins_run
    return champion(root, "penguins")


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> Bundle:
    return load_bundle(bundle_dir)


def penguin_rows(root: Path) -> pd.DataFrame:
    """The raw penguins (missing values included) with a text id, plus rows that per-chunk typing gets
    wrong: a chunk (rows 7-13) whose `sex` is all empty, and one (rows 14-20) whose categories are
    all digits beside an empty value (pandas alone would read 1 and 2 as 1.0 and 2.0)."""
    raw = pd.read_csv(root / "data" / "raw" / "penguins.csv").drop(columns="species")
    raw["bill_depth_mm"] *= 1 + 1e-7  # 17 significant digits, which pandas' default CSV parser often misreads
    raw.loc[7:13, "sex"] = np.nan
    odd = raw.iloc[:7].copy()
    odd["island"] = ["7", "8", "007", "7", "8", "7", "8"]
    odd["sex"] = ["1", None, "2", "1", "2", None, "1"]
    rows = pd.concat([raw.iloc[:14], odd, raw.iloc[14:]], ignore_index=True)
    rows.insert(0, "id", [f"{i:04d}" for i in range(len(rows))])
    rows.loc[3, "id"] = "NA"  # an id that CSV readers take for missing by default
    return rows[["id", *FEATURES, "year"]]


def write_json(rows: pd.DataFrame, path: Path, numbers_for_digits: bool = True) -> None:
    """A list of records as a JSON client sends it: exact floats, null for missing, and (by default)
    digit categories as JSON numbers."""
    records = []
    for record in rows.to_dict(orient="records"):
        out = {}
        for name, value in record.items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                value = None
            elif (
                numbers_for_digits
                and name in ("island", "sex")
                and str(value).isdigit()
                and not str(value).startswith("0")
            ):
                value = int(value)
            out[name] = value
        records.append(out)
    path.write_text(json.dumps(records))


def write_input(rows: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        rows.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        rows.to_parquet(path, index=False)
    else:
        write_json(rows, path)
    return path


@pytest.fixture(scope="module")
def rows(penguins_run: tuple[Path, Any]) -> pd.DataFrame:
    root, _ = penguins_run
    return penguin_rows(root)


def read_output(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"id": str}, keep_default_na=False, float_precision="round_trip")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.DataFrame.from_records(json.loads(path.read_text()))


def assert_same_text_but_the_last_bits_of_floats(left: Path, right: Path) -> None:
    """The same rows, columns, order and text, except that probabilities may differ in their last bits:
    BLAS may sum in another order for another number of rows, and a clean-clone run once saw it do so."""
    if left.suffix == ".csv":
        a, b = (pd.read_csv(p, dtype=str, keep_default_na=False).to_dict("records") for p in (left, right))
    else:
        a, b = json.loads(left.read_text()), json.loads(right.read_text())
    assert [list(r) for r in a] == [list(r) for r in b]  # the same columns, in the same order, on every row
    probas = [k for k in a[0] if k.startswith("proba_")]
    assert [{k: v for k, v in r.items() if k not in probas} for r in a] == [
        {k: v for k, v in r.items() if k not in probas} for r in b
    ]
    np.testing.assert_allclose(
        [[float(r[k]) for k in probas] for r in a], [[float(r[k]) for k in probas] for r in b], rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_chunked_output_equals_one_chunk_output(
    bundle: Bundle, rows: pd.DataFrame, suffix: str, tmp_path: Path
) -> None:
    note = [None] * len(rows)
    note[100:103] = ["checked", "re-checked", "checked"]  # a kept column that is empty in all chunks but one
    source = write_input(rows.assign(note=note), tmp_path / f"rows{suffix}")
    chunked, whole = tmp_path / f"chunked{suffix}", tmp_path / f"whole{suffix}"
    keep = ["id", "year", "note"]
    assert predict_file(bundle, source, chunked, keep, chunk_rows=CHUNK) == len(rows)
    assert predict_file(bundle, source, whole, keep, chunk_rows=100_000) == len(rows)

    if suffix == ".parquet":  # one schema for every chunk, although `sex` is all empty in some
        assert pq.read_schema(chunked) == pq.read_schema(whole)
        assert pq.ParquetFile(chunked).metadata.num_row_groups == -(-len(rows) // CHUNK)
    else:
        assert_same_text_but_the_last_bits_of_floats(chunked, whole)
    out = read_output(chunked)
    pd.testing.assert_frame_equal(out, read_output(whole))
    # the id columns first, in the order asked, row for row as in the input
    assert list(out.columns) == [*keep, "prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    assert out["id"].tolist() == rows["id"].tolist()  # "0007" and "NA" kept as they were
    assert out["year"].astype(int).tolist() == rows["year"].tolist()
    assert out["note"].iloc[100:103].tolist() == ["checked", "re-checked", "checked"] and not any(
        out["note"].iloc[:100]
    )
    np.testing.assert_allclose(out.filter(like="proba_").sum(axis=1), 1.0)
    assert not list(tmp_path.glob(".*.tmp")), "no staging file is left behind"


def test_csv_parquet_and_json_give_identical_predictions(bundle: Bundle, rows: pd.DataFrame, tmp_path: Path) -> None:
    outputs = {}
    for suffix in (".csv", ".parquet", ".json"):
        source = write_input(rows.drop(columns="year"), tmp_path / f"rows{suffix}")
        predict_file(bundle, source, tmp_path / f"out_{suffix[1:]}.parquet", ["id"], chunk_rows=CHUNK)
        outputs[suffix] = pd.read_parquet(tmp_path / f"out_{suffix[1:]}.parquet")
    for suffix in (".parquet", ".json"):
        pd.testing.assert_frame_equal(outputs[suffix], outputs[".csv"], obj=suffix)


def typed(bundle: Bundle, path: Path) -> pd.DataFrame:
    """What the model is given, chunk by chunk, for a file."""
    table = open_input(path, bundle.contract, ["id", "year"], CHUNK)
    return pd.concat(
        [enforce_contract(chunk.drop(columns=["id", "year"]), bundle.contract) for chunk, _ in table.chunks]
    )


def test_every_format_types_the_model_input_the_same(bundle: Bundle, rows: pd.DataFrame, tmp_path: Path) -> None:
    frames = {
        suffix: typed(bundle, write_input(rows, tmp_path / f"rows{suffix}")) for suffix in (".csv", ".parquet", ".json")
    }
    write_json(rows, tmp_path / "strings.json", numbers_for_digits=False)
    frames["strings.json"] = typed(bundle, tmp_path / "strings.json")
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, frames[".csv"], obj=name)
    csv = frames[".csv"]
    assert csv.loc[14:20, "island"].tolist() == ["7", "8", "007", "7", "8", "7", "8"]  # not 7, 8, 7 (int) or 7.0
    assert csv.loc[14, "sex"] == "1" and np.isnan(csv.loc[15, "sex"]) and csv.loc[16, "sex"] == "2"  # not "1.0"
    assert csv.loc[7:13, "sex"].isna().all()
    # CSV floats are parsed exactly, as JSON's are: the same doubles as the Parquet file holds
    np.testing.assert_array_equal(csv["bill_depth_mm"].to_numpy(), frames[".parquet"]["bill_depth_mm"].to_numpy())


def bad_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A number that is not one at row 200 and an empty non-nullable island at row 201 (both in chunk 28 of 7 rows)."""
    bad = rows.copy()
    bad["bill_length_mm"] = [
        None if pd.isna(v) else repr(float(v)) for v in bad["bill_length_mm"]
    ]  # text in every format
    bad.loc[200, "bill_length_mm"] = "12,5"
    bad.loc[201, "island"] = None
    return bad


def test_a_bad_value_in_a_late_chunk_names_file_column_and_row_alike_in_every_format(
    bundle: Bundle, rows: pd.DataFrame, tmp_path: Path
) -> None:
    messages = {}
    for suffix in (".csv", ".parquet", ".json"):
        source = write_input(bad_rows(rows), tmp_path / f"bad{suffix}")
        target = tmp_path / f"out{suffix}"
        with pytest.raises(InputError) as caught:
            predict_file(bundle, source, target, ["id", "year"], chunk_rows=CHUNK)
        message = str(caught.value)
        assert message.startswith(f"--input '{source}': ")
        messages[suffix] = message.removeprefix(f"--input '{source}': ")
        assert not target.exists() and not list(tmp_path.glob(".*.tmp"))
    assert messages[".csv"] == messages[".parquet"] == messages[".json"]
    assert set(messages[".csv"].split("; ")) == {
        "column 'island' must not be empty (row 201)",
        "column 'bill_length_mm' row 200: expected a number, got '12,5'",
    }


def test_cli_failure_is_one_line_and_leaves_the_previous_output(
    bundle_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    source = write_input(bad_rows(rows), tmp_path / "bad.csv")
    target = tmp_path / "scored.csv"
    target.write_text("previous output\n")
    done = cli(
        "predict",
        "--model",
        str(bundle_dir),
        "--input",
        str(source),
        "--output",
        str(target),
        "--keep",
        "id",
        "year",
        "predict.chunk_rows=50",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    message = done.stderr.strip()
    assert "\n" not in message and "Traceback" not in done.stderr, done.stderr
    assert message.startswith(f"error: --input '{source}': ") and "column 'bill_length_mm' row 200" in message
    assert target.read_text() == "previous output\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.csv",
        "scored.csv",
    ]


@pytest.mark.parametrize(
    ("column", "words"), [("body_mass_g", "expected a finite number"), ("island", "expected a category")]
)
def test_cli_names_the_column_of_an_integer_past_the_int_string_limit(
    bundle_dir: Path, column: str, words: str, tmp_path: Path
) -> None:
    """json.loads refuses an integer of more than 4,300 digits with a ValueError naming no field."""
    record = json.loads((bundle_dir / "input_example.json").read_text())[0]
    source = tmp_path / "huge.json"
    source.write_text(
        json.dumps([record, {**record, column: 0}]).replace(f'"{column}": 0', f'"{column}": 1{"0" * 5000}')
    )
    done = cli(
        "predict",
        "--model",
        str(bundle_dir),
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out.csv"),
        cwd=tmp_path,
    )
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"error: --input '{source}': column '{column}' row 1: {words}" in done.stderr, done.stderr
    assert "digits" not in done.stderr.split(words)[0] and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--keep", "idd"], "id column(s) idd (predict.id_columns or --keep) not in the file (did you mean 'id'?)"),
        ([], "unexpected column(s): id, year"),
        (["predict.chunk_rows=0"], "predict.chunk_rows: must be >= 1"),
        (["data.name=iris"], "override 'data.name=iris': outside a project"),
        (["predict.chunk_row=5"], "config key 'predict.chunk_row'"),
        (
            ["predict.chunk_row=5"],
            "(did you mean 'predict.chunk_rows'?) Fix the predict.* override on the command line.",
        ),
    ],
)
def test_cli_errors_name_the_key_or_column(
    bundle_dir: Path, rows: pd.DataFrame, tmp_path: Path, args: list[str], expected: str
) -> None:
    source = write_input(rows, tmp_path / "rows.csv")
    done = cli(
        "predict",
        "--model",
        str(bundle_dir),
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out.csv"),
        *args,
        cwd=tmp_path,
    )
    assert done.returncode in (1, 2) and expected in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.csv").exists()


def test_id_columns_come_from_the_project_conf_and_overrides(
    penguins_run: tuple[Path, Any], rows: pd.DataFrame, tmp_path: Path
) -> None:
    root, _ = penguins_run
    source = write_input(rows, tmp_path / "rows.parquet")
    target = tmp_path / "scored.csv"
    # a trailing override after --keep COL ... still counts as an override
    done = cli(
        "predict",
        "--model",
        "models/penguins@champion",
        "--input",
        str(source),
        "--output",
        str(target),
        "predict.id_columns=[id]",
        "--keep",
        "year",
        "predict.chunk_rows=100",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"wrote {len(rows)} prediction(s) to {target}"
    assert done.stderr == ""  # no bar: stderr is not a terminal
    out = read_output(target)
    assert list(out.columns[:3]) == ["id", "year", "prediction"] and out["id"].tolist() == rows["id"].tolist()


def test_an_id_that_is_also_a_feature_is_kept_and_scored(bundle: Bundle, rows: pd.DataFrame, tmp_path: Path) -> None:
    source = write_input(rows.drop(columns=["id", "year"]), tmp_path / "rows.csv")
    predict_file(bundle, source, tmp_path / "with.csv", ["island"], chunk_rows=CHUNK)
    predict_file(bundle, source, tmp_path / "without.csv", [], chunk_rows=CHUNK)
    with_island, without = read_output(tmp_path / "with.csv"), read_output(tmp_path / "without.csv")
    assert with_island["island"].tolist() == rows["island"].tolist()
    pd.testing.assert_frame_equal(with_island.drop(columns="island"), without)


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """The CLI with stderr on a pseudo-terminal (as in an interactive shell); returns (code, stdout, terminal text)."""
    env = run_env({"TERM": "xterm", "COLUMNS": "120"})
    env.pop("CI", None)
    master, slave = os.openpty()
    captured: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal closed with the process
                return
            if not data:
                return
            captured.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "automlops", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=300,
        )
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return done.returncode, done.stdout, b"".join(captured).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(bundle_dir: Path, rows: pd.DataFrame, tmp_path: Path) -> None:
    source = write_input(rows, tmp_path / "rows.csv")
    command = [
        "predict",
        "--model",
        str(bundle_dir),
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out.csv"),
        "--keep",
        "id",
        "year",
        "predict.chunk_rows=50",
    ]
    code, stdout, terminal = run_in_terminal(command, tmp_path)
    assert code == 0, terminal
    assert "predict" in terminal and f"{len(rows)} rows" in terminal and "100%" in terminal, terminal
    assert stdout.strip() == f"wrote {len(rows)} prediction(s) to {tmp_path / 'out.csv'}"
    code, stdout, terminal = run_in_terminal(["-q", *command], tmp_path)
    assert code == 0 and terminal.strip() == "", terminal
    assert stdout.strip() == f"wrote {len(rows)} prediction(s) to {tmp_path / 'out.csv'}"
