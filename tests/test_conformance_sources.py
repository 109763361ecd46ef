"""Conformance suite for data sources: every source in the registry reads a small table it is given
and returns the same frame, and a table that is not there is one error naming the source's key. A
newly registered source is picked up here and fails until STORES says how to give it a table.

sql runs on the machine's PostgreSQL (127.0.0.1:5432, database `test`): unreachable, it fails in CI
and skips elsewhere (the `postgres_url` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automlops.config.schema import DataConfig
from automlops.data.sources import BUILTIN_DATASETS, SOURCES, load_table
from automlops.errors import AutomlopsError

SOURCE_NAMES = SOURCES.names()
SOURCES_GIVEN = [pytest.param(name, marks=pytest.mark.postgres) if name == "sql" else name for name in SOURCE_NAMES]


def small_table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n).round(3),
            "color": rng.choice(["red", "green", "blue"], n),
            "label": np.where(np.arange(n) % 3 == 0, "yes", "no"),
        }
    )


def _csv(frame: pd.DataFrame, tmp_path: Path, request: pytest.FixtureRequest) -> DataConfig:
    frame.to_csv(tmp_path / "table.csv", index=False)
    return DataConfig(source="csv", path=str(tmp_path / "table.csv"), target="label")


def _parquet(frame: pd.DataFrame, tmp_path: Path, request: pytest.FixtureRequest) -> DataConfig:
    frame.to_parquet(tmp_path / "table.parquet", index=False)
    return DataConfig(source="parquet", path=str(tmp_path / "table.parquet"), target="label")


def _sql(frame: pd.DataFrame, tmp_path: Path, request: pytest.FixtureRequest) -> DataConfig:
    import sqlalchemy

    url: str = request.getfixturevalue("postgres_url")
    table = f"automlops_conformance_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(url)
    frame.to_sql(table, engine, index=False)

    def drop() -> None:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()

    request.addfinalizer(drop)
    return DataConfig(source="sql", url=url, query=f'SELECT * FROM "{table}" ORDER BY id', target="label")


def _builtin(frame: pd.DataFrame, tmp_path: Path, request: pytest.FixtureRequest) -> DataConfig:
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setitem(BUILTIN_DATASETS, "conformance", lambda: frame.copy())
    return DataConfig(source="builtin", name="conformance", target="label")


# how to give each source a table: write it where the source reads, and return the config that reads it
STORES: dict[str, Callable[[pd.DataFrame, Path, pytest.FixtureRequest], DataConfig]] = {
    "csv": _csv,
    "parquet": _parquet,
    "sql": _sql,
    "builtin": _builtin,
}


def _missing(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> DataConfig:
    """A config of this source that points at a table that is not there."""
    if name == "sql":
        url = request.getfixturevalue("postgres_url")
        return DataConfig(source="sql", url=url, query='SELECT * FROM "automlops_no_such_table"', target="label")
    return DataConfig(source=name, path=str(tmp_path / "nowhere"), name="__nope__", target="label")


def test_every_source_has_a_store() -> None:
    assert set(STORES) == set(SOURCE_NAMES), "add to STORES how each registered source is given a table"


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_the_required_keys_are_data_config_fields(name: str) -> None:
    source = SOURCES.get(name)
    assert source.required and set(source.required) <= set(DataConfig.__dataclass_fields__)


@pytest.mark.parametrize("name", SOURCES_GIVEN)
def test_a_source_reads_back_the_table_it_is_given(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    given = small_table()
    frame = load_table(STORES[name](given, tmp_path, request))
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), given, check_dtype=False)
    assert pd.api.types.is_integer_dtype(frame["id"]) and pd.api.types.is_float_dtype(frame["x"])
    assert not pd.api.types.is_numeric_dtype(frame["color"])


@pytest.mark.parametrize("name", SOURCES_GIVEN)
def test_a_table_that_is_not_there_is_one_line_naming_the_source_key(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cfg = _missing(name, tmp_path, request)
    with pytest.raises(AutomlopsError) as caught:
        load_table(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert any(f"data.{key}" in message for key in SOURCES.get(name).required), message


@pytest.mark.parametrize("dataset", sorted(BUILTIN_DATASETS))
def test_every_shipped_builtin_dataset_loads_the_same_table_twice(dataset: str) -> None:
    cfg = DataConfig(source="builtin", name=dataset, target="unused")
    first, second = load_table(cfg), load_table(cfg)
    assert len(first) > 100 and len(first.columns) > 2
    pd.testing.assert_frame_equal(first, second)
