#!/usr/bin/env python3
"""Serving latency and throughput: `automlops serve` over HTTP against the raw model in process and
against `mlflow models serve` on the same model, for a LightGBM bundle and an AutoGluon bundle.

    python benchmarks/serving.py                          # 2000 requests or 20 s per cell, concurrency 1 and 16
    python benchmarks/serving.py --quick                  # smoke run: 200 requests or 5 s per cell
    python benchmarks/serving.py --bundles lightgbm --servers automlops --workdir /tmp/sv --keep

Both bundles are made here, by `automlops run` in a scratch project on the `fair` dataset
(statsmodels, 6,366 rows, 6 numeric + 2 categorical columns): a LightGBM-only Optuna search and an
AutoGluon search with a small time limit. For each bundle, on the same rows of the test split:

- in process (a child): `bundle.model.predict` on a one-row typed frame (what the model itself
  costs), `predict_frame` (plus the input contract's validation and the decision rule, as
  `automlops predict` runs it), `predict_frame` with probabilities (what MLflow's pyfunc wrapper
  runs), and the server's model call (score_arrays on the bundle as `automlops serve` loads it:
  a scikit-learn pipeline is called step by step, serve/direct.py);
- `automlops serve --model <bundle>` on a free loopback port: GET /health at concurrency 1 (no
  model, no body: the floor set by HTTP, the client and the ASGI stack), POST /predict (a list of
  records) and /invocations (MLflow's {"dataframe_records": [...]}); an endpoint that answers 404 is skipped;
- `mlflow models serve -m models:/<name>@champion --env-manager local` (when mlflow is installed),
  the bundle logged by the project's own mlflow deploy target: POST /invocations.

Load comes from a separate process (asyncio + aiohttp, keep-alive connections), one row
per request, at each concurrency, bounded by a request count and a time limit after a warm-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench  # noqa: E402

SCRIPT = Path(__file__).resolve()
BIN = Path(sys.executable).parent
DATASET = "fair"  # benchmarks/_datasets.py: binary, 6,366 rows, numeric and categorical columns
BUNDLES = ("lightgbm", "autogluon")
SERVERS = ("automlops", "mlflow")
# (server, endpoint, body shape): the HTTP cells of one bundle, in the order they run
ENDPOINTS = (
    ("automlops", "/health", "get"),
    ("automlops", "/predict", "records"),
    ("automlops", "/invocations", "dataframe_records"),
    ("mlflow", "/invocations", "dataframe_records"),
)
# /health: no model and no body, so its p50 is the floor that HTTP, the client and the ASGI stack set
IN_PROCESS = ("model.predict", "predict_frame", "predict_frame+proba", "server model call")
SEED = 42
SAMPLE_ROWS = 200  # distinct test rows the requests cycle through
CHECK_ROWS = 20  # rows whose served prediction is compared with predict_frame's before the load
LATENCY_TARGET_MS = 2.0  # LightGBM: HTTP p50 at concurrency 1 minus in-process model.predict p50
THROUGHPUT_TARGET = 3.0  # rows/s at concurrency 16: automlops / MLflow on the same model
SERVER_START_SECONDS = 240  # an AutoGluon predictor takes a while to load in a fresh process on 2 cores
NOISY_OTHER_CORES = 0.2  # CPU used by processes outside the benchmark during a cell, in cores


# ====================================================================== shared measurement helpers
def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class CpuMeter:
    """CPU used between start() and stop(), in cores (CPU seconds per wall second): this process,
    the server's process tree, and everything else on the machine (busy time minus both), which
    says whether other work shared the cores. Needs psutil for all but this process."""

    def __init__(self, server_pid: int | None = None) -> None:
        try:
            import psutil
        except ImportError:
            psutil = None
        self.psutil, self.server_pid = psutil, server_pid

    def _server(self) -> float | None:
        if self.psutil is None or self.server_pid is None:
            return None
        total = 0.0
        try:
            root = self.psutil.Process(self.server_pid)
            for process in [root, *root.children(recursive=True)]:
                try:
                    times = process.cpu_times()
                    total += times.user + times.system
                except self.psutil.NoSuchProcess:
                    pass
        except self.psutil.NoSuchProcess:
            return None
        return total

    def _busy(self) -> float | None:
        if self.psutil is None:
            return None
        times = self.psutil.cpu_times()
        return (
            sum(times)
            - times.idle
            - getattr(times, "iowait", 0.0)
            - getattr(times, "guest", 0.0)
            - getattr(times, "guest_nice", 0.0)
        )

    def start(self) -> None:
        self.t0, self.self0, self.server0, self.busy0 = (
            time.perf_counter(),
            time.process_time(),
            self._server(),
            self._busy(),
        )

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        mine = time.process_time() - self.self0
        server_end, busy_end = self._server(), self._busy()
        server = server_end - self.server0 if server_end is not None and self.server0 is not None else None
        busy = busy_end - self.busy0 if busy_end is not None and self.busy0 is not None else None
        other = max(0.0, busy - mine - (server or 0.0)) if busy is not None else None
        return {
            "wall_s": wall,
            "self_cpu_s": mine,
            "server_cpu_s": server,
            "other_cpu_s": other,
            "self_cores": mine / wall,
            "server_cores": None if server is None else server / wall,
            "other_cores": None if other is None else other / wall,
        }


def summarise_latencies(latencies: list[float], wall: float, errors: int) -> dict[str, Any]:
    return {
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 3),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "mean_ms": _ms(sum(latencies) / len(latencies) if latencies else None),
        "rows_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 4)


# ====================================================================== child: data and bundles
def child_data(args: argparse.Namespace) -> dict[str, Any]:
    from _datasets import DATASETS

    frame = DATASETS[DATASET].load()
    path = Path(args.project) / "data" / "raw" / f"{DATASET}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return {"rows": len(frame), "columns": len(frame.columns) - 1}


def run_overrides(kind: str, args: argparse.Namespace) -> list[str]:
    from _datasets import DATASETS

    ds = DATASETS[DATASET]
    common = [
        "data.source=parquet",
        f"data.path=data/raw/{DATASET}.parquet",
        "data.name=null",
        f"data.target={ds.target}",
        f"data.task={ds.task}",
        f"data.split.strategy={ds.split_strategy}",
        f"run.name={bundle_name(kind)}",
        f"run.seed={SEED}",
    ]
    if kind == "lightgbm":
        return common + [
            "search=optuna",
            "search.space.random_forest=null",
            "search.space.linear=null",
            f"search.n_trials={args.trials}",
            "search.progress=false",
        ]
    return common + ["search=autogluon", f"search.timeout={args.ag_timeout:g}"]


def bundle_name(kind: str) -> str:
    return f"{DATASET}_{kind}"


def find_bundle(project: Path, kind: str) -> Path | None:
    """The newest registered version of the bundle `automlops run` made in this project."""
    versions = project / "models" / bundle_name(kind) / "versions"
    found = (
        sorted(
            (p for p in versions.glob("*") if (p / "manifest.json").is_file() and p.name.isdigit()),
            key=lambda p: int(p.name),
        )
        if versions.is_dir()
        else []
    )
    return found[-1] if found else None


def child_mlflow_log(args: argparse.Namespace) -> dict[str, Any]:
    """Log the bundle with the project's own mlflow deploy target into a scratch SQLite store."""
    import automlops.deploy.mlflow_target  # noqa: F401  (registers the target)
    from automlops.bundle import read_manifest
    from automlops.config.schema import DeployConfig, MlflowConfig
    from automlops.deploy.targets import TARGETS, Release

    bundle = Path(args.bundle)
    manifest = read_manifest(bundle)
    cfg = DeployConfig(
        targets=["bundle", "mlflow"],
        mlflow=MlflowConfig(tracking_uri=args.tracking_uri, experiment="serving-benchmark"),
    )
    record = TARGETS.get("mlflow")(
        Release(name=manifest["name"], bundle=bundle, manifest=manifest, alias="champion"), cfg
    )
    return {"tracking_uri": args.tracking_uri, "model_uri": record["serve_uri"], "version": record["version"]}


# ====================================================================== child: in process
def child_in_process(args: argparse.Namespace) -> dict[str, Any]:
    """Writes the rows every server gets (JSON records, as a client would send them) and what
    predict_frame answers for them, then times the model and predict_frame on one row at a time."""
    import pandas as pd

    from automlops.bundle import load_bundle
    from automlops.data.contract import enforce_contract
    from automlops.scoring import predict_frame
    from automlops.tables import records_from_json

    started = time.perf_counter()
    bundle = load_bundle(Path(args.bundle))
    load_seconds = time.perf_counter() - started
    columns = [spec["name"] for spec in bundle.manifest["input_schema"]]
    test = pd.read_parquet(Path(args.project) / "data" / "prepared" / "test.parquet")[columns]
    sample = test.sample(min(SAMPLE_ROWS, len(test)), random_state=SEED)
    records = json.loads(sample.to_json(orient="records", double_precision=15))  # NaN -> null, numpy -> JSON numbers
    frames = [records_from_json(json.loads(json.dumps([record]))) for record in records]  # as a server decodes a body
    typed = [enforce_contract(frame, bundle.contract) for frame in frames]
    policy = _serve_policy()
    expected = [
        _plain(predict_frame(bundle, frame, probabilities=False, **policy)["prediction"].iloc[0])
        for frame in frames[:CHECK_ROWS]
    ]
    _bench.write_json(Path(args.run_dir) / "rows.json", records)
    _bench.write_json(Path(args.run_dir) / "expected.json", expected)

    model = bundle.model
    calls: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {
        "model.predict": (model.predict, typed),
        "predict_frame": (lambda frame: predict_frame(bundle, frame, probabilities=False, **policy), frames),
        "predict_frame+proba": (lambda frame: predict_frame(bundle, frame, probabilities=True, **policy), frames),
    }
    served = _served_model_call(Path(args.bundle))
    if served is not None:
        calls["server model call"] = (served, typed)
    results = time_calls(calls, args.requests, args.seconds * len(calls), args.warmup)
    for name, r in results.items():
        print(
            f"  in process {name:20s} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  {r['rows_per_s']:.0f} rows/s",
            flush=True,
        )
    return {
        "load_seconds": load_seconds,
        "family": bundle.manifest["model"]["family"],
        "format": bundle.manifest["model"]["format"],
        "features": len(columns),
        "sample_rows": len(records),
        "test_metrics": bundle.manifest["metrics"]["test"],
        "predict_frame_options": policy,
        "calls": results,
    }


def _served_model_call(path: Path) -> Callable[[Any], Any] | None:
    """What `automlops serve` runs per batch of typed rows (score_arrays on the bundle as the server
    loads it, e.g. a pipeline called step by step), where this automlops has those functions."""
    try:
        from automlops.scoring import score_arrays
        from automlops.serve.holder import load_warm
    except ImportError:
        return None
    served = load_warm(path)
    return lambda x: score_arrays(served, x, False)


def _serve_policy() -> dict[str, Any]:
    """predict_frame's options as `automlops serve` sets them by default (the unknown-category
    policy, where this automlops has one), so the in-process call does the server's work."""
    import inspect

    from automlops.scoring import predict_frame

    if "unknown_categories" not in inspect.signature(predict_frame).parameters:
        return {}
    try:
        from automlops.config.schema import ServeConfig
    except ImportError:
        return {}
    policy = getattr(ServeConfig(), "unknown_categories", None)
    return {"unknown_categories": policy} if policy else {}


def time_calls(
    calls: dict[str, tuple[Callable[[Any], Any], list[Any]]], max_calls: int, seconds: float, warmup: int
) -> dict[str, dict[str, Any]]:
    """Each call on the same row in turn (interleaved, so a burst of other work on the machine hits
    every call alike) until each has run max_calls times or the time is up. One thread, one row at
    a time: rows/s is 1 / mean latency."""
    for i in range(warmup):
        for call, inputs in calls.values():
            call(inputs[i % len(inputs)])
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    meter = CpuMeter()
    deadline = time.perf_counter() + seconds
    meter.start()
    for i in range(max_calls):
        if time.perf_counter() >= deadline:
            break
        for name, (call, inputs) in calls.items():
            mark = time.perf_counter()
            call(inputs[i % len(inputs)])
            latencies[name].append(time.perf_counter() - mark)
    cpu = meter.stop()
    return {name: {**summarise_latencies(values, sum(values), 0), "cpu": cpu} for name, values in latencies.items()}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ====================================================================== child: load generator
def child_load(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    spec = json.loads(Path(args.spec).read_text())
    return asyncio.run(_load(spec))


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """Probe every (server, endpoint) first, then run the cells concurrency by concurrency, each
    server's endpoints one after the other, so a drift in the machine's load spreads over them.
    aiohttp: per request it costs the client about half of what httpx does, and at concurrency 16
    the client shares the two cores with the server it measures."""
    import aiohttp

    records = json.loads(Path(spec["rows"]).read_text())
    expected = json.loads(Path(spec["expected"]).read_text())
    top = max(spec["concurrency"])
    out: dict[str, Any] = {"probes": [], "cells": []}
    clients = {
        server["name"]: aiohttp.ClientSession(
            base_url=server["url"],
            connector=aiohttp.TCPConnector(limit=top),
            timeout=aiohttp.ClientTimeout(total=spec["request_timeout"]),
        )
        for server in spec["servers"]
    }
    try:
        targets = []
        for server in spec["servers"]:
            for endpoint, shape in server["endpoints"]:
                bodies = [None] if shape == "get" else [json.dumps(_body(shape, record)).encode() for record in records]
                probe = await _probe(clients[server["name"]], endpoint, bodies, expected)
                out["probes"].append({"server": server["name"], "endpoint": endpoint, **probe})
                print(
                    f"  {server['name']} {endpoint}: {probe['status']}{' (' + probe['note'] + ')' if probe.get('note') else ''}",
                    flush=True,
                )
                if probe["status"] != "absent":
                    targets.append((server, endpoint, shape, bodies))
        for concurrency in spec["concurrency"]:
            for server, endpoint, shape, bodies in targets:
                if shape == "get" and concurrency > 1:  # the floor is a one-request figure
                    continue
                client = clients[server["name"]]
                await _run_load(
                    client, endpoint, bodies, concurrency, spec["warmup"], min(spec["seconds"], 5.0)
                )  # warm-up
                meter = CpuMeter(server["pid"])
                meter.start()
                latencies, errors, examples = await _run_load(
                    client, endpoint, bodies, concurrency, spec["requests"], spec["seconds"]
                )
                cpu = meter.stop()
                cell = {
                    "server": server["name"],
                    "endpoint": endpoint,
                    "body": shape,
                    "concurrency": concurrency,
                    **summarise_latencies(latencies, cpu["wall_s"], errors),
                    "error_examples": examples,
                    "cpu": cpu,
                }
                out["cells"].append(cell)
                print(
                    f"  {server['name']} {endpoint} c={concurrency}: {cell['ok']} ok, {errors} errors, p50 {cell['p50_ms']} ms, "
                    f"p99 {cell['p99_ms']} ms, {cell['rows_per_s']} rows/s",
                    flush=True,
                )
    finally:
        for client in clients.values():
            await client.close()
    return out


async def _send(client: Any, endpoint: str, body: bytes | None) -> tuple[int, str]:
    """The status and text of one request: a GET without a body, else a JSON POST."""
    if body is None:
        async with client.get(endpoint) as answer:
            return answer.status, await answer.text()
    async with client.post(endpoint, data=body, headers={"Content-Type": "application/json"}) as answer:
        return answer.status, await answer.text()


def _body(shape: str, record: dict[str, Any]) -> Any:
    return [record] if shape == "records" else {"dataframe_records": [record]}


async def _probe(client: Any, endpoint: str, bodies: list[bytes | None], expected: list[Any]) -> dict[str, Any]:
    """One request first: 404/405 means the server has no such endpoint (skipped). Then the first
    CHECK_ROWS rows one by one, each answer compared with predict_frame's prediction."""
    status, text = await _send(client, endpoint, bodies[0])
    if status in (404, 405):
        return {"status": "absent", "note": f"HTTP {status}: {text[:120]}"}
    example_answer = text[:300]
    if bodies[0] is None:  # a probe endpoint, no predictions to check
        return {
            "status": "ok" if status == 200 else "check failed",
            "checked": 0,
            "mismatches": 0,
            "note": "" if status == 200 else f"HTTP {status}",
            "example_answer": example_answer,
        }
    mismatches, failures = 0, []
    for body, want in zip(bodies, expected):
        status, text = await _send(client, endpoint, body)
        if status != 200:
            failures.append(f"HTTP {status}: {text[:200]}")
            continue
        try:
            got = _first_prediction(json.loads(text))
        except (ValueError, KeyError, IndexError, TypeError) as error:
            failures.append(f"unreadable answer ({type(error).__name__}): {text[:200]}")
            continue
        mismatches += not _same(got, want)
    checked = len(expected) - len(failures)
    status_word = "ok" if not failures and not mismatches else "check failed"
    note = "; ".join(
        filter(
            None,
            [
                f"{mismatches}/{checked} predictions differ from predict_frame" if mismatches else "",
                f"{len(failures)} failed: {failures[0]}" if failures else "",
            ],
        )
    )
    return {
        "status": status_word,
        "checked": checked,
        "mismatches": mismatches,
        "note": note,
        "example_answer": example_answer,
    }


def _first_prediction(body: Any) -> Any:
    predictions = body["predictions"] if isinstance(body, dict) else body
    first = predictions[0]
    return first.get("prediction", first) if isinstance(first, dict) else first


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)
    return str(got) == str(want)


async def _run_load(
    client: Any, endpoint: str, bodies: list[bytes | None], concurrency: int, max_requests: int, seconds: float
) -> tuple[list[float], int, dict[str, int]]:
    """`concurrency` workers send one request at a time each until max_requests have been sent or
    the time is up; a request in flight at the deadline is waited for (bounded by its timeout)."""
    import asyncio

    import aiohttp

    latencies: list[float] = []
    examples: dict[str, int] = {}
    state = {"sent": 0, "errors": 0}
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while state["sent"] < max_requests and time.perf_counter() < deadline:
            body = bodies[state["sent"] % len(bodies)]
            state["sent"] += 1
            mark = time.perf_counter()
            try:
                status, text = await _send(client, endpoint, body)
                problem = None if status == 200 else f"HTTP {status}: {text[:160]}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                problem = f"{type(error).__name__}: {str(error)[:160]}"
            if problem is None:
                latencies.append(time.perf_counter() - mark)
            else:
                state["errors"] += 1
                if len(examples) < 5 or problem in examples:
                    examples[problem] = examples.get(problem, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, state["errors"], examples


def run_as_child(args: argparse.Namespace) -> int:
    children: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "data": child_data,
        "in-process": child_in_process,
        "load": child_load,
        "mlflow-log": child_mlflow_log,
    }
    try:
        info = children[args.child](args)
        _bench.write_json(Path(args.out), {"status": "ok", **info})
        return 0
    except BaseException as error:  # recorded for the report; the parent carries on
        traceback.print_exc()
        _bench.write_json(
            Path(args.out),
            {"status": "failed", "error": f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"},
        )
        return 1


# ====================================================================== parent: servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerFailed(RuntimeError):
    pass


@contextmanager
def running_server(
    command: list[str], port: int, cwd: Path, log: Path, ready_paths: tuple[str, ...], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group, wait until it answers, and always stop the whole
    group afterwards: SIGTERM, then SIGKILL if it has not exited within 20 s."""
    full_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=full_env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}", ready_paths, log)
        yield process
    finally:
        _stop_group(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, paths: tuple[str, ...], log: Path) -> None:
    """Ready when the first of `paths` that exists answers 200 (a 404 moves on to the next one)."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"exited with {process.returncode}: {_tail(log)}")
        for path in paths:
            try:
                with urllib.request.urlopen(url + path, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    continue
            except (urllib.error.URLError, OSError):
                pass
            break
        time.sleep(0.5)
    raise ServerFailed(f"not ready after {SERVER_START_SECONDS} s: {_tail(log)}")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 20)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)  # the group this script started: the server and any workers it forked
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # workers left behind by a parent that exited first
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(log: Path, chars: int = 600) -> str:
    try:
        return " | ".join(line.strip() for line in log.read_text(errors="replace").strip().splitlines()[-8:])[-chars:]
    except OSError:
        return ""


def tree_rss(pid: int) -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return None


# ====================================================================== parent: one bundle
def make_bundle(kind: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    project = work / kind / "project"
    existing = find_bundle(project, kind)
    if existing is not None:
        print(f"[{kind}] reusing {existing}", flush=True)
        return {"status": "ok", "bundle": str(existing), "project": str(project), "reused": True}
    _bench.new_project(project)
    data = _child(["--child", "data", "--project", str(project)], work / kind / "data", timeout=600)
    if data["status"] != "ok":
        return {**data, "project": str(project)}
    command = ["-m", "automlops", "run", *run_overrides(kind, args)]
    timeout = 900 + (args.ag_timeout * 3 if kind == "autogluon" else 0)
    print(f"[{kind}] automlops {' '.join(command[2:])}", flush=True)
    run = _bench.run_child(
        command,
        work / kind / "run.log",
        timeout=timeout,
        cwd=project,
        env={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    bundle = find_bundle(project, kind)
    if not run.ok or bundle is None:
        return {
            "status": "failed",
            "project": str(project),
            "error": f"automlops run: {'timeout' if run.timed_out else run.returncode}: {run.tail()}",
        }
    print(f"[{kind}] bundle {bundle} in {run.wall_seconds:.0f} s", flush=True)
    return {
        "status": "ok",
        "bundle": str(bundle),
        "project": str(project),
        "run_seconds": run.wall_seconds,
        "reused": False,
    }


def _child(extra: list[str], stem: Path, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = stem.with_suffix(".json")
    out.unlink(missing_ok=True)
    child = _bench.run_child(
        [str(SCRIPT), *extra, "--out", str(out)], stem.with_suffix(".log"), timeout=timeout, env=env
    )
    if out.is_file():
        return json.loads(out.read_text())
    return {
        "status": "failed",
        "error": f"{'timeout' if child.timed_out else f'exit {child.returncode}'}: {child.tail()}",
    }


def bounds(args: argparse.Namespace) -> list[str]:
    return ["--requests", str(args.requests), "--seconds", str(args.seconds), "--warmup", str(args.warmup)]


def measure_bundle(kind: str, made: dict[str, Any], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """In process first, then every server started at once and loaded by one generator process."""
    run_dir = work / kind
    result: dict[str, Any] = {
        "bundle": kind,
        "path": made["bundle"],
        "servers": {},
        "cells": [],
        "probes": [],
        "notes": [],
    }
    print(f"[{kind}] in process", flush=True)
    inproc = _child(
        [
            "--child",
            "in-process",
            "--bundle",
            made["bundle"],
            "--project",
            made["project"],
            "--run-dir",
            str(run_dir),
            *bounds(args),
        ],
        run_dir / "in-process",
        timeout=len(IN_PROCESS) * (args.seconds + 60) + 300,
    )
    result["in_process"] = inproc
    if inproc["status"] != "ok":
        result["notes"].append(f"in-process measurement failed: {inproc['error']}")
        return result
    with ExitStack() as stack:
        up = []
        for server in args.server_list:
            try:
                process, port = stack.enter_context(serve(server, kind, made, run_dir, args, result))
            except ServerFailed as error:
                result["servers"].setdefault(server, {})["status"] = "failed"
                result["notes"].append(f"{server} server: {error}")
                continue
            up.append(
                {
                    "name": server,
                    "url": f"http://127.0.0.1:{port}",
                    "pid": process.pid,
                    "endpoints": [(e, b) for s, e, b in ENDPOINTS if s == server],
                }
            )
        if not up:
            return result
        spec = {
            "servers": up,
            "concurrency": args.concurrency_list,
            "requests": args.requests,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "request_timeout": args.request_timeout,
            "rows": str(run_dir / "rows.json"),
            "expected": str(run_dir / "expected.json"),
        }
        _bench.write_json(run_dir / "load.spec.json", spec)
        cells = sum(len(server["endpoints"]) for server in up) * len(args.concurrency_list)
        print(f"[{kind}] load: {cells} cells", flush=True)
        load = _child(
            ["--child", "load", "--spec", str(run_dir / "load.spec.json")],
            run_dir / "load",
            timeout=cells * (args.seconds + 5 + 2 * args.request_timeout) + 300,
        )
        for server in up:
            result["servers"][server["name"]]["rss_bytes"] = tree_rss(server["pid"])
    if load["status"] != "ok":
        result["notes"].append(f"load generator failed: {load['error']}")
        return result
    result["probes"] = load["probes"]
    for probe in load["probes"]:
        if probe["status"] == "absent":
            result["notes"].append(
                f"{probe['server']} {probe['endpoint']}: skipped, the server answers {probe['note']}"
            )
        elif probe["status"] != "ok":
            result["notes"].append(f"{probe['server']} {probe['endpoint']}: {probe['note']}")
    result["cells"] = load["cells"]
    return result


@contextmanager
def serve(
    server: str, kind: str, made: dict[str, Any], run_dir: Path, args: argparse.Namespace, result: dict[str, Any]
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    started = time.perf_counter()
    if server == "automlops":
        command = [
            sys.executable,
            "-m",
            "automlops",
            "serve",
            "--model",
            made["bundle"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if args.workers != 1:
            command += ["--workers", str(args.workers)]
        env, ready, cwd = None, ("/ready", "/health"), Path(made["project"])
        result["servers"][server] = {}
    else:
        uri = f"sqlite:///{(run_dir / 'mlflow' / 'mlflow.db').as_posix()}"
        env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        logged = _child(
            ["--child", "mlflow-log", "--bundle", made["bundle"], "--tracking-uri", uri],
            run_dir / "mlflow-log",
            timeout=600,
            env=env,
        )
        if logged["status"] != "ok":
            raise ServerFailed(f"logging the bundle to MLflow failed: {logged['error']}")
        command = [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            logged["model_uri"],
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(args.workers),
        ]
        ready, cwd = ("/ping",), run_dir
        result["servers"][server] = {"model_uri": logged["model_uri"], "tracking_uri": uri}
    print(
        f"[{kind}] starting {server}: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}",
        flush=True,
    )
    result["servers"][server]["command"] = " ".join(command)
    with running_server(command, port, cwd, run_dir / f"server-{server}.log", ready, env) as process:
        result["servers"][server].update(status="ok", start_seconds=round(time.perf_counter() - started, 1))
        yield process, port


# ====================================================================== parent: report
def index(results: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """(bundle, server, endpoint, concurrency) -> cell; in-process calls are server 'in-process'."""
    cells: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for r in results:
        for name, call in (r.get("in_process", {}).get("calls") or {}).items():
            cells[(r["bundle"], "in-process", name, 1)] = call
        for cell in r["cells"]:
            cells[(r["bundle"], cell["server"], cell["endpoint"], cell["concurrency"])] = cell
    return cells


def summarise(results: list[dict[str, Any]], concurrency: list[int]) -> dict[str, Any]:
    cells = index(results)
    top = max(concurrency)
    per_bundle: dict[str, Any] = {}
    for r in results:
        b = r["bundle"]
        raw, frame = cells.get((b, "in-process", "model.predict", 1)), cells.get((b, "in-process", "predict_frame", 1))
        mlflow = {c: cells.get((b, "mlflow", "/invocations", c)) for c in concurrency}
        s: dict[str, Any] = {"overhead_ms": {}, "throughput_ratio": {}, "latency_ratio": {}}
        for endpoint in ("/predict", "/invocations"):
            one = cells.get((b, "automlops", endpoint, 1))
            if one and one.get("p50_ms") is not None and raw:
                s["overhead_ms"][endpoint] = {
                    "vs_model_predict": round(one["p50_ms"] - raw["p50_ms"], 3),
                    "vs_predict_frame": round(one["p50_ms"] - frame["p50_ms"], 3) if frame else None,
                }
            for c in concurrency:
                mine, peer = cells.get((b, "automlops", endpoint, c)), mlflow.get(c)
                if mine and peer and peer.get("rows_per_s") and mine.get("rows_per_s") is not None:
                    s["throughput_ratio"].setdefault(endpoint, {})[str(c)] = round(
                        mine["rows_per_s"] / peer["rows_per_s"], 2
                    )
                    if mine.get("p50_ms") and peer.get("p50_ms"):
                        s["latency_ratio"].setdefault(endpoint, {})[str(c)] = round(peer["p50_ms"] / mine["p50_ms"], 2)
        per_bundle[b] = s
    # targets
    targets: dict[str, Any] = {}
    lgbm = per_bundle.get("lightgbm", {}).get("overhead_ms", {}).get("/predict")
    targets["latency"] = (
        {
            "value_ms": lgbm["vs_model_predict"],
            "met": lgbm["vs_model_predict"] <= LATENCY_TARGET_MS,
            "other_cores": _other(
                cells, [("lightgbm", "in-process", "model.predict", 1), ("lightgbm", "automlops", "/predict", 1)]
            ),
        }
        if lgbm
        else None
    )
    throughput = {}
    for b, s in per_bundle.items():
        ratios = s["throughput_ratio"]
        endpoint = "/invocations" if "/invocations" in ratios else "/predict" if "/predict" in ratios else None
        if endpoint and str(top) in ratios[endpoint]:
            value = ratios[endpoint][str(top)]
            throughput[b] = {
                "endpoint": endpoint,
                "ratio": value,
                "met": value >= THROUGHPUT_TARGET,
                "other_cores": _other(cells, [(b, "automlops", endpoint, top), (b, "mlflow", "/invocations", top)]),
            }
    targets["throughput"] = throughput or None
    automlops_cells = [c for key, c in cells.items() if key[1] == "automlops"]
    targets["errors"] = (
        {
            "cells": len(automlops_cells),
            "errors": sum(c["errors"] for c in automlops_cells),
            "met": all(c["errors"] == 0 for c in automlops_cells),
        }
        if automlops_cells
        else None
    )
    noisy = [c["cpu"]["other_cores"] for c in cells.values() if c.get("cpu", {}).get("other_cores") is not None]
    return {"bundles": per_bundle, "targets": targets, "max_other_cores": max(noisy) if noisy else None}


def _other(
    cells: dict[tuple[str, str, str, int], dict[str, Any]], keys: list[tuple[str, str, str, int]]
) -> float | None:
    """The most CPU other processes used during the cells a verdict rests on."""
    values = [
        cells[k]["cpu"]["other_cores"]
        for k in keys
        if k in cells and cells[k].get("cpu", {}).get("other_cores") is not None
    ]
    return max(values) if values else None


def _shared(verdict: dict[str, Any]) -> str:
    other = verdict.get("other_cores")
    if other is None or other <= NOISY_OTHER_CORES:
        return ""
    return f" — measured while other work used up to {other:.2f} cores: rerun on a quiet machine before trusting this verdict"


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def report(results: list[dict[str, Any]], summary: dict[str, Any], concurrency: list[int]) -> str:
    parts = [
        "## Latency and throughput, one row per request\n",
        "p50/p99: per-request latency in ms (HTTP: from sending the request to reading the whole answer, in the load "
        "generator; in process: one call). rows/s: answered rows per second of the cell's wall time. server CPU: "
        "CPU ms the server's processes spent per answered row. client / other: cores used by the load generator / by "
        "every other process on the machine during the cell (other > 0.2 means the measurement shared the CPU).\n",
    ]
    rows = []
    for r in results:
        b = r["bundle"]
        inproc = r.get("in_process", {})
        for name, call in (inproc.get("calls") or {}).items():
            rows.append(
                [
                    b,
                    "in-process",
                    name,
                    1,
                    call["requests"],
                    0,
                    fmt(call["p50_ms"], 3),
                    fmt(call["p99_ms"], 3),
                    fmt(call["rows_per_s"], 0),
                    "-",
                    "-",
                    fmt(call["cpu"].get("other_cores")),
                ]
            )
        for c in r["cells"]:
            cpu = c.get("cpu", {})
            server_ms = (
                1000 * cpu["server_cpu_s"] / c["ok"] if cpu.get("server_cpu_s") is not None and c["ok"] else None
            )
            rows.append(
                [
                    b,
                    c["server"],
                    c["endpoint"],
                    c["concurrency"],
                    c["requests"],
                    c["errors"],
                    fmt(c["p50_ms"]),
                    fmt(c["p99_ms"]),
                    fmt(c["rows_per_s"], 0),
                    fmt(server_ms),
                    fmt(cpu.get("self_cores")),
                    fmt(cpu.get("other_cores")),
                ]
            )
    parts.append(
        _bench.md_table(
            [
                "bundle",
                "server",
                "endpoint / call",
                "conc.",
                "requests",
                "errors",
                "p50 ms",
                "p99 ms",
                "rows/s",
                "server CPU ms/row",
                "client cores",
                "other cores",
            ],
            rows,
        )
    )

    parts.append("\n## Against the peers\n")
    parts.append(
        "HTTP cost: automlops' p50 at concurrency 1 minus the in-process p50 of `model.predict` (the model alone) "
        "and of `predict_frame` (the model plus input validation: what is left is HTTP, JSON and the server). "
        "× MLflow: automlops rows/s ÷ MLflow's rows/s on the same model and the same body shape where the endpoint "
        "is /invocations (above 1 automlops is faster); p50 ×: MLflow's p50 ÷ automlops'.\n"
    )
    rows = []
    for b, s in summary["bundles"].items():
        for endpoint in ("/predict", "/invocations"):
            over = s["overhead_ms"].get(endpoint)
            ratio, lat = s["throughput_ratio"].get(endpoint, {}), s["latency_ratio"].get(endpoint, {})
            if over is None and not ratio:
                continue
            rows.append(
                [
                    b,
                    endpoint,
                    fmt(over and over["vs_model_predict"]),
                    fmt(over and over["vs_predict_frame"]),
                    *[fmt(ratio.get(str(c))) + "×" if ratio.get(str(c)) is not None else "-" for c in concurrency],
                    *[fmt(lat.get(str(c))) + "×" if lat.get(str(c)) is not None else "-" for c in concurrency],
                ]
            )
    parts.append(
        _bench.md_table(
            [
                "bundle",
                "automlops endpoint",
                "HTTP p50 − model.predict p50 (ms)",
                "HTTP p50 − predict_frame p50 (ms)",
                *[f"rows/s × MLflow, c={c}" for c in concurrency],
                *[f"p50 × MLflow, c={c}" for c in concurrency],
            ],
            rows,
        )
    )

    t = summary["targets"]
    parts.append("\n## Targets\n")
    if t["latency"]:
        parts.append(
            f"- LightGBM, HTTP p50 for one row (automlops /predict, concurrency 1) − in-process `model.predict` p50 = "
            f"{t['latency']['value_ms']:.2f} ms → **{'met' if t['latency']['met'] else 'NOT met'}** (target ≤ {LATENCY_TARGET_MS:g} ms)"
            + _shared(t["latency"])
        )
    else:
        parts.append("- LightGBM HTTP latency: not measured")
    top = max(concurrency)
    if t["throughput"]:
        for b, v in t["throughput"].items():
            parts.append(
                f"- {b}, throughput at concurrency {top}: automlops {v['endpoint']} = {v['ratio']:.2f}× MLflow /invocations → "
                f"**{'met' if v['met'] else 'NOT met'}** (target ≥ {THROUGHPUT_TARGET:g}×)" + _shared(v)
            )
    else:
        parts.append(
            f"- throughput against MLflow at concurrency {top}: not measured (MLflow not installed, failed, or concurrency {top} not run)"
        )
    if t["errors"]:
        parts.append(
            f"- errors under load: {t['errors']['errors']} in {t['errors']['cells']} automlops cells → "
            f"**{'met' if t['errors']['met'] else 'NOT met'}** (target: none)"
        )
    answers = [
        f"- {r['bundle']}, {p['server']} {p['endpoint']}: `{p['example_answer'][:160]}` "
        f"({p['checked'] - p['mismatches']}/{CHECK_ROWS} rows agree with predict_frame)"
        for r in results
        for p in r.get("probes", [])
        if p["status"] != "absent"
    ]
    if answers:
        parts.append("\n## Answers\n")
        parts.append(
            "What each endpoint answers for one row (the work differs: MLflow's pyfunc wrapper also returns the "
            f"class probabilities), and how many of the first {CHECK_ROWS} rows got the prediction `predict_frame` "
            "gives in process, checked before the load.\n"
        )
        parts += answers
    notes = [f"{r['bundle']}: {n}" for r in results for n in r["notes"]]
    errors = [
        f"{r['bundle']} {c['server']} {c['endpoint']} c={c['concurrency']}: "
        + "; ".join(f"{n}× {k}" for k, n in c["error_examples"].items())
        for r in results
        for c in r["cells"]
        if c["errors"]
    ]
    if notes or errors:
        parts.append("\n## Notes\n")
        parts += [f"- {line}" for line in notes + errors]
    return "\n".join(parts) + "\n"


def header(
    args: argparse.Namespace,
    machine: dict[str, Any],
    started_at: str,
    elapsed: float,
    made: dict[str, Any],
    results: list[dict[str, Any]],
    summary: dict[str, Any],
    load_end: list[float] | None,
) -> str:
    lines = ["# automlops serving: latency and throughput over HTTP", ""]
    if load_end is None:
        lines += ["**Incomplete: the run is still going (or died); the tables hold the bundles finished so far.**", ""]
    lines += [
        f"- run: {started_at}, took {_bench.duration(elapsed)}",
        f"- command: `{_bench.command_line()}`",
        f"- bounds per cell: {args.requests} requests or {args.seconds:g} s (after a warm-up of {args.warmup} requests), "
        f"concurrency {', '.join(map(str, args.concurrency_list))}; server workers: {args.workers}; "
        f"load: one asyncio + aiohttp process on loopback, keep-alive, one row per request",
    ]
    for r in results:
        inproc = r.get("in_process", {})
        m = made.get(r["bundle"], {})
        test = inproc.get("test_metrics") or {}
        score = f", test roc_auc {test['roc_auc']:.3f}" if "roc_auc" in test else ""
        lines.append(
            f"- {r['bundle']} bundle: {inproc.get('format', '?')} / {inproc.get('family', '?')}{score}, "
            f"{inproc.get('features', '?')} input columns; dataset {DATASET} (statsmodels), the requests cycle through "
            f"{inproc.get('sample_rows', '?')} rows of its test split" + (" (bundle reused)" if m.get("reused") else "")
        )
    changed = machine.get("automlops_changes")
    if changed is not None:
        lines.append(
            f"- automlops sources at the start: git {machine['git_commit']}; "
            + (f"uncommitted changes in {', '.join(changed)}" if changed else "no uncommitted changes")
        )
    load_start = machine["load_average_at_start"]
    load = f"- load average (1, 5, 15 min) at start {', '.join(map(str, load_start))}"
    if load_end is not None:
        load += f", at end {', '.join(map(str, load_end))} (the end includes this run's own servers and load)"
    lines.append(load + f" on {machine['usable_cores']} usable cores")
    other = summary.get("max_other_cores")
    if other is not None and other > NOISY_OTHER_CORES:
        lines.append(
            f"- **the machine was shared: other processes used up to {other:.2f} cores during a measured cell "
            "(see the 'other cores' column); compare figures with care**"
        )
    if args.note:
        lines.append(f"- **note: {args.note}**")
    lines += ["", "Machine:", "", _bench.describe_machine(machine), ""]
    return "\n".join(lines)


# ====================================================================== parent
def source_changes() -> list[str] | None:
    """Files under automlops/ that differ from the commit (the server may be mid-change while it is
    measured), or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(_bench.REPO), "status", "--porcelain", "--", "automlops"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [
        line[3:] + (" (new)" if line.startswith("??") else "")
        for line in out.stdout.splitlines()
        if line[3:].endswith(".py") or line.startswith("??")
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", default=",".join(BUNDLES), help="comma-separated subset of " + ",".join(BUNDLES))
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated subset of " + ",".join(SERVERS) + " (mlflow is skipped when it is not installed)",
    )
    parser.add_argument("--concurrency", default="1,16", help="comma-separated concurrent requests (default 1,16)")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per cell at most (default 2000; --quick 200)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="seconds per cell at most (default 20; --quick 5)")
    parser.add_argument(
        "--warmup", type=int, default=50, help="requests (or in-process calls) before each cell, not counted"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=30.0, help="seconds before a request counts as an error"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes, for both servers (default 1)")
    parser.add_argument("--trials", type=int, default=3, help="Optuna trials of the LightGBM bundle's search")
    parser.add_argument(
        "--ag-timeout", type=float, default=None, help="search.timeout of the AutoGluon bundle (default 30; --quick 15)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 requests or 5 s per cell, AutoGluon 15 s")
    parser.add_argument(
        "--workdir",
        default=None,
        help="scratch folder (default: a new temp dir, removed at the end); bundles already made in it are reused",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--results", default=str(_bench.RESULTS), help="where serving.md/.json go")
    parser.add_argument("--note", default="", help="a line for the results header (e.g. 'machine shared')")
    # child mode (internal)
    for name in ("--child", "--project", "--bundle", "--run-dir", "--spec", "--tracking-uri", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.requests = args.requests or (200 if args.quick else 2000)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    args.ag_timeout = args.ag_timeout or (15.0 if args.quick else 30.0)
    if args.child:
        return args
    args.bundle_list = [b.strip() for b in args.bundles.split(",") if b.strip()]
    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [b for b in args.bundle_list if b not in BUNDLES] + [s for s in args.server_list if s not in SERVERS]
    if bad:
        parser.error(
            f"unknown bundle(s) or server(s) {', '.join(bad)}; choose bundles from {', '.join(BUNDLES)} "
            f"and servers from {', '.join(SERVERS)}"
        )
    try:
        args.concurrency_list = sorted({int(c) for c in args.concurrency.split(",")})
    except ValueError:
        parser.error(f"--concurrency: expected comma-separated integers like 1,16, got {args.concurrency!r}")
    if min(args.concurrency_list) < 1 or args.requests < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--concurrency, --requests, --seconds and --workers must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_as_child(args)
    import shutil

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers' finally blocks run on a kill
    machine = {**_bench.machine_info(), "automlops_changes": source_changes()}
    started_at, t_start = _bench.now(), time.perf_counter()
    notes: list[str] = []
    if "mlflow" in args.server_list and importlib.util.find_spec("mlflow") is None:
        args.server_list.remove("mlflow")
        notes.append("mlflow is not installed (pip install -e '.[mlflow]'): no MLflow peer")
    print(
        f"serving: bundles {', '.join(args.bundle_list)}; servers {', '.join(args.server_list)}; concurrency "
        f"{', '.join(map(str, args.concurrency_list))}; {args.requests} requests or {args.seconds:g} s per cell",
        flush=True,
    )
    print(_bench.describe_machine(machine), flush=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="automlops-bench-serving-"))
    work.mkdir(parents=True, exist_ok=True)
    results_dir = Path(args.results)
    made: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []

    def save(final: bool) -> dict[str, Any]:
        summary = summarise(results, args.concurrency_list)
        load_end = [round(x, 2) for x in os.getloadavg()] if final else None
        text = header(args, machine, started_at, time.perf_counter() - t_start, made, results, summary, load_end)
        body = report(results, summary, args.concurrency_list)
        if notes:
            body += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
        _bench.write_text(results_dir / "serving.md", text + "\n" + body)
        _bench.write_json(
            results_dir / "serving.json",
            {
                "benchmark": "serving",
                "complete": final,
                "started_at": started_at,
                "elapsed_seconds": round(time.perf_counter() - t_start, 1),
                "command": _bench.command_line(),
                "note": args.note,
                "bounds": {
                    "requests": args.requests,
                    "seconds": args.seconds,
                    "warmup": args.warmup,
                    "concurrency": args.concurrency_list,
                    "workers": args.workers,
                    "request_timeout": args.request_timeout,
                },
                "machine": machine,
                "load_average_at_end": load_end,
                "bundles": made,
                "results": results,
                "summary": summary,
                "notes": notes,
            },
        )
        return summary

    try:
        for kind in args.bundle_list:  # both bundles first, so the measurements run back to back
            made[kind] = make_bundle(kind, work, args)
            if made[kind]["status"] != "ok":
                print(f"[{kind}] no bundle: {made[kind]['error']}", flush=True)
                notes.append(f"{kind}: no bundle ({made[kind]['error']})")
        for kind in args.bundle_list:
            if made[kind]["status"] == "ok":
                results.append(measure_bundle(kind, made[kind], work, args))
                save(final=False)
    finally:
        summary = save(final=True)
    print()
    print((results_dir / "serving.md").read_text())
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(f"results: {results_dir / 'serving.md'} and .json; total {_bench.duration(time.perf_counter() - t_start)}")
    return 0 if results and all(r["cells"] for r in results) and summary else 1


if __name__ == "__main__":
    sys.exit(main())
