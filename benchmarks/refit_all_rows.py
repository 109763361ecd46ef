#!/usr/bin/env python3
"""deploy.refit_all_rows: does the refit on train+valid+test serve a better model than the candidate?

With the key on, the test split is in the served model's fit, so it cannot score it. This holds out a
second, outer split (20 %, seeded, stratified for classes) that automlops never sees, runs
`automlops run deploy.refit_all_rows=true` on the rest, and scores both models of that one run on the
outer rows: the candidate the gate judged (artifacts/bundle/, fit on train+valid) and the published
refit (models/<name>@champion, fit on train+valid+test). Same search, same winner, same seed: only the
refit's extra rows differ.

    python benchmarks/refit_all_rows.py --datasets fair,diabetes --seeds 0,1,2 --trials 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench  # noqa: E402
from _datasets import DATASETS  # noqa: E402

OUTER_SHARE = 0.2


def outer_split(frame: pd.DataFrame, target: str, task: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    frame = frame[frame[target].notna()].reset_index(drop=True)
    stratify = frame[target] if task != "regression" else None
    inner, outer = train_test_split(frame, test_size=OUTER_SHARE, random_state=seed, stratify=stratify)
    return inner.reset_index(drop=True), outer.reset_index(drop=True)


def score(model_dir: Path, outer: pd.DataFrame, target: str, task: str) -> float:
    from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error

    from automlops.bundle import load_bundle
    from automlops.scoring import predict_frame

    bundle = load_bundle(model_dir)
    out = predict_frame(bundle, outer.drop(columns=[target]))
    if task == "regression":
        return float(root_mean_squared_error(outer[target], out["prediction"]))
    classes = list(bundle.model.classes_)
    proba = out[[f"proba_{c}" for c in classes]].to_numpy()
    if task == "binary":
        return float(roc_auc_score(outer[target] == bundle.manifest.positive_class, proba[:, 1]))
    return float(log_loss(outer[target], proba, labels=classes))


def run_one(dataset, seed: int, trials: int, folder: Path) -> dict:
    inner, outer = outer_split(dataset.load(), dataset.target, dataset.task, seed)
    root = _bench.new_project(folder / f"{dataset.name}-{seed}")
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    inner.to_csv(root / "data" / "raw" / "inner.csv", index=False)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "automlops",
            "run",
            "data=penguins_csv",
            "data.path=data/raw/inner.csv",
            f"data.target={dataset.target}",
            f"data.task={dataset.task}",
            "data.features.exclude=[]",
            f"data.split.strategy={dataset.split_strategy}",
            f"run.name={dataset.name}",
            f"run.seed={seed}",
            f"search.n_trials={trials}",
            "search.validation.method=holdout",
            "search.progress=false",
            "evaluate.plots=false",
            "gate.infra.enabled=false",
            "deploy.refit_all_rows=true",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {"dataset": dataset.name, "seed": seed, "error": done.stderr[-800:]}
    manifest = json.loads((root / "models" / dataset.name / "versions" / "1" / "manifest.json").read_text())
    return {
        "dataset": dataset.name,
        "task": dataset.task,
        "seed": seed,
        "family": manifest["model"]["family"],
        "candidate_rows": manifest["refit"]["candidate_rows"],
        "refit_rows": manifest["refit"]["rows"],
        "outer_rows": len(outer),
        "candidate": score(root / "artifacts" / "bundle", outer, dataset.target, dataset.task),
        "refit": score(root / "models" / dataset.name / "versions" / "1", outer, dataset.target, dataset.task),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="fair,diabetes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--dir", default="/tmp/automlops-refit-bench")
    args = parser.parse_args()
    by_name = DATASETS
    folder = Path(args.dir)
    rows = []
    for name in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run_one(by_name[name], seed, args.trials, folder)
            print(json.dumps(row), flush=True)
            rows.append(row)
    ok = [r for r in rows if "error" not in r]
    for name in {r["dataset"] for r in ok}:
        mine = [r for r in ok if r["dataset"] == name]
        sign = 1 if mine[0]["task"] == "binary" else -1  # roc_auc higher is better; rmse and log_loss lower
        gains = [sign * (r["refit"] - r["candidate"]) for r in mine]
        print(
            f"{name}: refit better on {sum(g > 0 for g in gains)}/{len(gains)} seeds, mean gain {np.mean(gains):+.5f}"
        )


if __name__ == "__main__":
    main()
