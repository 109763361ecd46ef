"""Columns a model should not learn from (issue 13, section 5): id-like, date, constant and all-missing
columns are dropped with a warning, inf is missing, mostly-numeric text is numeric, a repeated header is
refused, and a bad split column or an impossible task fails in prepare, before any search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import champion, cli, new_project
from test_serve import running_server

from automlops.config.schema import DataConfig, FeaturesConfig, SplitConfig
from automlops.data.contract import NUMERIC, enforce_contract
from automlops.data.prepare import prepare
from automlops.errors import DataError
from automlops.io import write_json_atomic
from automlops.records import PreparedMeta

ROWS = 300


def traps(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A table with every trap of section 5 but the repeated header, and a target the clean columns predict."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, n).round(2)  # continuous: nearly unique, and the signal
    color = rng.choice(["red", "green", "blue"], n)
    age = rng.integers(18, 90, n)
    ratio = rng.normal(size=n)
    ratio[:7] = np.inf
    ratio[7:10] = -np.inf
    age_text = age.astype(str).astype(object)
    age_text[rng.choice(n, n // 5, replace=False)] = rng.choice(["?", "unknown", "-"], n // 5)  # 20 % stray text
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in rng.permutation(n)],  # unique text
            "row_number": rng.permutation(n) + 1,  # integers numbering the rows
            "signup": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),  # dates, as CSV gives them
            "income": income,
            "visits": rng.integers(0, 10**7, n),  # unique-ish integers over a wide range: a real count, kept
            "age": age_text,
            "ratio": ratio,
            "plan": ["basic"] * n,  # constant
            "notes": [np.nan] * n,  # all missing
            "color": color,
            "y": np.where((income > 50_000) ^ (color == "red"), "yes", "no"),
        }
    )


def write_traps(folder: Path) -> Path:
    path = folder / "traps.csv"
    traps().to_csv(path, index=False)
    return path


def csv_config(path: Path, target: str = "y", **kwargs) -> DataConfig:
    return DataConfig(source="csv", path=str(path), target=target, **kwargs)


@pytest.fixture(scope="module")
def traps_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_traps(tmp_path_factory.mktemp("traps"))


@pytest.fixture(scope="module")
def prepared_traps(traps_csv: Path):
    return prepare(csv_config(traps_csv), seed=0)


def dropped(meta: PreparedMeta) -> dict[str, str]:
    return {item["column"]: item["reason"] for item in meta.dropped_columns}


def test_id_like_columns_are_dropped_with_a_warning_but_continuous_columns_are_kept(prepared_traps) -> None:
    assert not {"customer_id", "row_number"} & set(prepared_traps.meta.features)
    reasons = dropped(prepared_traps.meta)
    assert reasons["customer_id"].startswith(f"id-like ({ROWS} distinct values in {ROWS} rows)")
    assert reasons["row_number"].startswith("id-like")
    assert {"income", "visits", "color"} <= set(prepared_traps.meta.features)  # nearly unique, but not ids
    assert any("dropping column 'customer_id'" in line for line in prepared_traps.meta.data_warnings)


def test_id_like_columns_are_kept_when_included_or_when_told(traps_csv: Path) -> None:
    included = prepare(csv_config(traps_csv, features=FeaturesConfig(include=["customer_id", "income"])), seed=0)
    assert included.meta.features == ["customer_id", "income"] and included.meta.dropped_columns == []
    kept = prepare(csv_config(traps_csv, features=FeaturesConfig(drop_id_like=False)), seed=0)
    assert {"customer_id", "row_number"} <= set(kept.meta.features)


def test_a_small_table_has_no_id_like_columns(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    pd.DataFrame({"x": range(40), "name": [f"n{i}" for i in range(40)], "y": ["a", "b"] * 20}).to_csv(path, index=False)
    assert prepare(csv_config(path), seed=0).meta.dropped_columns == []


def test_date_text_columns_are_dropped_with_a_warning(prepared_traps) -> None:
    assert "signup" not in prepared_traps.meta.features
    assert dropped(prepared_traps.meta)["signup"].startswith("dates are not features yet")
    assert "signup" not in [spec["name"] for spec in prepared_traps.meta.contract]


def test_constant_and_all_missing_columns_are_dropped(prepared_traps) -> None:
    assert not {"plan", "notes"} & set(prepared_traps.meta.features)
    reasons = dropped(prepared_traps.meta)
    assert reasons["plan"] == "constant (every value is 'basic')"
    assert reasons["notes"] == "all values are missing"
    assert set(reasons) == {"customer_id", "row_number", "signup", "plan", "notes"}


def test_infinite_values_are_missing_with_counts_and_the_contract_is_finite(prepared_traps) -> None:
    spec = next(spec for spec in prepared_traps.meta.contract if spec["name"] == "ratio")
    assert math.isfinite(spec["min"]) and math.isfinite(spec["max"]) and spec["nullable"]
    assert "data: column 'ratio': 10 infinite value(s) (inf/-inf) read as missing" in prepared_traps.meta.data_warnings
    frames = pd.concat([prepared_traps.train, prepared_traps.valid, prepared_traps.test])
    assert not np.isinf(frames["ratio"].to_numpy(dtype=float)).any() and frames["ratio"].isna().sum() == 10


def test_mostly_numeric_text_is_numeric_with_the_stray_text_missing(prepared_traps) -> None:
    spec = next(spec for spec in prepared_traps.meta.contract if spec["name"] == "age")
    assert spec["kind"] == NUMERIC and spec["missing_values"] == ["-", "?", "unknown"]
    warning = next(line for line in prepared_traps.meta.data_warnings if "'age'" in line)
    assert f"{ROWS // 5} of {ROWS} values are not numbers" in warning and "read as numeric" in warning
    assert prepared_traps.train["age"].dtype == float


def test_predict_reads_the_same_stray_text_as_missing(prepared_traps) -> None:
    from automlops.data.contract import contract_from_dicts

    contract = contract_from_dicts(prepared_traps.meta.contract)
    rows = pd.DataFrame([{spec.name: prepared_traps.test[spec.name].iloc[0] for spec in contract}] * 2)
    rows["age"] = ["?", "41"]
    typed = enforce_contract(rows.astype({"age": object}), contract)
    assert np.isnan(typed["age"].iloc[0]) and typed["age"].iloc[1] == 41.0


def test_mostly_text_stays_categorical_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    values = [str(i) for i in range(30)] + ["low", "high"] * 35
    pd.DataFrame({"level": values, "x": np.arange(100) % 7, "y": ["a", "b"] * 50}).to_csv(path, index=False)
    prepared = prepare(csv_config(path), seed=0)
    spec = next(spec for spec in prepared.meta.contract if spec["name"] == "level")
    assert spec["kind"] == "categorical"
    assert (
        "column 'level': 70 of 100 values are not numbers ('high', 'low'); kept as categorical"
        in prepared.meta.data_warnings[0]
    )


def test_a_repeated_csv_header_is_refused_naming_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("x,y,x\n1,a,2\n3,b,4\n")
    with pytest.raises(
        DataError, match=r"data: csv file .*twice\.csv names column\(s\) 'x' more than once in its header"
    ):
        prepare(csv_config(path), seed=0)


@pytest.mark.parametrize("key", ["time_column", "group_column"])
def test_a_missing_split_column_is_named_with_a_suggestion(traps_csv: Path, key: str) -> None:
    split = SplitConfig(strategy=key.removesuffix("_column"), **{key: "signpu"})
    with pytest.raises(
        DataError, match=rf"data\.split\.{key}: column 'signpu' is not in csv file .*\(did you mean 'signup'\?\)"
    ):
        prepare(csv_config(traps_csv, split=split), seed=0)


def test_multiclass_on_a_two_class_target_fails_in_prepare(traps_csv: Path) -> None:
    with pytest.raises(
        DataError, match=r"data\.task: multiclass needs 3 or more classes, but 'y' has 2; set data\.task=binary"
    ):
        prepare(csv_config(traps_csv, task="multiclass"), seed=0)


def test_regression_on_a_boolean_target_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flags.parquet"
    pd.DataFrame({"x": np.arange(40.0), "flag": [True, False] * 20}).to_parquet(path)
    with pytest.raises(DataError, match=r"data\.task: regression needs a numeric target, but 'flag' holds booleans"):
        prepare(DataConfig(source="parquet", path=str(path), target="flag", task="regression"), seed=0)


def test_the_model_card_lists_the_dropped_columns(tmp_path: Path) -> None:
    import copy

    from test_model_card import MANIFEST, write

    manifest = copy.deepcopy(MANIFEST)
    manifest["dropped_columns"] = [{"column": "customer_id", "reason": "id-like (300 distinct values in 300 rows)"}]
    markdown, html = write(tmp_path, manifest=manifest)
    assert "| customer_id | id-like (300 distinct values in 300 rows) |" in markdown and "customer_id" in html
    assert "dropped by prepare" not in write(tmp_path, manifest=MANIFEST)[0]  # none dropped: no table


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_every_json_written_is_strict(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "x.json", {"a": [1.0, float("nan"), float("inf")], "b": {"c": -float("inf")}})
    assert strict_json((tmp_path / "x.json").read_text()) == {"a": [1.0, None, None], "b": {"c": None}}


@pytest.mark.slow
def test_a_run_on_a_table_with_every_trap_succeeds_and_predicts_on_the_same_csv(tmp_path: Path) -> None:
    root = new_project(tmp_path / "project")
    data = write_traps(root / "data")
    base = ["data.source=csv", f"data.path={data}", "data.target=y", "data.task=auto", "data.name=null"]
    late = cli("run", *base, "data.split.strategy=time", "data.split.time_column=signpu", cwd=root)
    errors = [line for line in late.stderr.splitlines() if line.strip()]
    assert late.returncode != 0 and "Traceback" not in late.stderr and len(errors) == 1, late.stderr
    assert (
        errors[0].startswith("error: data.split.time_column: column 'signpu'") and "did you mean 'signup'" in errors[0]
    )
    wrong_task = cli("run", *base, "data.task=multiclass", cwd=root)
    assert wrong_task.returncode != 0 and "Traceback" not in wrong_task.stderr
    assert "error: data.task: multiclass needs 3 or more classes" in wrong_task.stderr
    assert not (root / "artifacts" / "search").exists(), "the search ran before the impossible task was refused"

    done = cli("run", *base, "search.n_trials=2", "run.name=traps", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dropping column 'customer_id'" in done.stderr and "infinite value(s)" in done.stderr
    bundle = root / "artifacts" / "bundle"
    manifest = strict_json((bundle / "manifest.json").read_text())
    assert isinstance(manifest, dict)
    assert {item["column"] for item in manifest["dropped_columns"]} == {
        "customer_id",
        "row_number",
        "signup",
        "plan",
        "notes",
    }
    contract = [spec["name"] for spec in manifest["input_schema"]]
    assert contract == ["income", "visits", "age", "ratio", "color"]
    example = strict_json((bundle / "input_example.json").read_text())
    assert isinstance(example, list) and [list(row) for row in example] == [contract] * len(example)
    written = [
        *(root / "data" / "prepared").glob("*.json"),
        *(root / "metrics").rglob("*.json"),
        *champion(root, "traps").glob("*.json"),
    ]
    assert len(written) > 6
    for file in written:  # every JSON the pipeline wrote, the released manifest and blessing included
        strict_json(file.read_text())

    card = (champion(root, "traps") / "model_card.md").read_text()
    assert (
        "5 column(s) dropped by prepare" in card and "| customer_id | id-like (300 distinct values in 300 rows)" in card
    )

    out = tmp_path / "scored.csv"
    predict = ["predict", "--model", "models/traps", "--output", str(out), "--keep", "y"]
    refused = cli(*predict, "--input", str(data), cwd=root)  # inf: refused when predicting, as it always was
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "column 'ratio' row 0: expected a finite number" in refused.stderr and not out.exists()
    cleaned = traps()
    cleaned["ratio"] = cleaned["ratio"].where(np.isfinite(cleaned["ratio"]))
    cleaned.to_csv(tmp_path / "cleaned.csv", index=False)  # every other trap, dropped columns included, stays
    scored = cli(*predict, "--input", str(tmp_path / "cleaned.csv"), cwd=root)
    assert scored.returncode == 0, scored.stderr
    answers = pd.read_csv(out)
    assert len(answers) == ROWS and answers["prediction"].isin(["yes", "no"]).all()
    assert (answers["prediction"] == answers["y"]).mean() > 0.8  # the clean columns carry the signal

    sent = cleaned.drop(columns="y").head(5).assign(age=lambda t: pd.to_numeric(t["age"], errors="coerce"))
    rows = json.loads(sent.to_json(orient="records"))  # dropped columns included; JSON sends null for "?"
    with running_server("models/traps", cwd=root, log_file=tmp_path / "serve.log") as (client, _):
        response = client.post("/predict", json=rows)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == answers["prediction"].head(5).tolist()
        refused_row = client.post("/predict", json=[{**rows[0], "surprise": 1}])
        assert (
            refused_row.status_code == 422 and "surprise" in refused_row.text
        )  # other extra columns: refused as before
        text_number = client.post("/predict", json=[{**rows[0], "age": "?"}])
        assert (
            text_number.status_code == 422 and "expected a number, got a string ('?')" in text_number.text
        )  # JSON has null
