#!/usr/bin/env python3
"""How fast `automlops monitor` checks a large batch against its model's training snapshot, and how
much memory it takes (issue 6: 1,000,000 rows × 50 columns "in well under a minute, bounded memory").

    python benchmarks/monitor.py                        # reference 1M rows, batches of 1M rows
    python benchmarks/monitor.py --quick                # 20k and 20k
    python benchmarks/monitor.py --workdir /tmp/mon     # reuse the model and batches found there

1. A reference table (scale.py's generator: 40 numeric + 10 categorical columns, missing values, a
   binary target) is packaged into a model by the real `automlops run` (Optuna, LightGBM only, one
   trial, the gate's infra check off), in a project folder under --workdir (reused when present).
2. Two unlabelled batches of the same shape: one from the same distribution (another seed) and the
   same batch with drift in three columns (a numeric one shifted by 1 std, a new category in a
   categorical one, 20 points more missing values in a third), as Parquet; the first also as CSV.
3. Per batch, `automlops monitor --model models/monitor@champion --data BATCH --out DIR
   monitor.fail_on_drift=false` as a real child process: wall time, peak RSS (wait4), the batch's
   in-memory size (memory_usage(deep=True)) and the columns monitor.json flags. Then the same work
   in process, phase by phase (imports, bundle, read, statistics + tests, prediction, HTML + JSON),
   in another child, to show where the time and the memory go.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench  # noqa: E402
import scale  # noqa: E402  (its generator: the same 50 columns as the scale benchmark)

SCRIPT = Path(__file__).resolve()
BIN = Path(sys.executable).parent
NAME = "monitor"  # run.name: the bundle is models/monitor
MODEL = f"models/{NAME}@champion"
BATCH_SEED = 7  # the batches' seed (the reference uses scale.SEED)
WALL_TARGET = 60.0  # seconds for 1M × 50 ("well under a minute")
TARGET_ROWS = 1_000_000
# the drifted batch: what changes, in which column
# num_00 is the label's strongest input; num_12 already has 6 % missing values in the reference, so the model's
# input contract lets it be empty and prediction drift is still measured (a column without missing values in
# training is non-nullable: the model then refuses the batch and prediction drift is skipped)
SHIFTED, NEW_LEVEL, MORE_MISSING = "num_00", "cat_1", "num_12"
NEW_LEVEL_SHARE = 0.10  # share of cat_1's rows moved to a level the reference never saw
MISSING_POINTS = 0.20  # 20 more points of num_12's values go missing
PHASES = (
    "imports",
    "config",
    "bundle",
    "read",
    "statistics + tests",
    "prediction",
    "report rest",
    "HTML + JSON",
    "other",
)


# ====================================================================== children: data
def child_reference(args: argparse.Namespace) -> dict[str, Any]:
    return scale.generate(args.rows, Path(args.project) / "data/raw/reference.parquet")


def child_batches(args: argparse.Namespace) -> dict[str, Any]:
    """The same-distribution batch (scale's generator, another seed, no target: production batches
    arrive unlabelled), the drifted copy of it, and the first again as CSV."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    folder = Path(args.batches)
    folder.mkdir(parents=True, exist_ok=True)
    scale.SEED = BATCH_SEED  # generate() seeds its generator from this module global
    raw = folder / "generated.parquet"
    generated = scale.generate(args.rows, raw)
    frame = pd.read_parquet(raw).drop(columns=["target"])
    raw.unlink()
    info: dict[str, Any] = {"rows": args.rows, "generate_seconds": None, "files": {}}
    same = folder / "same.parquet"
    frame.to_parquet(same, index=False)
    started = time.perf_counter()
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), folder / "same.csv")
    info["csv_write_seconds"] = time.perf_counter() - started

    rng = np.random.default_rng(BATCH_SEED + 1)
    shifted = frame[SHIFTED]
    frame[SHIFTED] = shifted + shifted.std()  # 1 std (NaN stay NaN)
    levels = frame[NEW_LEVEL].to_numpy(dtype=object).copy()
    levels[rng.random(len(frame)) < NEW_LEVEL_SHARE] = f"{NEW_LEVEL}_new"
    frame[NEW_LEVEL] = levels
    values = frame[MORE_MISSING].to_numpy(dtype=float).copy()
    before = float(np.isnan(values).mean())
    present = ~np.isnan(values)
    values[present & (rng.random(len(frame)) < MISSING_POINTS / (1 - before))] = np.nan  # +20 points of all rows
    frame[MORE_MISSING] = values
    drift = folder / "drift.parquet"
    frame.to_parquet(drift, index=False)
    info["drift"] = {
        SHIFTED: f"shifted by 1 std ({float(shifted.std()):.3f})",
        NEW_LEVEL: f"{NEW_LEVEL_SHARE:.0%} of rows set to the new level '{NEW_LEVEL}_new'",
        MORE_MISSING: f"missing share {before:.1%} -> {float(np.isnan(values).mean()):.1%}",
    }
    for path in (same, folder / "same.csv", drift):
        info["files"][path.name] = path.stat().st_size
    info["columns"] = frame.shape[1]
    info["generated"] = {k: generated[k] for k in ("numeric", "categorical")}
    return info


# ====================================================================== child: the monitor, phase by phase
def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_now() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return None


def child_phases(args: argparse.Namespace) -> dict[str, Any]:
    """`runner.monitor` itself, with a clock around each function it calls and the peak RSS after each
    phase. The functions are wrapped where they are looked up (not copied), so the numbers are those of
    the code `automlops monitor` runs."""
    os.chdir(args.project)
    started = time.perf_counter()
    import pandas as pd  # noqa: F401

    import automlops.monitor.batches as batches
    import automlops.monitor.html as html
    import automlops.monitor.report as report_module
    import automlops.monitor.runner as runner
    from automlops.runtime_config import runtime_section

    phases: dict[str, dict[str, float]] = {}
    phases["imports"] = {"seconds": time.perf_counter() - started, "peak_rss": _rss_peak(), "rss": _rss_now() or 0}
    seconds: dict[str, float] = {}
    kept: dict[str, Any] = {}

    def timed(key: str, fn: Any, keep: bool = False) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                result = fn(*a, **k)
                if keep:
                    kept[key] = result
                return result
            finally:
                seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t
                if not (key == "tests" and "prediction" in seconds):  # the tests' memory before the prediction's
                    phases[f"_{key}"] = {"peak_rss": _rss_peak(), "rss": _rss_now() or 0}

        return wrapper

    runner.load_bundle = timed("bundle", runner.load_bundle)
    batches.read_batch = timed("read", batches.read_batch, keep=True)
    report_module.monitor_batch = timed("monitor_batch", report_module.monitor_batch)
    report_module._test = timed("tests", report_module._test)  # every input column (and the prediction column)
    report_module._predict = timed("prediction", report_module._predict)
    report_module.to_model_frame = timed("model frame", report_module.to_model_frame)
    report_module.score_rows = timed("model predict", report_module.score_rows)
    html.render_html = timed("html", html.render_html)
    report_module.summary = timed("summary", report_module.summary)
    runner.write_text_atomic = timed("write", runner.write_text_atomic)
    runner.write_json_atomic = timed("write", runner.write_json_atomic)

    mark = time.perf_counter()
    cfg = runtime_section("monitor", ["monitor.fail_on_drift=false", f"monitor.out={args.report}"])
    phases["config"] = {"seconds": time.perf_counter() - mark, "peak_rss": _rss_peak(), "rss": _rss_now() or 0}
    mark = time.perf_counter()
    runner.monitor(MODEL, Path(args.batch), cfg)
    monitor_seconds = time.perf_counter() - mark
    total = time.perf_counter() - started

    def phase(name: str, secs: float, key: str) -> None:
        phases[name] = {"seconds": secs, **phases[f"_{key}"]}

    phase("bundle", seconds["bundle"], "bundle")
    phase("read", seconds["read"], "read")
    phase("statistics + tests", seconds["tests"], "tests")
    phase("prediction", seconds.get("prediction", 0.0), "prediction" if "prediction" in seconds else "tests")
    phase("report rest", seconds["monitor_batch"] - seconds["tests"] - seconds.get("prediction", 0.0), "monitor_batch")
    phase("HTML + JSON", seconds["html"] + seconds["summary"] + seconds["write"], "write")
    phases["other"] = {
        "seconds": monitor_seconds
        - sum(
            phases[n]["seconds"]
            for n in ("bundle", "read", "statistics + tests", "prediction", "report rest", "HTML + JSON")
        ),
        "peak_rss": _rss_peak(),
        "rss": _rss_now() or 0,
    }
    for key in [k for k in phases if k.startswith("_")]:
        del phases[key]
    batch = kept["read"]
    out = Path(args.report)
    return {
        "phases": phases,
        "seconds": seconds,
        "total_seconds": total,
        "monitor_seconds": monitor_seconds,
        "in_memory_bytes": int(batch.memory_usage(deep=True).sum()),
        "in_memory_bytes_shallow": int(batch.memory_usage(deep=False).sum()),
        "rows": len(batch),
        "columns": batch.shape[1],
        "html_bytes": (out / runner.REPORT_HTML).stat().st_size,
        "json_bytes": (out / runner.REPORT_JSON).stat().st_size,
    }


def run_as_child(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        info = {"reference": child_reference, "batches": child_batches, "phases": child_phases}[args.child](args)
        _bench.write_json(out, {"status": "ok", **info})
        return 0
    except BaseException as error:
        traceback.print_exc()
        _bench.write_json(
            out, {"status": "failed", "error": f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"}
        )
        return 1


# ====================================================================== parent
def _child(extra: list[str], stem: Path, timeout: float) -> tuple[dict[str, Any], _bench.ChildRun]:
    out = stem.with_suffix(".json")
    out.unlink(missing_ok=True)
    child = _bench.run_child([str(SCRIPT), *extra, "--out", str(out)], stem.with_suffix(".log"), timeout=timeout)
    if out.is_file():
        return json.loads(out.read_text()), child
    return {
        "status": "failed",
        "error": f"{'timeout' if child.timed_out else f'exit {child.returncode}'}: {child.tail()}",
    }, child


def run_overrides() -> list[str]:
    """scale.py's run, cut to one trial, under its own name, without the gate's serving check and the
    evaluate stage's extras (neither changes the bundle's statistics)."""
    keep = [o for o in scale.overrides(1) if not o.startswith(("data.path=", "run.name="))]
    return [
        *keep,
        "data.path=data/raw/reference.parquet",
        f"run.name={NAME}",
        "gate.infra.enabled=false",
        "evaluate.importance_repeats=0",
        "evaluate.plots=false",
    ]


def find_bundle(project: Path) -> Path | None:
    versions = project / "models" / NAME / "versions"
    found = (
        sorted(
            (p for p in versions.glob("*") if (p / "manifest.json").is_file() and p.name.isdigit()),
            key=lambda p: int(p.name),
        )
        if versions.is_dir()
        else []
    )
    return found[-1] if found else None


def make_model(project: Path, args: argparse.Namespace) -> dict[str, Any]:
    existing = find_bundle(project)
    reference = project / "data/raw/reference.json"
    if existing is not None and reference.is_file():
        print(f"[model] reusing {existing}", flush=True)
        return {**json.loads(reference.read_text()), "bundle": str(existing), "reused": True}
    _bench.new_project(project)
    data, _ = _child(
        ["--child", "reference", "--rows", str(args.ref_rows), "--project", str(project)],
        project.parent / "reference",
        timeout=args.timeout,
    )
    if data["status"] != "ok":
        return data
    command = ["-m", "automlops", "run", *run_overrides()]
    print(f"[model] automlops {' '.join(command[2:])}", flush=True)
    run = _bench.run_child(
        command,
        project.parent / "run.log",
        timeout=args.timeout * 4,
        cwd=project,
        env={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    bundle = find_bundle(project)
    if not run.ok or bundle is None:
        return {
            "status": "failed",
            "error": f"automlops run: {'timeout' if run.timed_out else run.returncode}: {run.tail()}",
        }
    print(
        f"[model] {bundle} in {run.wall_seconds:.0f} s (peak RSS {_bench.human_bytes(run.peak_rss_bytes)})", flush=True
    )
    info = {**data, "run_seconds": run.wall_seconds, "run_peak_rss_bytes": run.peak_rss_bytes}
    _bench.write_json(reference, info)
    return {**info, "bundle": str(bundle), "reused": False}


def make_batches(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    meta = folder / "batches.json"
    if meta.is_file() and all((folder / f).is_file() for f in ("same.parquet", "drift.parquet", "same.csv")):
        print(f"[batches] reusing {folder}", flush=True)
        return {**json.loads(meta.read_text()), "reused": True}
    data, child = _child(
        ["--child", "batches", "--rows", str(args.rows), "--batches", str(folder)],
        folder.parent / "batches",
        timeout=args.timeout,
    )
    if data["status"] == "ok":
        data["seconds"] = child.wall_seconds
        _bench.write_json(meta, data)
    return {**data, "reused": False}


BATCHES: tuple[tuple[str, str, set[str]], ...] = (  # label, file, what monitor.json should flag
    ("same distribution", "same.parquet", set()),
    ("drifted", "drift.parquet", {SHIFTED, NEW_LEVEL, MORE_MISSING}),
    ("same distribution (CSV)", "same.csv", set()),
)


def measure(
    label: str, file: str, expected: set[str], project: Path, folder: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    slug = file.replace(".", "-")
    batch = folder / file
    out = work / "reports" / slug
    cli = [
        "-m",
        "automlops",
        "monitor",
        "--model",
        MODEL,
        "--data",
        str(batch),
        "--out",
        str(out),
        "monitor.fail_on_drift=false",
    ]
    (out / "monitor.json").unlink(missing_ok=True)
    run = _bench.run_child(cli, work / "logs" / f"{slug}-cli.log", timeout=args.timeout, cwd=project)
    record: dict[str, Any] = {
        "batch": label,
        "file": file,
        "file_bytes": batch.stat().st_size,
        "expected": sorted(expected),
        "wall_seconds": run.wall_seconds,
        "peak_rss_bytes": run.peak_rss_bytes,
        "returncode": run.returncode,
    }
    if not run.ok or not (out / "monitor.json").is_file():
        record.update(status="timeout" if run.timed_out else "failed", error=run.tail())
        return record
    summary = json.loads((out / "monitor.json").read_text())
    flagged = sorted(summary["dataset_drift"]["drifted_columns"])
    prediction = summary.get("prediction_drift") or {}
    record.update(
        status="ok",
        rows=summary["batch"]["rows"],
        flagged=flagged,
        flagged_ok=set(flagged) == expected,
        columns={
            name: summary["columns"][name] for name in sorted(set(flagged) | expected) if name in summary["columns"]
        },
        prediction_drift=prediction,
        dataset_drift=summary["dataset_drift"]["drifted"],
        drift=summary["drift"],
        largest=_largest(summary, expected),
    )
    if not args.no_phases:
        phases, child = _child(
            [
                "--child",
                "phases",
                "--project",
                str(project),
                "--batch",
                str(batch),
                "--report",
                str(work / "reports" / f"{slug}-phases"),
            ],
            work / "logs" / f"{slug}-phases",
            timeout=args.timeout,
        )
        record["phases"] = {
            **phases,
            "child_wall_seconds": child.wall_seconds,
            "child_peak_rss_bytes": child.peak_rss_bytes,
        }
        if phases.get("status") == "ok":
            record["in_memory_bytes"] = phases["in_memory_bytes"]
            record["peak_ratio"] = run.peak_rss_bytes / phases["in_memory_bytes"]
            base = phases["phases"]["bundle"]["rss"] or phases["phases"]["bundle"]["peak_rss"]
            record["baseline_rss"] = base
            record["net_peak_ratio"] = (run.peak_rss_bytes - base) / phases["in_memory_bytes"]
    return record


def _largest(summary: dict[str, Any], expected: set[str]) -> list[dict[str, Any]]:
    """The unchanged columns that came closest to their threshold (statistic / threshold, distances only)."""
    near = []
    for name, c in summary["columns"].items():
        if name in expected or c["statistic"] is None or c["method"] in ("ks", "chisquare"):
            continue
        near.append(
            {
                "column": name,
                "method": c["method"],
                "statistic": c["statistic"],
                "of_threshold": c["statistic"] / c["threshold"],
                "missing_change": c["missing_change"],
            }
        )
    return sorted(near, key=lambda c: -c["of_threshold"])[:3]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000-row reference and batches")
    parser.add_argument("--ref-rows", type=int, default=None, help="reference rows (default 1,000,000; --quick 20,000)")
    parser.add_argument("--rows", type=int, default=None, help="rows per batch (default 1,000,000; --quick 20,000)")
    parser.add_argument("--no-phases", action="store_true", help="skip the in-process phase timing children")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="hard limit per child, s (the model's run gets 4x)"
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="scratch folder, reused when present: the model and batches found "
        "there are not made again (default: a new temp dir, removed at the end)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--results", default=str(_bench.RESULTS), help="where monitor.md/.json go")
    parser.add_argument("--note", default="", help="a line for the results header (e.g. 'machine shared')")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--batches", help=argparse.SUPPRESS)
    parser.add_argument("--batch", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    default = 20_000 if args.quick else TARGET_ROWS
    args.ref_rows = args.ref_rows or default
    args.rows = args.rows or default
    return args


def summarise(records: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    parquet = [r for r in records if r["status"] == "ok" and r["file"].endswith(".parquet")]
    worst = max(parquet, key=lambda r: r["wall_seconds"]) if parquet else None
    peak = max(parquet, key=lambda r: r["peak_rss_bytes"]) if parquet else None
    return {
        "rows": rows,
        "worst_wall_seconds": worst["wall_seconds"] if worst else None,
        "peak_rss_bytes": peak["peak_rss_bytes"] if peak else None,
        "peak_ratio": peak.get("peak_ratio") if peak else None,
        "in_memory_bytes": peak.get("in_memory_bytes") if peak else None,
        "target_wall_met": worst is not None and worst["wall_seconds"] < WALL_TARGET,
        "flags_as_expected": bool(parquet) and all(r["flagged_ok"] for r in records if r["status"] == "ok"),
    }


def _phase_cell(record: dict[str, Any], name: str) -> str:
    phases = (record.get("phases") or {}).get("phases")
    if not phases or name not in phases:
        return "-"
    p = phases[name]
    return f"{p['seconds']:.1f} ({_bench.human_bytes(p['peak_rss'])})"


def report(records: list[dict[str, Any]], summary: dict[str, Any], batches: dict[str, Any]) -> str:
    parts = ["### Per batch: `automlops monitor` as a child process\n"]
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append([r["batch"], r["status"], (r.get("error") or "")[:120]] + [""] * 7)
            continue
        pred = r["prediction_drift"]
        pred_cell = (
            f"{'drifted' if pred.get('drifted') else 'no'} ({pred['method']} {pred['statistic']:.3f})" if pred else "-"
        )
        rows.append(
            [
                r["batch"],
                f"{r['rows']:,}",
                _bench.human_bytes(r["file_bytes"]),
                f"{r['wall_seconds']:.1f}",
                _bench.human_bytes(r["peak_rss_bytes"]),
                _bench.human_bytes(r.get("in_memory_bytes")),
                f"{r['peak_ratio']:.2f}x" if r.get("peak_ratio") else "-",
                f"{r['net_peak_ratio']:.2f}x" if r.get("net_peak_ratio") else "-",
                ", ".join(r["flagged"]) or "none",
                ("as expected" if r["flagged_ok"] else "**NOT as expected**"),
                pred_cell,
            ]
        )
    parts.append(
        _bench.md_table(
            [
                "batch",
                "rows",
                "file",
                "wall s",
                "peak RSS",
                "in-memory",
                "peak/in-memory",
                "(peak−baseline)/in-memory",
                "columns flagged",
                "flags",
                "prediction drift",
            ],
            rows,
        )
    )
    parts.append(
        "\nwall = the whole `automlops monitor` process (interpreter start, imports, config, bundle, read, report, files); "
        "in-memory = `memory_usage(deep=True)` of the batch as `automlops monitor` reads it; baseline = RSS after the "
        "imports and the bundle's load, in the phase child.\n"
    )
    parts.append("### Phases, in process: seconds (peak RSS after the phase)\n")
    rows = []
    for r in records:
        if r["status"] == "ok" and (r.get("phases") or {}).get("status") == "ok":
            inner = r["phases"]["seconds"]
            rows.append(
                [
                    r["batch"],
                    *(_phase_cell(r, name) for name in PHASES),
                    f"{inner.get('model frame', 0):.1f} / {inner.get('model predict', 0):.1f}",
                    f"{r['phases']['total_seconds']:.1f}",
                ]
            )
    parts.append(_bench.md_table(["batch", *PHASES, "prediction: validate / model s", "total s"], rows))
    parts.append(
        "\nstatistics + tests = the batch's per-column statistics on the reference's bins and each column's test "
        "(`report._test`, all columns); prediction = typing the batch by the input contract and the model's "
        "`predict` on every row, for prediction drift; report rest = the rest of `monitor_batch`.\n"
    )
    parts.append("### Closest calls among the unchanged columns (statistic / threshold)\n")
    rows = [
        [
            r["batch"],
            "; ".join(
                f"{c['column']} {c['method']} {c['statistic']:.4f} ({c['of_threshold']:.2f} of it)"
                for c in r["largest"]
            ),
        ]
        for r in records
        if r["status"] == "ok"
    ]
    parts.append(_bench.md_table(["batch", "largest three"], rows))
    parts.append("\n### Drift put into the drifted batch\n")
    parts.extend(f"- `{name}`: {what}" for name, what in (batches.get("drift") or {}).items())
    parts.append("\n### Targets\n")
    if summary["worst_wall_seconds"] is not None:
        met = "met" if summary["target_wall_met"] else "NOT met"
        ratio = (
            f" = {summary['peak_ratio']:.2f} × the batch's in-memory size ({_bench.human_bytes(summary['in_memory_bytes'])})"
            if summary["peak_ratio"]
            else ""
        )
        parts.append(
            f"- {summary['rows']:,} × 50 monitored in {summary['worst_wall_seconds']:.1f} s (slowest Parquet batch; "
            f"target: well under a minute, < {WALL_TARGET:g} s) → **{met}**; peak RSS "
            f"{_bench.human_bytes(summary['peak_rss_bytes'])}{ratio}"
        )
        if summary["rows"] != TARGET_ROWS:
            parts.append(
                f"- (not the target size: {summary['rows']:,} rows per batch, so the target is not judged on this run)"
            )
    for r in records:
        if r["status"] != "ok" or r["flagged_ok"]:
            continue
        extra, missed = sorted(set(r["flagged"]) - set(r["expected"])), sorted(set(r["expected"]) - set(r["flagged"]))
        parts.append(
            f"- {r['batch']}: flagged but unchanged: {', '.join(map(_levels, extra)) or 'none'}; changed but not flagged: "
            f"{', '.join(missed) or 'none'}"
        )
    parts.append(
        f"- columns flagged as expected (none on the same-distribution batches, exactly {SHIFTED}, {NEW_LEVEL}, "
        f"{MORE_MISSING} on the drifted one) → **{'yes' if summary['flags_as_expected'] else 'NO'}**"
    )
    return "\n".join(parts) + "\n"


def _levels(column: str) -> str:
    """A generated categorical column with the number of levels it was drawn from."""
    if column.startswith("cat_"):
        return f"{column} ({scale.CATEGORICAL_LEVELS[int(column[4:])]:,} levels)"
    return column


def header(
    args: argparse.Namespace,
    machine: dict[str, Any],
    uptime: str,
    model: dict[str, Any],
    batches: dict[str, Any],
    started_at: str,
    elapsed: float,
    final: bool,
) -> str:
    lines = ["# automlops monitor: a batch of rows × 50 columns against its model's training snapshot", ""]
    if not final:
        lines += ["**Incomplete: the run is still going (or died); the tables hold the batches finished so far.**", ""]
    made = (
        "reused from --workdir"
        if model.get("reused")
        else f"made in {model.get('run_seconds', 0):.0f} s, peak RSS {_bench.human_bytes(model.get('run_peak_rss_bytes'))}"
    )
    lines += [
        f"- run: {started_at}, took {_bench.duration(elapsed)}",
        f"- command: `{_bench.command_line()}`",
        f"- reference: {args.ref_rows:,} rows (train + valid, {0.8 * args.ref_rows:,.0f} rows, are the model's statistics); "
        f"model `{MODEL}`: Optuna, 1 trial, LightGBM only ({made})",
        f"- batches: {args.rows:,} rows × {batches.get('columns', 50)} columns (no target), scale.py's generator with seed "
        f"{BATCH_SEED}; Parquet, and the same-distribution batch also as CSV",
        f"- `uptime` at start: {uptime}",
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
    import subprocess

    machine = _bench.machine_info()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    machine["uptime_at_start"] = uptime
    started_at, t_start = _bench.now(), time.perf_counter()
    print(f"monitor: reference {args.ref_rows:,} rows, batches {args.rows:,} rows", flush=True)
    print(_bench.describe_machine(machine), flush=True)
    print(f"uptime: {uptime}", flush=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="automlops-bench-monitor-"))
    work.mkdir(parents=True, exist_ok=True)
    results = Path(args.results)
    records: list[dict[str, Any]] = []
    model: dict[str, Any] = {}
    batches: dict[str, Any] = {}

    def save(final: bool) -> dict[str, Any]:
        summary = summarise(records, args.rows)
        elapsed = time.perf_counter() - t_start
        text = (
            header(args, machine, uptime, model, batches, started_at, elapsed, final)
            + "\n"
            + report(records, summary, batches)
        )
        _bench.write_text(results / "monitor.md", text)
        _bench.write_json(
            results / "monitor.json",
            {
                "benchmark": "monitor",
                "complete": final,
                "started_at": started_at,
                "elapsed_seconds": round(elapsed, 1),
                "command": _bench.command_line(),
                "note": args.note,
                "reference_rows": args.ref_rows,
                "batch_rows": args.rows,
                "machine": machine,
                "model": model,
                "batches": batches,
                "records": records,
                "summary": summary,
            },
        )
        return summary

    project = work / f"ref-{args.ref_rows}" / "project"
    model = make_model(project, args)
    if model.get("status", "ok") != "ok":
        print(f"[model] failed: {model.get('error')}", flush=True)
        save(final=True)
        return 1
    folder = work / f"batches-{args.rows}"
    batches = make_batches(folder, args)
    if batches.get("status") != "ok":
        print(f"[batches] failed: {batches.get('error')}", flush=True)
        save(final=True)
        return 1
    for label, file, expected in BATCHES:
        record = measure(label, file, expected, project, folder, work / f"runs-{args.ref_rows}-{args.rows}", args)
        records.append(record)
        if record["status"] == "ok":
            print(
                f"[{label}] {record['wall_seconds']:.1f} s, peak RSS {_bench.human_bytes(record['peak_rss_bytes'])}"
                f" ({record.get('peak_ratio', 0):.2f}x of {_bench.human_bytes(record.get('in_memory_bytes'))}); flagged "
                f"{', '.join(record['flagged']) or 'none'}; phases "
                + ", ".join(
                    f"{k} {v['seconds']:.1f}s" for k, v in ((record.get("phases") or {}).get("phases") or {}).items()
                ),
                flush=True,
            )
        else:
            print(f"[{label}] {record['status']}: {record.get('error')}", flush=True)
        save(final=False)
    summary = save(final=True)
    print()
    print((results / "monitor.md").read_text())
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(f"results: {results / 'monitor.md'} and .json; total {_bench.duration(time.perf_counter() - t_start)}")
    return 0 if all(r["status"] == "ok" for r in records) and summary["flags_as_expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
