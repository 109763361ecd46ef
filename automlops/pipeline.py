"""The ordered stages, each reading its inputs from files and writing its outputs atomically.

`dvc repro` runs them one by one through `automlops stage <name>`; `automlops run` runs them all in
one process. Both call these same functions with the same paths, so both give the same model.
"""

from __future__ import annotations

import hashlib
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
from automlops.search.engines import SearchData

log = logging.getLogger(__name__)

PREPARED_DIR = Path("data/prepared")
SEARCH_DIR = Path("artifacts/search")
SEARCH_METRICS = Path("metrics/search.json")
LEADERBOARD = Path("metrics/leaderboard.csv")
TEST_METRICS = Path("metrics/test.json")
STATE_DIR = Path(".automlops")  # Optuna studies live here, outside DVC outputs, so searches resume
LEADERBOARD_HISTORY = STATE_DIR / "leaderboard.csv"  # every candidate of every run, across engines
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


def load_prepared(splits: tuple[str, ...] = SPLITS) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    meta_file = PREPARED_DIR / "meta.json"
    if not meta_file.is_file():
        raise AutomlopsError(f"{PREPARED_DIR}/ has no prepared data; run `automlops stage prepare` (or `dvc repro`) first")
    meta = json.loads(meta_file.read_text())
    return {split: pd.read_parquet(PREPARED_DIR / f"{split}.parquet") for split in splits}, meta


def search_data(config: Config) -> SearchData:
    """The prepared splits as a search sees them (also what an `automlops worker` loads)."""
    frames, meta = load_prepared(("train", "valid"))
    features, target, split = meta["features"], meta["target"], config.data.split
    fold_column = {"group": split.group_column, "time": split.time_column}.get(split.strategy)
    both = pd.concat([frames["train"][[fold_column]], frames["valid"][[fold_column]]], ignore_index=True) if fold_column else None
    return SearchData(
        x_train=frames["train"][features], y_train=frames["train"][target],
        x_valid=frames["valid"][features], y_valid=frames["valid"][target],
        contract=contract_from_dicts(meta["contract"]), task=meta["task"],
        data_hash=f"{meta['data_hash']}/split:{_split_fingerprint(frames)}",  # studies and leaderboards never mix splits
        split_strategy=split.strategy,
        groups=both[fold_column] if split.strategy == "group" and both is not None else None,
        time=both[fold_column] if split.strategy == "time" and both is not None else None,
    )


def _split_fingerprint(frames: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256(str(len(frames["train"])).encode())
    digest.update(pd.util.hash_pandas_object(frames["valid"], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:12]


def run_search(config: Config) -> None:
    from automlops.artifacts import save_model
    from automlops.search.engines import ENGINES
    from automlops.search.leaderboard import print_leaderboard, update_leaderboard

    data = search_data(config)
    result = ENGINES.get(config.search.engine).run(config.search, data, config.run.seed, STATE_DIR)
    winner = result.winner
    with atomic_dir(SEARCH_DIR) as staging:
        save_model(result.model, result.model_format, staging / "model")
        write_json_atomic(staging / "best.json", {
            "engine": winner.engine, "format": result.model_format, "family": winner.family, "params": winner.params,
            "metric": result.metric, "valid_score": winner.score, "lineage": result.lineage,
            "config": {**asdict(config.search), "storage": mask_env(config.search.storage or "") or None},
        })
    table = update_leaderboard(LEADERBOARD_HISTORY, result.candidates, winner, result.metric, data.data_hash)
    write_text_atomic(LEADERBOARD, table.to_csv(index=False))
    write_json_atomic(SEARCH_METRICS, {
        "best_valid_score": winner.score, "metric": result.metric, "engine": winner.engine,
        "candidates": len(result.candidates), "trials": sum(c.state in ("COMPLETE", "FAIL", "PRUNED") for c in result.candidates),
    })
    print_leaderboard(table)


def run_evaluate(config: Config) -> None:
    from automlops.artifacts import load_model
    from automlops.evaluate import evaluate

    frames, meta = load_prepared(("test",))
    model = load_model(json.loads((SEARCH_DIR / "best.json").read_text())["format"], SEARCH_DIR / "model")
    test = frames["test"]
    metrics = evaluate(model, test[meta["features"]], test[meta["target"]], meta["task"])
    write_json_atomic(TEST_METRICS, metrics)
    log.info("test metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


def run_package(config: Config) -> Path:
    from automlops.deploy import TARGETS, PackageInput

    frames, meta = load_prepared(("test",))
    example = frames["test"][meta["features"]].head(config.deploy.example_rows)
    inputs = PackageInput(
        name=config.run.name,
        model_dir=SEARCH_DIR / "model",
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
