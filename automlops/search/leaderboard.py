"""One leaderboard across engines and runs: every candidate ever scored on the same data and
metric, best first, the packaged one marked, each row traced to its study/fit, trial and artifact."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from automlops.io import atomic_file
from automlops.search.base import Candidate

KEY = ["engine", "source", "trial"]
COLUMNS = [
    "winner",
    "engine",
    "source",
    "trial",
    "family",
    "state",
    "score",
    "metric",
    "fit_seconds",
    "predict_seconds_per_row",
    "size_bytes",
    "pareto",
    "artifact",
    "params",
    "error",
    "data_hash",
    "recorded_at",
]


def update_leaderboard(
    history_file: Path, candidates: list[Candidate], winner: Candidate, metric: str, data_hash: str
) -> pd.DataFrame:
    """Merge this run's candidates into the history file; return the rows comparable with them."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = pd.DataFrame(
        [
            {
                **asdict(c),
                "params": json.dumps(c.params, sort_keys=True, default=str),
                "metric": metric,
                "data_hash": data_hash,
                "recorded_at": now,
            }
            for c in candidates
        ]
    )
    history = (
        pd.read_csv(history_file, keep_default_na=False, na_values=[""]) if history_file.is_file() else pd.DataFrame()
    )
    if not history.empty:
        history["trial"] = history["trial"].astype(int)
        fresh = rows.set_index(KEY).index
        history = history[~history.set_index(KEY).index.isin(fresh)]
    merged = pd.concat([history, rows], ignore_index=True) if not history.empty else rows
    merged = merged.drop(columns=["winner"], errors="ignore")
    with atomic_file(history_file) as tmp:
        merged.to_csv(tmp, index=False)
    table = merged[(merged["data_hash"] == data_hash) & (merged["metric"] == metric)].copy()
    table.insert(
        0,
        "winner",
        (table["engine"] == winner.engine) & (table["source"] == winner.source) & (table["trial"] == winner.trial),
    )
    table = table.sort_values("score", ascending=False, na_position="last", kind="stable")
    return table.reindex(columns=COLUMNS).reset_index(drop=True)  # older history files may lack new columns


def print_leaderboard(table: pd.DataFrame, rows: int = 10) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=f"leaderboard (top {min(rows, len(table))} of {len(table)}; * = packaged)")
    for column in ("", "engine", "trial", "family", "score", "fit s", "predict ms/row", "size KB", "state"):
        view.add_column(column)
    shown = pd.concat([table.head(rows), table[table["winner"]]]).drop_duplicates(subset=KEY)
    for _, row in shown.iterrows():
        view.add_row(
            "*" if row["winner"] else "",
            str(row["engine"]),
            str(row["trial"]),
            str(row["family"]),
            _fmt(row["score"], "{:.5f}"),
            _fmt(row["fit_seconds"], "{:.2f}"),
            _fmt(row["predict_seconds_per_row"] * 1000 if pd.notna(row["predict_seconds_per_row"]) else None, "{:.4f}"),
            _fmt(row["size_bytes"] / 1024 if pd.notna(row["size_bytes"]) else None, "{:.0f}"),
            str(row["state"]),
        )
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=140)  # logs and CI: do not squeeze columns to 80
    console.print(view)


def _fmt(value: Any, pattern: str) -> str:
    return "" if value is None or pd.isna(value) else pattern.format(value)
