"""The ordered stages, each reading its inputs from files and writing its outputs atomically.

`dvc repro` runs them one by one through `automlops stage <name>`; `automlops run` runs them all in
one process. Both call these same functions with the same paths, so both give the same model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from automlops.config.resolvers import mask_env
from automlops.config.schema import Config
from automlops.data.contract import contract_from_dicts
from automlops.errors import AutomlopsError
from automlops.io import atomic_dir, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

PREPARED_DIR = Path("data/prepared")
SEARCH_DIR = Path("artifacts/search")
SEARCH_METRICS = Path("metrics/search.json")
LEADERBOARD = Path("metrics/leaderboard.csv")
TEST_METRICS = Path("metrics/test.json")
STATE_DIR = Path(".automlops")  # Optuna studies live here, outside DVC outputs, so searches resume
CONF_OK = STATE_DIR / "conf.ok"  # written by the check_conf stage when params.yaml matches conf/
SPLITS = ("train", "valid", "test")


def run_prepare(config: Config) -> None:
    from automlops.data.prepare import prepare

    prepared = prepare(config.data, config.run.seed)
    data_config = asdict(config.data)
    data_config["url"] = mask_env(data_config["url"]) if data_config["url"] else None
    prepared.meta["config"] = data_config
    with atomic_dir(PREPARED_DIR) as staging:
        for split in SPLITS:
            getattr(prepared, split).to_parquet(staging / f"{split}.parquet", index=False)
        write_json_atomic(staging / "meta.json", prepared.meta)
    log.info("prepared %s: %s rows, task %s", prepared.meta["source"], prepared.meta["rows"], prepared.meta["task"])


def load_prepared() -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    meta_file = PREPARED_DIR / "meta.json"
    if not meta_file.is_file():
        raise AutomlopsError(f"{PREPARED_DIR}/ has no prepared data; run `automlops stage prepare` (or `dvc repro`) first")
    meta = json.loads(meta_file.read_text())
    return {split: pd.read_parquet(PREPARED_DIR / f"{split}.parquet") for split in SPLITS}, meta


def run_search(config: Config) -> None:
    import joblib

    from automlops.search.engines import ENGINES, SearchData

    frames, meta = load_prepared()
    features, target = meta["features"], meta["target"]
    data = SearchData(
        x_train=frames["train"][features], y_train=frames["train"][target],
        x_valid=frames["valid"][features], y_valid=frames["valid"][target],
        contract=contract_from_dicts(meta["contract"]), task=meta["task"], data_hash=meta["data_hash"],
    )
    result = ENGINES.get(config.search.engine)(config.search, data, config.run.seed, STATE_DIR)
    with atomic_dir(SEARCH_DIR) as staging:
        joblib.dump(result.model, staging / "model.joblib")
        write_json_atomic(staging / "best.json", {
            "family": result.family, "params": result.params, "metric": result.metric,
            "valid_score": result.valid_score, "lineage": result.lineage,
            "config": {**asdict(config.search), "storage": mask_env(config.search.storage or "") or None},
        })
    write_text_atomic(LEADERBOARD, result.leaderboard.to_csv(index=False))
    finished = int(result.leaderboard["state"].isin(["COMPLETE", "FAIL", "PRUNED"]).sum())
    write_json_atomic(SEARCH_METRICS, {"best_valid_score": result.valid_score, "metric": result.metric, "trials": finished})
    _print_leaderboard(result.leaderboard)


def run_evaluate(config: Config) -> None:
    import joblib

    from automlops.evaluate import evaluate

    frames, meta = load_prepared()
    model = joblib.load(SEARCH_DIR / "model.joblib")
    test = frames["test"]
    metrics = evaluate(model, test[meta["features"]], test[meta["target"]], meta["task"])
    write_json_atomic(TEST_METRICS, metrics)
    log.info("test metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


def run_package(config: Config) -> Path:
    from automlops.deploy import TARGETS, PackageInput

    frames, meta = load_prepared()
    example = frames["test"][meta["features"]].head(config.deploy.example_rows)
    inputs = PackageInput(
        name=config.run.name,
        model_file=SEARCH_DIR / "model.joblib",
        prepared=meta,
        search=json.loads((SEARCH_DIR / "best.json").read_text()),
        metrics=json.loads(TEST_METRICS.read_text()),
        example=example,
    )
    path = TARGETS.get(config.deploy.target)(inputs, config.deploy)
    log.info("packaged %s", path)
    return path


STAGES: dict[str, Callable[[Config], Any]] = {
    "prepare": run_prepare,
    "search": run_search,
    "evaluate": run_evaluate,
    "package": run_package,
}


def run_all(config: Config) -> Path:
    run_prepare(config)
    run_search(config)
    run_evaluate(config)
    return run_package(config)


def _print_leaderboard(table: pd.DataFrame, rows: int = 10) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=f"leaderboard (top {min(rows, len(table))} of {len(table)})")
    for column in ("winner", "trial", "family", "score", "fit_seconds", "state"):
        view.add_column(column)
    for _, row in table.head(rows).iterrows():
        score = "" if pd.isna(row["score"]) else f"{row['score']:.5f}"
        fit = "" if pd.isna(row["fit_seconds"]) else f"{row['fit_seconds']:.2f}"
        view.add_row("*" if row["winner"] else "", str(row["trial"]), row["family"], score, fit, row["state"])
    Console(stderr=True).print(view)
