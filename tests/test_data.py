"""Data sources, checks of the data against the config, task inference, splits and the input contract."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy
from conftest import cli

from automlops.config.schema import DataConfig, FeaturesConfig, SplitConfig
from automlops.data.contract import CATEGORICAL, NUMERIC, enforce_contract, infer_contract
from automlops.data.prepare import infer_task, prepare
from automlops.data.sources import BUILTIN_DATASETS, load_table
from automlops.data.split import split_table
from automlops.errors import ConfigError, DataError, InputError
from automlops.records import PreparedMeta
from automlops.tables import read_table, records_from_json

PENGUIN_COLUMNS = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]


def small_table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n).round(3),
            "size": rng.integers(1, 100, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "label": np.where(np.arange(n) % 3 == 0, "yes", "no"),
        }
    )


def csv_config(path: Path, target: str = "label", **kwargs) -> DataConfig:
    return DataConfig(source="csv", path=str(path), target=target, **kwargs)


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    small_table().to_csv(path, index=False)
    return path


# --- sources -----------------------------------------------------------------------------------


def test_csv_source_reads_the_file(small_csv: Path) -> None:
    frame = load_table(csv_config(small_csv))
    pd.testing.assert_frame_equal(frame, small_table())


def test_parquet_source_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "small.parquet"
    small_table().to_parquet(path, index=False)
    frame = load_table(DataConfig(source="parquet", path=str(path), target="label"))
    pd.testing.assert_frame_equal(frame, small_table())


def test_csv_and_parquet_of_the_same_table_prepare_the_same(tmp_path: Path, small_csv: Path) -> None:
    parquet = tmp_path / "small.parquet"
    small_table().to_parquet(parquet, index=False)
    from_csv = prepare(csv_config(small_csv), seed=1)
    from_parquet = prepare(DataConfig(source="parquet", path=str(parquet), target="label"), seed=1)
    assert from_csv.meta.data_hash == from_parquet.meta.data_hash
    assert from_csv.meta.contract == from_parquet.meta.contract
    pd.testing.assert_frame_equal(from_csv.test.reset_index(drop=True), from_parquet.test.reset_index(drop=True))


BUILTIN_TARGETS = {  # dataset -> (target column, task it must be inferred as)
    "breast_cancer": ("target", "binary"),
    "wine": ("target", "multiclass"),
    "iris": ("target", "multiclass"),
    "diabetes": ("target", "regression"),
    "penguins": ("species", "multiclass"),
}


def test_every_builtin_dataset_is_covered_here() -> None:
    assert set(BUILTIN_DATASETS) == set(BUILTIN_TARGETS)


@pytest.mark.parametrize("name", sorted(BUILTIN_TARGETS))
def test_builtin_dataset_loads_with_its_target(name: str) -> None:
    target, task = BUILTIN_TARGETS[name]
    frame = load_table(DataConfig(source="builtin", name=name, target=target))
    assert len(frame) > 100 and len(frame.columns) > 2
    assert target in frame.columns
    labelled = frame[frame[target].notna()]
    assert infer_task(labelled[target], "auto", target) == task


def test_builtin_classification_targets_are_readable_labels() -> None:
    frame = load_table(DataConfig(source="builtin", name="breast_cancer", target="target"))
    assert set(frame["target"]) == {"malignant", "benign"}


def test_unknown_builtin_dataset_lists_the_datasets() -> None:
    with pytest.raises(ConfigError, match=r"data\.name: unknown value 'iriss' \(did you mean 'iris'\?\)") as caught:
        load_table(DataConfig(source="builtin", name="iriss", target="target"))
    assert ", ".join(sorted(BUILTIN_DATASETS)) in str(caught.value)


def examples_sqlite(folder: Path) -> str:
    """A SQLite file holding small_table() as `examples`; returns its SQLAlchemy URL."""
    url = f"sqlite:///{folder / 'db.sqlite'}"
    engine = sqlalchemy.create_engine(url)
    small_table().to_sql("examples", engine, index=False)
    engine.dispose()
    return url


def test_sql_source_reads_a_sqlite_file(tmp_path: Path) -> None:
    url = examples_sqlite(tmp_path)
    cfg = DataConfig(
        source="sql", url=url, query="SELECT x, color, label FROM examples WHERE size > 50", target="label"
    )
    frame = load_table(cfg)
    expected = small_table().query("size > 50")[["x", "color", "label"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected)


def test_sql_source_with_a_bad_query_names_data_query(tmp_path: Path) -> None:
    url = examples_sqlite(tmp_path)
    with pytest.raises(DataError, match=r"data\.(query|url).*no such table: nope"):
        load_table(DataConfig(source="sql", url=url, query="SELECT * FROM nope", target="label"))


def test_sql_source_with_an_unusable_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data\.url: 'not a url' is not a usable SQLAlchemy URL"):
        load_table(DataConfig(source="sql", url="not a url", query="SELECT 1", target="a"))


def test_sql_source_empty_result_is_refused(tmp_path: Path) -> None:
    url = examples_sqlite(tmp_path)
    with pytest.raises(DataError, match=r"has no rows"):
        load_table(DataConfig(source="sql", url=url, query="SELECT * FROM examples WHERE size > 1000", target="label"))


@pytest.fixture
def pg_table(postgres_url: str):
    """A uniquely named PostgreSQL table holding small_table(); dropped afterwards."""
    name = f"automlops_test_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_url)
    small_table().to_sql(name, engine, index=False)
    try:
        yield name
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


@pytest.mark.postgres
def test_sql_source_reads_postgresql(postgres_url: str, pg_table: str) -> None:
    cfg = DataConfig(source="sql", url=postgres_url, query=f'SELECT * FROM "{pg_table}" ORDER BY x', target="label")
    frame = load_table(cfg)
    expected = small_table().sort_values("x").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert pd.api.types.is_float_dtype(frame["x"]) and pd.api.types.is_integer_dtype(frame["size"])


@pytest.mark.postgres
def test_sql_source_url_from_the_environment(postgres_url: str, pg_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMLOPS_TEST_PG", postgres_url)
    cfg = DataConfig(
        source="sql", url="${oc.env:AUTOMLOPS_TEST_PG}", query=f'SELECT * FROM "{pg_table}"', target="label"
    )
    assert len(load_table(cfg)) == len(small_table())
    monkeypatch.delenv("AUTOMLOPS_TEST_PG")
    with pytest.raises(ConfigError, match=r"data\.url: environment variable AUTOMLOPS_TEST_PG is not set"):
        load_table(cfg)


@pytest.mark.postgres
def test_postgresql_connection_failure_does_not_leak_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AUTOMLOPS_TEST_PG", "postgresql+psycopg://postgres:leaky-pw-42@127.0.0.1:5432/automlops_no_such_db"
    )
    cfg = DataConfig(source="sql", url="${oc.env:AUTOMLOPS_TEST_PG}", query="SELECT 1", target="a")
    with pytest.raises(DataError, match=r"data\.url: cannot run data\.query") as caught:
        load_table(cfg)
    assert "leaky-pw-42" not in str(caught.value)


@pytest.mark.postgres
def test_prepare_stage_on_postgresql_never_writes_the_resolved_url(project: Path, postgres_url: str) -> None:
    table = f"automlops_penguins_{uuid.uuid4().hex[:12]}"
    secret_url = postgres_url.replace("postgres@", "postgres:pw-never-written-7@")  # trust auth ignores it
    assert secret_url != postgres_url
    engine = sqlalchemy.create_engine(postgres_url)
    pd.read_csv(project / "data" / "raw" / "penguins.csv").to_sql(table, engine, index=False)
    try:
        env = {"AUTOMLOPS_TEST_PG": secret_url}
        composed = cli(
            "compose",
            "data=penguins_sql",
            "data.url=${oc.env:AUTOMLOPS_TEST_PG}",
            f"data.query=SELECT * FROM {table}",
            "data.features.exclude=[year]",
            cwd=project,
            env=env,
        )
        assert composed.returncode == 0, composed.stderr
        prepared = cli("stage", "prepare", cwd=project, env=env)
        assert prepared.returncode == 0, prepared.stderr
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()
    meta_text = (project / "data" / "prepared" / "meta.json").read_text()
    params_text = (project / "params.yaml").read_text()
    for text in (meta_text, params_text, prepared.stdout, prepared.stderr, composed.stdout, composed.stderr):
        assert secret_url not in text and postgres_url not in text
        assert "pw-never-written-7" not in text and "127.0.0.1:5432" not in text  # (serve.host is 127.0.0.1 too)
    meta = PreparedMeta.from_dict(json.loads(meta_text))
    assert meta.config["url"] == "${oc.env:AUTOMLOPS_TEST_PG}"
    assert meta.task == "multiclass" and sorted(meta.classes) == ["Adelie", "Chinstrap", "Gentoo"]
    assert sum(meta.rows.values()) == 344
    assert "year" not in meta.features


# --- bad data ----------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.path: file '.*nowhere\.csv' not found"):
        load_table(csv_config(tmp_path / "nowhere.csv"))


def test_missing_parquet_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.path: file '.*nowhere\.parquet' not found"):
        load_table(DataConfig(source="parquet", path=str(tmp_path / "nowhere.parquet"), target="y"))


@pytest.mark.parametrize(
    "content",
    [b"a,b\n1,2\n1,2,3,4\n", b"\xff\xfe\x00\x81binary\x00garbage\x82"],
    ids=["ragged-rows", "binary-bytes"],
)
def test_unreadable_csv_is_a_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"data\.path: '.*bad\.csv' is not a readable CSV file"):
        load_table(csv_config(path))


def test_corrupt_parquet_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"data\.path: '.*bad\.parquet' is not a readable Parquet file"):
        load_table(DataConfig(source="parquet", path=str(path), target="y"))


@pytest.mark.parametrize("content", ["", "x,label\n"], ids=["empty-file", "header-only"])
def test_empty_csv_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"data: csv file .*empty\.csv has no rows"):
        prepare(csv_config(path), seed=0)


def test_target_not_in_columns_lists_columns_and_suggests(small_csv: Path) -> None:
    with pytest.raises(DataError, match=r"data\.target: column 'lable' is not in csv file") as caught:
        prepare(csv_config(small_csv, target="lable"), seed=0)
    message = str(caught.value)
    assert "did you mean 'label'" in message
    assert "columns are: x, size, color, label" in message


def test_target_with_only_missing_values_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unlabelled.csv"
    pd.DataFrame({"x": [1, 2, 3], "y": [None, None, None]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data\.target: every row .* has a missing 'y'"):
        prepare(csv_config(path, target="y"), seed=0)


def test_rows_with_missing_target_are_dropped(tmp_path: Path) -> None:
    table = small_table(90)
    table.loc[[0, 5, 10], "label"] = None
    path = tmp_path / "partly.csv"
    table.to_csv(path, index=False)
    prepared = prepare(csv_config(path), seed=0)
    assert sum(prepared.meta.rows.values()) == 87
    assert all(frame["label"].notna().all() for frame in (prepared.train, prepared.valid, prepared.test))


def test_regression_target_must_be_numeric(small_csv: Path) -> None:
    with pytest.raises(
        DataError, match=r"data\.task: regression needs a numeric target, but 'color' holds '(red|green|blue)'"
    ):
        prepare(csv_config(small_csv, target="color", task="regression"), seed=0)


def test_regression_target_of_numeric_strings_is_typed_or_refused(tmp_path: Path) -> None:
    """A text column holding numbers (as a SQL TEXT column or a Parquet string column does) with
    task=regression: either it is read as numbers, or a DataError says what is wrong; never a crash."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": [f"{v:.2f}" for v in rng.normal(size=60)]})
    path = tmp_path / "text_target.parquet"
    frame.to_parquet(path, index=False)
    cfg = DataConfig(
        source="parquet", path=str(path), target="y", task="regression", split=SplitConfig(strategy="random")
    )
    try:
        prepared = prepare(cfg, seed=0)
    except DataError as error:
        assert "'y'" in str(error)
    else:
        assert prepared.meta.task == "regression"
        assert pd.api.types.is_float_dtype(prepared.train["y"])


@pytest.mark.parametrize("task", ["auto", "multiclass"])
def test_single_class_target_is_refused(tmp_path: Path, task: str) -> None:
    path = tmp_path / "one_class.csv"
    pd.DataFrame({"x": range(20), "y": ["same"] * 20}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data\.target: 'y' has a single (class|value)"):
        prepare(csv_config(path, target="y", task=task), seed=0)


@pytest.mark.parametrize("key", ["include", "exclude"])
def test_features_naming_unknown_columns_are_refused(small_csv: Path, key: str) -> None:
    features = FeaturesConfig(**{key: ["x", "colour"]})
    with pytest.raises(DataError, match=rf"data\.features\.{key}: column\(s\) colour not in the data") as caught:
        prepare(csv_config(small_csv, features=features), seed=0)
    assert "did you mean 'color'" in str(caught.value)
    assert "columns are: x, size, color, label" in str(caught.value)


def test_features_include_and_exclude_choose_the_columns(small_csv: Path) -> None:
    included = prepare(csv_config(small_csv, features=FeaturesConfig(include=["x", "color"])), seed=0)
    assert included.meta.features == ["x", "color"]
    assert [spec["name"] for spec in included.meta.contract] == ["x", "color"]
    excluded = prepare(csv_config(small_csv, features=FeaturesConfig(exclude=["size"])), seed=0)
    assert excluded.meta.features == ["x", "color"]


def test_excluding_every_feature_is_refused(small_csv: Path) -> None:
    with pytest.raises(DataError, match=r"data\.features: no feature columns are left"):
        prepare(csv_config(small_csv, features=FeaturesConfig(exclude=["x", "size", "color"])), seed=0)


def test_datetime_feature_is_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = small_table()
    frame["when"] = pd.date_range("2021-01-01", periods=len(frame), freq="D")
    path = tmp_path / "dated.parquet"
    frame.to_parquet(path, index=False)
    cfg = DataConfig(source="parquet", path=str(path), target="label")
    meta = prepare(cfg, seed=0).meta
    assert "when" not in meta.features and "when" not in [spec["name"] for spec in meta.contract]
    assert [item["column"] for item in meta.dropped_columns] == ["when"]
    assert "dates are not features yet" in caplog.text and "'when'" in caplog.text
    with pytest.raises(DataError, match=r"data\.features: column 'when' holds dates.*data\.features\.exclude"):
        prepare(
            DataConfig(
                source="parquet", path=str(path), target="label", features=FeaturesConfig(include=["x", "when"])
            ),
            seed=0,
        )


def test_prepare_meta_describes_the_data(small_csv: Path) -> None:
    prepared = prepare(csv_config(small_csv), seed=0)
    meta = prepared.meta
    assert meta.target == "label" and meta.task == "binary" and meta.classes == ["no", "yes"]
    assert meta.features == ["x", "size", "color"]
    assert meta.data_hash.startswith("sha256:")
    assert meta.source == f"csv file {small_csv}"
    assert prepare(csv_config(small_csv), seed=0).meta.data_hash == meta.data_hash
    changed = small_table()
    changed.loc[0, "x"] += 1
    other = small_csv.with_name("changed.csv")
    changed.to_csv(other, index=False)
    assert prepare(csv_config(other), seed=0).meta.data_hash != meta.data_hash


# --- task inference ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a", "b"], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        ([0, 1, 1, 0], "binary"),
        ([True, False, True], "binary"),
        ([1, 2, 3, 1, 2, 3], "multiclass"),
        ([1.0, 2.0, 3.0, 1.0], "multiclass"),
        ([1.5, 2.25, 3.0, 4.75], "regression"),
        (list(range(50)), "regression"),
    ],
    ids=["strings-2", "strings-3", "int-2", "bool", "small-int", "whole-floats", "floats", "many-ints"],
)
def test_task_is_inferred_from_the_target(values: list, task: str) -> None:
    assert infer_task(pd.Series(values), "auto", "y") == task


def test_declared_task_overrides_inference() -> None:
    assert infer_task(pd.Series([1, 2, 3, 1, 2, 3]), "regression", "y") == "regression"
    assert infer_task(pd.Series(list(range(50))), "multiclass", "y") == "multiclass"
    assert infer_task(pd.Series([0.5, 1.5, 0.5]), "binary", "y") == "binary"


def test_declared_binary_needs_two_classes() -> None:
    with pytest.raises(
        DataError, match=r"data\.task: binary needs exactly 2 classes, but 'y' has 3; set data\.task=multiclass"
    ):
        infer_task(pd.Series(["a", "b", "c"]), "binary", "y")


def test_declared_task_reaches_the_prepared_meta(tmp_path: Path) -> None:
    path = tmp_path / "grades.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=80), "grade": rng.integers(1, 5, 80)}).to_csv(path, index=False)
    assert prepare(csv_config(path, target="grade"), seed=0).meta.task == "multiclass"
    declared = prepare(
        csv_config(path, target="grade", task="regression", split=SplitConfig(strategy="random")), seed=0
    )
    assert declared.meta.task == "regression" and declared.meta.classes == []


# --- splits ------------------------------------------------------------------------------------


def split_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": np.where(np.arange(n) < n // 5, "rare", "common"),  # 20% rare
            "when": pd.date_range("2020-01-01", periods=n, freq="D")[rng.permutation(n)],
            "customer": rng.integers(0, 40, n),
        }
    )


def assert_partition(table: pd.DataFrame, parts: tuple[pd.DataFrame, ...]) -> None:
    indices = [set(part.index) for part in parts]
    assert sum(len(i) for i in indices) == len(table)
    assert set().union(*indices) == set(table.index)


@pytest.mark.parametrize("strategy", ["random", "stratified"])
def test_split_sizes_roughly_match(strategy: str) -> None:
    table = split_frame()
    train, valid, test = split_table(
        table, "y", "binary", SplitConfig(strategy=strategy, test_size=0.25, valid_size=0.15), 0
    )
    assert_partition(table, (train, valid, test))
    assert len(test) == pytest.approx(100, abs=2) and len(valid) == pytest.approx(60, abs=2)


def test_stratified_split_keeps_class_ratios() -> None:
    table = split_frame()
    parts = split_table(table, "y", "binary", SplitConfig(strategy="stratified"), 0)
    for part in parts:
        assert (part["y"] == "rare").mean() == pytest.approx(0.2, abs=0.01)


def test_split_is_reproducible_by_seed() -> None:
    table = split_frame()
    first = split_table(table, "y", "binary", SplitConfig(strategy="random"), 7)
    again = split_table(table, "y", "binary", SplitConfig(strategy="random"), 7)
    other = split_table(table, "y", "binary", SplitConfig(strategy="random"), 8)
    assert all(a.index.equals(b.index) for a, b in zip(first, again))
    assert not first[2].index.equals(other[2].index)


def test_time_split_puts_the_latest_rows_in_test() -> None:
    table = split_frame()
    train, valid, test = split_table(table, "y", "binary", SplitConfig(strategy="time", time_column="when"), 0)
    assert_partition(table, (train, valid, test))
    assert train["when"].max() < valid["when"].min() and valid["when"].max() < test["when"].min()
    assert len(test) == 80 and len(valid) == 80


def test_time_split_of_a_csv_date_column_orders_by_date(tmp_path: Path) -> None:
    """CSV dates arrive as text; "10/1/2020" is later than "9/30/2020" though it sorts before it."""
    dates = pd.date_range("2020-01-01", periods=100, freq="5D")
    frame = pd.DataFrame({"when": dates.strftime("%-m/%-d/%Y"), "x": np.arange(100.0), "y": np.arange(100.0) * 2})
    path = tmp_path / "dated.csv"
    frame.sample(frac=1, random_state=0).to_csv(path, index=False)
    cfg = csv_config(path, target="y", split=SplitConfig(strategy="time", time_column="when"))
    prepared = prepare(cfg, seed=0)
    assert sorted(prepared.test["x"]) == list(np.arange(80.0, 100.0))  # x counts days: the latest 20 rows
    assert prepared.train["x"].max() < prepared.valid["x"].min()
    assert "when" not in prepared.meta.features and "when" in prepared.meta.split_columns


def test_group_split_never_shares_a_group() -> None:
    table = split_frame()
    train, valid, test = split_table(table, "y", "binary", SplitConfig(strategy="group", group_column="customer"), 0)
    assert_partition(table, (train, valid, test))
    groups = [set(part["customer"]) for part in (train, valid, test)]
    assert not groups[0] & groups[1] and not groups[0] & groups[2] and not groups[1] & groups[2]
    assert len(test) == pytest.approx(80, rel=0.35) and len(valid) == pytest.approx(80, rel=0.35)


def test_group_split_with_one_group_is_refused() -> None:
    table = split_frame().assign(customer=1)
    with pytest.raises(DataError, match=r"data\.split\.group_column: 'customer' has fewer than 2 groups"):
        split_table(table, "y", "binary", SplitConfig(strategy="group", group_column="customer"), 0)


def test_group_column_is_kept_for_splitting_but_not_given_to_the_model(tmp_path: Path) -> None:
    path = tmp_path / "grouped.parquet"
    split_frame().drop(columns="when").to_parquet(path, index=False)
    cfg = DataConfig(
        source="parquet", path=str(path), target="y", split=SplitConfig(strategy="group", group_column="customer")
    )
    prepared = prepare(cfg, seed=0)
    assert prepared.meta.features == ["x"] and prepared.meta.split_columns == ["customer"]
    assert not set(prepared.train["customer"]) & set(prepared.test["customer"])


def test_stratified_split_of_too_few_rows_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x": range(6), "y": ["a", "a", "a", "a", "b", "c"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data\.split: cannot split 6 rows with strategy=stratified"):
        prepare(csv_config(path, target="y"), seed=0)


# --- the input contract ------------------------------------------------------------------------


def training_features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "length": [1.0, 2.5, np.nan, 4.0],
            "count": [1, 2, 3, 4],
            "island": ["Biscoe", "Dream", "Biscoe", None],
            "flag": [True, False, True, True],
        }
    )


def test_infer_contract_kinds_categories_and_ranges() -> None:
    specs = {spec.name: spec for spec in infer_contract(training_features())}
    assert list(specs) == ["length", "count", "island", "flag"]
    assert (
        specs["length"].kind == NUMERIC
        and specs["length"].nullable
        and (specs["length"].min, specs["length"].max) == (1.0, 4.0)
    )
    assert specs["count"].kind == NUMERIC and not specs["count"].nullable and specs["count"].dtype == "int64"
    assert (
        specs["island"].kind == CATEGORICAL
        and specs["island"].categories == ["Biscoe", "Dream"]
        and specs["island"].nullable
    )
    assert specs["flag"].kind == CATEGORICAL and specs["flag"].categories == ["False", "True"]


def test_infer_contract_refuses_dates() -> None:
    with pytest.raises(DataError, match=r"column 'd' holds dates"):
        infer_contract(pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2020-02-01"])}))


@pytest.fixture
def contract():
    return infer_contract(training_features())


def good_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {"length": [3.0, 1.5], "count": [2, 7], "island": ["Dream", "Torgersen"], "flag": [True, False]}
    )


def test_enforce_contract_types_good_rows(contract) -> None:
    out = enforce_contract(good_rows(), contract)
    assert list(out.columns) == ["length", "count", "island", "flag"]
    assert out["count"].dtype == float and out["island"].tolist() == ["Dream", "Torgersen"]  # unseen level allowed
    assert out["flag"].tolist() == ["True", "False"]


def test_enforce_contract_rejects_missing_and_extra_columns(contract) -> None:
    with pytest.raises(InputError, match=r"missing column\(s\): count, flag") as caught:
        enforce_contract(good_rows().drop(columns=["count", "flag"]).assign(colour="red"), contract)
    assert "unexpected column(s): colour" in str(caught.value)


def test_enforce_contract_names_the_column_and_row_of_a_string_in_a_numeric_column(contract) -> None:
    rows = pd.DataFrame(
        {
            "length": [2.0, "eleven", 3.0],
            "count": [1, 2, 3],
            "island": ["Biscoe-secret-a", "Dream-secret-b", "Biscoe-secret-c"],
            "flag": [True, True, False],
        }
    )
    with pytest.raises(InputError, match=r"column 'length' row 1: expected a number, got 'eleven'") as caught:
        enforce_contract(rows, contract)
    assert "secret" not in str(caught.value)  # other columns and rows are never echoed
    assert "row 0" not in str(caught.value) and "row 2" not in str(caught.value)


@pytest.mark.parametrize("value", [np.inf, -np.inf, "inf", "nan-ish"])
def test_enforce_contract_rejects_non_finite_and_garbage(contract, value) -> None:
    rows = good_rows().astype({"length": object})
    rows.loc[1, "length"] = value
    with pytest.raises(InputError, match=r"column 'length' row 1: expected a (finite )?number"):
        enforce_contract(rows, contract)


def test_enforce_contract_rejects_booleans_in_numeric_columns(contract) -> None:
    rows = good_rows().astype({"count": object})
    rows.loc[0, "count"] = True
    with pytest.raises(InputError, match=r"column 'count' row 0: expected a number, got a boolean"):
        enforce_contract(rows, contract)


def test_enforce_contract_rejects_missing_values_never_seen_in_training(contract) -> None:
    rows = good_rows().astype({"count": object})
    rows.loc[1, "count"] = None
    with pytest.raises(InputError, match=r"column 'count' must not be empty \(row 1\)"):
        enforce_contract(rows, contract)
    rows = good_rows()
    rows.loc[0, "length"] = np.nan  # missing was seen in training: fine
    assert np.isnan(enforce_contract(rows, contract)["length"].iloc[0])


def test_enforce_contract_rejects_an_empty_frame(contract) -> None:
    with pytest.raises(InputError, match=r"no rows to predict"):
        enforce_contract(good_rows().iloc[:0], contract)


def test_enforce_contract_caps_the_problems_listed(contract) -> None:
    rows = pd.DataFrame(
        {"length": [f"bad{i}" for i in range(12)], "count": range(12), "island": ["Dream"] * 12, "flag": [True] * 12}
    )
    with pytest.raises(InputError) as caught:
        enforce_contract(rows, contract)
    message = str(caught.value)
    assert message.count("expected a number") == 5 and "bad11" not in message


def test_enforce_contract_accepts_numeric_strings(contract) -> None:
    rows = good_rows().astype({"length": object, "count": object})
    rows["length"] = ["3.5", " 1e1 "]
    rows["count"] = ["7", "-2"]
    out = enforce_contract(rows, contract)
    assert out["length"].tolist() == [3.5, 10.0] and out["count"].tolist() == [7.0, -2.0]


def test_csv_and_json_inputs_are_typed_the_same(contract, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("length,count,island,flag\n3.5,7,Dream,True\n,2,Biscoe,False\n")
    body = json.loads(
        '[{"length": "3.5", "count": 7, "island": "Dream", "flag": true},'
        ' {"length": null, "count": "2", "island": "Biscoe", "flag": false}]'
    )
    from_csv = enforce_contract(read_table(csv), contract)
    from_json = enforce_contract(records_from_json(body), contract)
    pd.testing.assert_frame_equal(from_csv, from_json)
    assert from_csv["length"].iloc[0] == 3.5 and np.isnan(from_csv["length"].iloc[1])
