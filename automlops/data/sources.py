"""Data sources behind one registry: each turns the `data` config into one DataFrame."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from automlops.config.schema import DataConfig
from automlops.errors import ConfigError, DataError, unknown_name
from automlops.registry import Registry
from automlops.urls import connect_url, expand_env, scrub
from automlops.urls import mask_secrets as mask_env


@dataclass(frozen=True)
class Source:
    required: tuple[str, ...]  # DataConfig fields this source needs
    load: Callable[[DataConfig], pd.DataFrame]
    describe: Callable[[DataConfig], str]  # for messages and lineage; never shows secrets


SOURCES: Registry[Source] = Registry("data.source")


def _existing_file(cfg: DataConfig) -> Path:
    path = Path(expand_env(str(cfg.path), "data.path"))
    if not path.is_file():
        raise DataError(f"data.path: file '{path}' not found (from {Path.cwd()}); put the file there or fix data.path")
    return path


def _read_csv(cfg: DataConfig) -> pd.DataFrame:
    path = _existing_file(cfg)
    try:
        _refuse_duplicate_header(path)
        return pd.read_csv(path, float_precision="round_trip")  # exact floats, as `automlops predict` reads them
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"data.path: '{path}' is not a readable CSV file ({str(error).splitlines()[0]})") from error
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _refuse_duplicate_header(path: Path) -> None:
    """pandas renames a repeated header name x to x.1 without a word; a model would learn from both."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    _refuse_duplicates(header, f"csv file {path}", "header")


def _refuse_duplicates(names: list[str], where: str, what: str = "columns") -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise DataError(
            f"data: {where} names column(s) {', '.join(repr(n) for n in repeated)} more than once in its {what}; "
            "rename or remove the repeated column(s)"
        )


def _read_parquet(cfg: DataConfig) -> pd.DataFrame:
    path = _existing_file(cfg)
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise DataError(f"data.path: '{path}' is not a readable Parquet file ({str(error).splitlines()[0]})") from error


def _read_sql(cfg: DataConfig) -> pd.DataFrame:
    import sqlalchemy

    url = connect_url(str(cfg.url), "data.url")
    shown = mask_env(str(cfg.url))
    try:
        engine = sqlalchemy.create_engine(url)
    except (
        sqlalchemy.exc.ArgumentError,
        ImportError,
        ValueError,
    ) as error:  # ValueError: e.g. a port that is no number
        reason = scrub(str(error).splitlines()[0], url) if str(error) else type(error).__name__
        raise ConfigError(
            f"data.url: '{shown}' is not a usable SQLAlchemy URL ({reason})"
        ) from None  # no cause: it may quote the URL
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(sqlalchemy.text(str(cfg.query)), connection)
    except sqlalchemy.exc.OperationalError as error:
        reason = scrub(str(error.orig).strip().splitlines()[0], url) if error.orig else "connection failed"
        raise DataError(
            f"data.url: cannot run data.query on '{shown}' ({reason}); check the URL, server and query"
        ) from error
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as error:  # pandas >= 3 wraps query errors
        cause = error.__cause__ if isinstance(error, pd.errors.DatabaseError) and error.__cause__ else error
        reason = scrub(str(getattr(cause, "orig", None) or cause).strip().splitlines()[0], url)
        raise DataError(f"data.query: failed on '{shown}' ({reason}); fix the query") from error
    finally:
        engine.dispose()


def _sklearn_dataset(loader_name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
        frame = bunch.frame.copy()
        if "target_names" in bunch:  # classification: readable labels instead of codes
            frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]
        return frame

    return load


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


BUILTIN_DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": _sklearn_dataset("load_breast_cancer"),  # binary, 569 rows, numeric
    "wine": _sklearn_dataset("load_wine"),  # multiclass, 178 rows, numeric
    "iris": _sklearn_dataset("load_iris"),  # multiclass, 150 rows, numeric
    "diabetes": _sklearn_dataset("load_diabetes"),  # regression, 442 rows, numeric
    "penguins": _penguins,  # multiclass, 344 rows, categorical and missing values
}


def _read_builtin(cfg: DataConfig) -> pd.DataFrame:
    if cfg.name not in BUILTIN_DATASETS:
        raise ConfigError(unknown_name("data.name", str(cfg.name), BUILTIN_DATASETS))
    return BUILTIN_DATASETS[str(cfg.name)]()


SOURCES.register("csv")(Source(("path",), _read_csv, lambda c: f"csv file {c.path}"))
SOURCES.register("parquet")(Source(("path",), _read_parquet, lambda c: f"parquet file {c.path}"))
SOURCES.register("sql")(Source(("url", "query"), _read_sql, lambda c: f"sql query on {mask_env(str(c.url))}"))
SOURCES.register("builtin")(Source(("name",), _read_builtin, lambda c: f"builtin dataset {c.name}"))


def load_table(cfg: DataConfig) -> pd.DataFrame:
    source = SOURCES.get(cfg.source)
    frame = source.load(cfg)
    _refuse_duplicates([str(name) for name in frame.columns], source.describe(cfg))
    if frame.empty or len(frame.columns) == 0:
        raise DataError(
            f"data: {source.describe(cfg)} has no rows; point data.{source.required[0]} at a non-empty table"
        )
    return frame
