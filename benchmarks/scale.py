#!/usr/bin/env python3
"""How the whole automlops pipeline scales with rows: prepare -> search (Optuna engine, LightGBM
by default, a fixed number of trials) -> evaluate -> package, on generated data of 50 columns (numeric and
categorical, some missing) written locally as Parquet and read through data.source=parquet.

    python benchmarks/scale.py                          # 10k, 100k, 1M rows, 5 trials
    python benchmarks/scale.py --quick                  # 1k and 10k rows
    python benchmarks/scale.py --sizes 10000,100000 --trials 3

Each size runs in its own child process; its peak RSS comes from wait4() on that child. Per size:
wall time per stage, peak RSS, the data's in-memory size (DataFrame.memory_usage(deep=True) of the
table as read from Parquet), peak/in-memory, and time per row split into the engine's own cost
(candidate fit+predict+score inside the trials, plus the winner's refit) and everything else.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench  # noqa: E402

SCRIPT = Path(__file__).resolve()
SEED = 42
N_NUMERIC = 40
CATEGORICAL_LEVELS = (
    2,
    3,
    5,
    8,
    12,
    20,
    50,
    100,
    500,
    4000,
)  # 10 categorical columns; the last like issue 13's 3,943-level one
DEFAULT_FAMILIES = ("lightgbm", "random_forest", "linear")  # conf/search/optuna.yaml's space
PEAK_RATIO_TARGET = 4.0
GROWTH_TOLERANCE = 1.15  # "no worse than linear": scaling exponent of non-engine time <= this


# ====================================================================== data
def generate(rows: int, path: Path) -> dict[str, Any]:
    """A binary task whose label depends on numeric and categorical columns, with missing values."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    columns: dict[str, Any] = {}
    numeric = rng.standard_normal((rows, N_NUMERIC))
    numeric[:, 5:10] = np.round(np.abs(numeric[:, 5:10]) * 10)  # a few count-like columns
    for i in range(N_NUMERIC):
        values = numeric[:, i].copy()
        if i % 4 == 0:  # every fourth numeric column has 5-15 % missing
            values[rng.random(rows) < 0.05 + 0.01 * (i % 11)] = np.nan
        columns[f"num_{i:02d}"] = values
    signal = (
        1.2 * numeric[:, 0]
        - 0.8 * numeric[:, 1]
        + 0.5 * numeric[:, 2] * numeric[:, 3]
        + 0.3 * np.sin(3 * numeric[:, 4])
    )
    for j, levels in enumerate(CATEGORICAL_LEVELS):
        codes = rng.integers(0, levels, rows)
        effect = rng.normal(0, 0.6 if j < 5 else 0.2, levels)
        signal += effect[codes]
        names = np.array([f"c{j}_{k}" for k in range(levels)], dtype=object)
        values = names[codes]
        if j % 3 == 0:
            values[rng.random(rows) < 0.08] = None
        columns[f"cat_{j}"] = values
    signal += rng.normal(0, 1.0, rows)
    columns["target"] = np.where(signal > np.median(signal), "yes", "no")
    frame = pd.DataFrame(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    del frame
    started = time.perf_counter()
    read_back = pd.read_parquet(path)  # as automlops' parquet source reads it
    read_seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "columns": read_back.shape[1] - 1,
        "numeric": N_NUMERIC,
        "categorical": len(CATEGORICAL_LEVELS),
        "missing_cells": int(read_back.isna().sum().sum()),
        "in_memory_bytes": int(read_back.memory_usage(deep=True).sum()),
        "in_memory_bytes_shallow": int(read_back.memory_usage(deep=False).sum()),
        "parquet_bytes": path.stat().st_size,
        "read_seconds": read_seconds,
    }


def overrides(trials: int, families: tuple[str, ...] = ("lightgbm",)) -> list[str]:
    dropped = [f"search.space.{name}=null" for name in DEFAULT_FAMILIES if name not in families]
    return [
        *dropped,
        "data.source=parquet",
        "data.path=data/raw/synthetic.parquet",
        "data.name=null",
        "data.target=target",
        "data.task=binary",
        "data.split.strategy=stratified",
        "run.name=scale",
        f"run.seed={SEED}",
        "search=optuna",
        f"search.n_trials={trials}",
        "search.timeout=null",
        "search.progress=false",
        "search.metric=roc_auc",
        "search.validation.method=holdout",  # auto would cross-validate the 10k size only: growth in rows would not be like for like
    ]


# ====================================================================== child: one size, the whole pipeline
def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_now() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return None


def child_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import os

    os.chdir(args.project)
    started = time.perf_counter()
    import lightgbm  # noqa: F401
    import optuna  # noqa: F401
    import pandas  # noqa: F401
    import sklearn  # noqa: F401

    import automlops.search.optuna_engine as optuna_engine
    import automlops.search.resampling as validation
    from automlops.checks import to_typed
    from automlops.config.compose import compose
    from automlops.pipeline import run_evaluate, run_package, run_prepare, run_search

    import_seconds = time.perf_counter() - started
    baseline = _rss_now() or _rss_peak()
    engine: dict[str, float] = {"scoring": 0.0, "refit": 0.0}

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            mark = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                engine[key] += time.perf_counter() - mark

        return wrapper

    validation.score_candidate = timed("scoring", validation.score_candidate)  # fit + predict + score per trial
    optuna_engine._fit_winner = timed("refit", optuna_engine._fit_winner)

    stages: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    mark = time.perf_counter()
    config = to_typed(compose(overrides(args.trials, tuple(args.families.split(",")))))
    stages["compose"] = {"seconds": time.perf_counter() - mark, "peak_rss": _rss_peak()}
    for name, stage in (
        ("prepare", run_prepare),
        ("search", run_search),
        ("evaluate", run_evaluate),
        ("package", run_package),
    ):
        mark = time.perf_counter()
        stage(config)
        stages[name] = {"seconds": time.perf_counter() - mark, "peak_rss": _rss_peak(), "rss_after": _rss_now() or 0}
    wall = time.perf_counter() - t0
    search = json.loads(Path("metrics/search.json").read_text())
    test = json.loads(Path("metrics/test.json").read_text())
    meta = json.loads(Path("data/prepared/meta.json").read_text())
    return {
        "import_seconds": import_seconds,
        "baseline_rss": baseline,
        "timed_seconds": wall,
        "stages": stages,
        "engine_seconds": engine["scoring"] + engine["refit"],
        "engine": engine,
        "trials": search["trials"],
        "valid_roc_auc": search["best_valid_score"],
        "test_roc_auc": test.get("roc_auc"),
        "split_rows": meta["rows"],
    }


def run_as_child(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        if args.child == "generate":
            info = generate(args.rows, Path(args.project) / "data/raw/synthetic.parquet")
        else:
            info = child_pipeline(args)
        _bench.write_json(out, {"status": "ok", **info})
        return 0
    except BaseException as error:
        traceback.print_exc()
        _bench.write_json(
            out, {"status": "failed", "error": f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"}
        )
        return 1


# ====================================================================== parent
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help="comma-separated row counts (default 10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1000 and 10000 rows")
    parser.add_argument("--trials", type=int, default=5, help="Optuna trials per size")
    parser.add_argument(
        "--families", default="lightgbm", help=f"comma-separated, of the default space's {','.join(DEFAULT_FAMILIES)}"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="hard limit per size's pipeline child, s")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new temp dir, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--results", default=str(_bench.RESULTS), help="where scale.md/.json go")
    parser.add_argument("--note", default="", help="a line for the results header (e.g. 'machine shared')")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        args.size_list = [
            int(float(s)) for s in (args.sizes or ("1000,10000" if args.quick else "10000,100000,1000000")).split(",")
        ]
    return args


def exponent(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    if a[key] is None or b[key] is None or a[key] <= 0 or b[key] <= 0 or a["rows"] == b["rows"]:
        return None
    return math.log(b[key] / a[key]) / math.log(b["rows"] / a["rows"])


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in records if r["status"] == "ok"]
    largest = max(ok, key=lambda r: r["rows"]) if ok else None
    growth = []
    for a, b in zip(ok, ok[1:]):
        growth.append(
            {
                "from": a["rows"],
                "to": b["rows"],
                "wall": exponent(a, b, "wall_seconds"),
                "engine": exponent(a, b, "engine_seconds"),
                "non_engine": exponent(a, b, "non_engine_seconds"),
                "peak_rss": exponent(a, b, "peak_rss_bytes"),
            }
        )
    # the largest step decides: at small sizes fixed costs (imports, sqlite, files) dominate
    last = growth[-1] if growth else None
    return {
        "growth_exponents": growth,
        "peak_ratio_at_largest": largest["peak_ratio"] if largest else None,
        "net_peak_ratio_at_largest": largest["net_peak_ratio"] if largest else None,
        "target_peak_ratio_met": bool(largest) and largest["peak_ratio"] < PEAK_RATIO_TARGET,
        "target_linear_met": bool(last) and last["non_engine"] is not None and last["non_engine"] <= GROWTH_TOLERANCE,
    }


def report(records: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    parts = ["### Per size\n"]
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append([f"{r['rows']:,}", r["status"], r.get("error", "")[:120]] + [""] * 9)
            continue
        rows.append(
            [
                f"{r['rows']:,}",
                f"{r['wall_seconds']:.1f}",
                f"{r['engine_seconds']:.1f}",
                f"{r['non_engine_seconds']:.1f}",
                f"{1e6 * r['wall_seconds'] / r['rows']:.1f}",
                f"{1e6 * r['non_engine_seconds'] / r['rows']:.1f}",
                _bench.human_bytes(r["in_memory_bytes"]),
                _bench.human_bytes(r["peak_rss_bytes"]),
                f"{r['peak_ratio']:.2f}x",
                f"{r['net_peak_ratio']:.2f}x",
                r["trials"],
                f"{r['test_roc_auc']:.4f}",
            ]
        )
    parts.append(
        _bench.md_table(
            [
                "rows",
                "wall s",
                "engine s",
                "non-engine s",
                "µs/row",
                "non-engine µs/row",
                "in-memory",
                "peak RSS",
                "peak/in-memory",
                "(peak−baseline)/in-memory",
                "trials",
                "test AUC",
            ],
            rows,
        )
    )
    parts.append(
        "\nwall = compose + prepare + search + evaluate + package in the child (library imports excluded); engine = "
        "time inside the trials' candidate fit/predict/score plus the winner's refit; baseline = RSS after imports.\n"
    )
    parts.append("### Stages: seconds (peak RSS after the stage)\n")
    names = ("compose", "prepare", "search", "evaluate", "package")
    rows = []
    for r in records:
        if r["status"] != "ok":
            continue
        st = r["stages"]
        rows.append(
            [f"{r['rows']:,}"]
            + [f"{st[n]['seconds']:.1f} ({_bench.human_bytes(st[n]['peak_rss'])})" for n in names]
            + [f"{r['engine']['scoring']:.1f}/{r['engine']['refit']:.1f}", f"{r['search_outside_engine']:.1f}"]
        )
    parts.append(_bench.md_table(["rows", *names, "engine scoring/refit s", "search outside engine s"], rows))
    parts.append("\n### Growth between sizes (scaling exponent: 1.0 = linear in rows)\n")
    rows = [
        [f"{g['from']:,} → {g['to']:,}"]
        + [f"{g[k]:.2f}" if g[k] is not None else "-" for k in ("wall", "engine", "non_engine", "peak_rss")]
        for g in summary["growth_exponents"]
    ]
    parts.append(_bench.md_table(["step", "wall", "engine", "non-engine", "peak RSS"], rows))
    parts.append("\n### Targets\n")
    if summary["peak_ratio_at_largest"] is not None:
        parts.append(
            f"- peak RSS / in-memory data at the largest size: {summary['peak_ratio_at_largest']:.2f}x "
            f"(net of the import baseline {summary['net_peak_ratio_at_largest']:.2f}x) → "
            f"**{'met' if summary['target_peak_ratio_met'] else 'NOT met'}** (target < {PEAK_RATIO_TARGET:g}x)"
        )
    if summary["growth_exponents"]:
        last = summary["growth_exponents"][-1]
        shown = f"{last['non_engine']:.2f}" if last["non_engine"] is not None else "-"
        parts.append(
            f"- non-engine time growth over the last step ({last['from']:,} → {last['to']:,} rows): exponent {shown} → "
            f"**{'met' if summary['target_linear_met'] else 'NOT met'}** (target: no worse than linear, exponent ≤ "
            f"{GROWTH_TOLERANCE:g})"
        )
    return "\n".join(parts) + "\n"


def header(args: argparse.Namespace, machine: dict[str, Any], started_at: str, elapsed: float, final: bool) -> str:
    lines = ["# automlops pipeline scale: rows × 50 columns", ""]
    if not final:
        lines += ["**Incomplete: the run is still going (or died); the tables hold the sizes finished so far.**", ""]
    lines += [
        f"- run: {started_at}, took {_bench.duration(elapsed)}",
        f"- command: `{_bench.command_line()}`",
        f"- sizes: {', '.join(f'{s:,}' for s in args.size_list)} rows; {args.trials} Optuna trials, families {args.families}, holdout validation",
        f"- data: {N_NUMERIC} numeric (every 4th with 5-15% missing) + {len(CATEGORICAL_LEVELS)} categorical "
        f"({'/'.join(map(str, CATEGORICAL_LEVELS))} levels, some 8% missing) columns, binary target; Parquet, data.source=parquet",
    ]
    if args.note:
        lines.append(f"- **note: {args.note}**")
    lines += ["", "Machine:", "", _bench.describe_machine(machine), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_as_child(args)
    import shutil

    machine = _bench.machine_info()
    started_at, t_start = _bench.now(), time.perf_counter()
    print(f"scale: sizes {', '.join(f'{s:,}' for s in args.size_list)} rows, {args.trials} trials each", flush=True)
    print(_bench.describe_machine(machine), flush=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="automlops-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results = Path(args.results)
    records: list[dict[str, Any]] = []

    def save(final: bool) -> dict[str, Any]:
        summary = summarise(records)
        text = header(args, machine, started_at, time.perf_counter() - t_start, final) + "\n" + report(records, summary)
        _bench.write_text(results / "scale.md", text)
        _bench.write_json(
            results / "scale.json",
            {
                "benchmark": "scale",
                "complete": final,
                "started_at": started_at,
                "elapsed_seconds": round(time.perf_counter() - t_start, 1),
                "command": _bench.command_line(),
                "note": args.note,
                "sizes": args.size_list,
                "trials": args.trials,
                "machine": machine,
                "records": records,
                "summary": summary,
            },
        )
        return summary

    for rows in args.size_list:
        project = _bench.new_project(work / f"rows-{rows}")
        gen_out = project.parent / f"rows-{rows}-generate.json"
        gen = _bench.run_child(
            [str(SCRIPT), "--child", "generate", "--rows", str(rows), "--project", str(project), "--out", str(gen_out)],
            project.parent / f"rows-{rows}-generate.log",
            timeout=args.timeout,
        )
        data = json.loads(gen_out.read_text()) if gen_out.is_file() else {"status": "failed", "error": gen.tail()}
        record: dict[str, Any] = {"rows": rows, "generate": data}
        if data.get("status") != "ok":
            record.update(status="failed", error=f"generate: {data.get('error')}")
            records.append(record)
            save(final=False)
            continue
        out = project.parent / f"rows-{rows}-pipeline.json"
        child = _bench.run_child(
            [
                str(SCRIPT),
                "--child",
                "pipeline",
                "--trials",
                str(args.trials),
                "--families",
                args.families,
                "--project",
                str(project),
                "--out",
                str(out),
            ],
            project.parent / f"rows-{rows}-pipeline.log",
            timeout=args.timeout,
        )
        info = json.loads(out.read_text()) if out.is_file() else {}
        record.update(
            child_wall_seconds=child.wall_seconds,
            peak_rss_bytes=child.peak_rss_bytes,
            in_memory_bytes=data["in_memory_bytes"],
        )
        if child.timed_out:
            record.update(status="timeout", error=f"killed after {args.timeout:g} s")
        elif info.get("status") != "ok":
            record.update(status="failed", error=info.get("error") or child.tail())
        else:
            record.update(info)
            record["wall_seconds"] = info["timed_seconds"]
            record["non_engine_seconds"] = info["timed_seconds"] - info["engine_seconds"]
            record["search_outside_engine"] = info["stages"]["search"]["seconds"] - info["engine_seconds"]
            record["peak_ratio"] = child.peak_rss_bytes / data["in_memory_bytes"]
            record["net_peak_ratio"] = (child.peak_rss_bytes - info["baseline_rss"]) / data["in_memory_bytes"]
        records.append(record)
        if record["status"] == "ok":
            print(
                f"[{rows:,} rows] wall {record['wall_seconds']:.1f}s (engine {record['engine_seconds']:.1f}s), "
                f"peak RSS {_bench.human_bytes(record['peak_rss_bytes'])}, in-memory {_bench.human_bytes(record['in_memory_bytes'])}, "
                f"ratio {record['peak_ratio']:.2f}x; stages "
                + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in record["stages"].items()),
                flush=True,
            )
        else:
            print(f"[{rows:,} rows] {record['status']}: {record.get('error')}", flush=True)
        save(final=False)
    save(final=True)
    print()
    print((results / "scale.md").read_text())
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(f"results: {results / 'scale.md'} and .json; total {_bench.duration(time.perf_counter() - t_start)}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
