#!/usr/bin/env python3
"""Hostile load: a real `automlops serve` under a minute of concurrent valid and hostile requests.

    python benchmarks/hostile_load.py                     # 60 s at concurrency 32 (after a 10 s warm-up)
    python benchmarks/hostile_load.py --quick             # smoke run: 10 s, warm-up 3 s
    python benchmarks/hostile_load.py --workdir /tmp/hl --keep   # reuses the bundle found there

A small bundle is made here (`automlops run +experiment=penguins search.n_trials=2` in a scratch
project: numeric, categorical and nullable columns) and served on a free loopback port with a bearer
token, serve.max_rows=100 and serve.max_body_mb=0.25 (so oversized bodies stay cheap to send). One
asyncio + aiohttp client then keeps --concurrency requests in flight, each drawn (seeded) from a mix
of valid requests (about half: one row, 20 rows, MLflow's dataframe_split, CSV, NaN as a missing
value) and hostile ones: integers of 5,000 digits in numeric and categorical columns, Infinity, NaN
where no value may be missing, wrong types, missing and extra fields, bad JSON, random bytes, deep
nesting, an empty body, a wrong envelope, too many rows, oversized bodies (declared and streamed),
a wrong token and no token. Every kind has the statuses it must get.

Targets: no 5xx and no unexpected status or dropped connection; the server's RSS (its process tree)
at the end within ±10 % of its RSS at the start of the measured minute (after the warm-up, which lets
the allocator and lazily imported code settle; the RSS right after startup is reported too); p50 and
p99 of the valid requests, reported. Writes benchmarks/results/hostile_load.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench  # noqa: E402
from serving import free_port, percentile, running_server, tree_rss  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN_ENV, TOKEN = "HOSTILE_LOAD_TOKEN", "hostile-load-token"
MAX_ROWS, MAX_BODY_MB = 100, 0.25
RSS_TOLERANCE = 0.10
SEED = 14
HUGE = "1" + "0" * 5000  # past Python's 4,300-digit int-string limit


@dataclass(frozen=True)
class Kind:
    name: str
    weight: float
    statuses: frozenset[int]  # what the server must answer
    make: Callable[[random.Random], tuple[str, bytes | None, dict[str, str]]]  # -> (endpoint, body, headers)
    valid: bool = False
    streamed: bool = False  # send the body in chunks (no Content-Length)


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def kinds(rows: list[dict[str, Any]]) -> list[Kind]:
    """The request mix, from the bundle's input example (real rows, varied per request)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    as_json = {**auth, "Content-Type": "application/json"}
    columns = list(rows[0])
    numeric = next(c for c in columns if isinstance(rows[0][c], float))
    category = next(c for c in columns if isinstance(rows[0][c], str))

    def some(rng: random.Random, n: int) -> list[dict[str, Any]]:
        return [dict(rng.choice(rows)) for _ in range(n)]

    def records(
        body: Any, headers: dict[str, str] = as_json, endpoint: str = "/predict"
    ) -> tuple[str, bytes, dict[str, str]]:
        return endpoint, json.dumps(body).encode(), headers

    def literal(column: str, text: str) -> Callable[[random.Random], tuple[str, bytes, dict[str, str]]]:
        def make(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
            spoiled = some(rng, 3)
            spoiled[1][column] = "@@spoil@@"
            return "/predict", json.dumps(spoiled).replace('"@@spoil@@"', text).encode(), as_json

        return make

    def with_cell(value: Any) -> Callable[[random.Random], tuple[str, bytes, dict[str, str]]]:
        return lambda rng: records([*some(rng, 1), {**some(rng, 1)[0], numeric: value}])

    def csv(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
        lines = [",".join(columns)] + [
            ",".join("" if r[c] is None else str(r[c]) for c in columns) for r in some(rng, 5)
        ]
        return "/predict", "\n".join(lines).encode(), {**auth, "Content-Type": "text/csv"}

    def oversized(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
        many = some(rng, 1) * (int(MAX_BODY_MB * 2**20) // len(json.dumps(rows[0])) + 50)
        return "/predict", json.dumps(many).encode(), as_json

    ok, bad_input, bad_body = frozenset({200}), frozenset({422}), frozenset({400})
    return [
        Kind("valid: 1 row", 22, ok, lambda rng: records(some(rng, 1)), valid=True),
        Kind("valid: 20 rows", 10, ok, lambda rng: records(some(rng, 20)), valid=True),
        Kind(
            "valid: dataframe_split",
            6,
            ok,
            lambda rng: records(
                {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in some(rng, 3)]}},
                endpoint="/invocations",
            ),
            valid=True,
        ),
        Kind("valid: CSV", 6, ok, csv, valid=True),
        Kind("valid: NaN as missing", 6, ok, literal(numeric, "NaN"), valid=True),
        Kind("5,000-digit integer", 4, bad_input, literal(numeric, HUGE)),
        Kind("5,000-digit integer in a category", 4, bad_input, literal(category, "-" + HUGE)),
        Kind("Infinity", 3, bad_input, literal(numeric, "Infinity")),
        Kind("1e400", 2, bad_input, literal(numeric, "1e400")),
        Kind("NaN where none may be missing", 3, bad_input, literal(category, "NaN")),
        Kind("text in a numeric column", 3, bad_input, with_cell("12,5")),
        Kind("array in a cell", 2, bad_input, with_cell([1, 2])),
        Kind("boolean in a numeric column", 2, bad_input, with_cell(True)),
        Kind(
            "missing field",
            3,
            bad_input,
            lambda rng: records([{k: v for k, v in r.items() if k != numeric} for r in some(rng, 2)]),
        ),
        Kind("extra field", 2, bad_input, lambda rng: records([{**r, "colour": "blue"} for r in some(rng, 2)])),
        Kind("bad JSON", 3, bad_body, lambda rng: ("/predict", b'[{"island": "Dream", ', as_json)),
        Kind("random bytes", 2, bad_body, lambda rng: ("/predict", rng.randbytes(rng.randint(1, 300)), as_json)),
        Kind("deep nesting", 1, bad_body, lambda rng: ("/predict", b"[" * 50_000 + b"]" * 50_000, as_json)),
        Kind("empty body", 1, bad_body, lambda rng: ("/predict", b"", as_json)),
        Kind("wrong envelope", 2, bad_body, lambda rng: records({"records": some(rng, 1)}, endpoint="/invocations")),
        Kind("too many rows", 2, frozenset({413}), lambda rng: records(some(rng, MAX_ROWS + 1))),
        Kind("oversized body, declared", 1, frozenset({413}), oversized),
        Kind("oversized body, streamed", 1, frozenset({413}), oversized, streamed=True),
        Kind(
            "wrong token",
            3,
            frozenset({401}),
            lambda rng: records(some(rng, 1), {"Authorization": "Bearer nope", "Content-Type": "application/json"}),
        ),
        Kind("no token", 2, frozenset({401}), lambda rng: records(some(rng, 1), {"Content-Type": "application/json"})),
    ]


# ====================================================================== the load
async def _chunks(body: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def send(client: Any, base: str, kind: Kind, rng: random.Random) -> tuple[int | None, float, str | None]:
    import aiohttp

    endpoint, body, headers = kind.make(rng)
    data: Any = _chunks(body) if kind.streamed and body else body
    started = time.perf_counter()
    try:
        async with client.post(base + endpoint, data=data, headers=headers) as answer:
            await answer.read()
            return answer.status, time.perf_counter() - started, None
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        return None, time.perf_counter() - started, type(error).__name__


async def load(
    base: str, mix: list[Kind], concurrency: int, seconds: float, seed: int
) -> tuple[dict[str, Tally], float]:
    import aiohttp

    tallies = {kind.name: Tally() for kind in mix}
    weights = [kind.weight for kind in mix]
    deadline = time.monotonic() + seconds

    async def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        while time.monotonic() < deadline:
            kind = rng.choices(mix, weights)[0]
            status, elapsed, error = await send(client, base, kind, rng)
            tally = tallies[kind.name]
            if status is None:
                tally.errors[error or "?"] += 1
            else:
                tally.statuses[status] += 1
                tally.latencies.append(elapsed)

    timeout = aiohttp.ClientTimeout(total=30)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as client:
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return tallies, time.perf_counter() - started


class RssSampler:
    """The server tree's RSS once a second, in a thread (the event loop is busy with the load)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            rss = tree_rss(self.pid)
            if rss:
                self.samples.append(rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


# ====================================================================== report
def summarise(mix: list[Kind], tallies: dict[str, Tally], wall: float, rss: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for kind in mix:
        tally = tallies[kind.name]
        unexpected = {s: n for s, n in tally.statuses.items() if s not in kind.statuses}
        rows.append(
            {
                "kind": kind.name,
                "valid": kind.valid,
                "expected": sorted(kind.statuses),
                "requests": sum(tally.statuses.values()),
                "statuses": dict(sorted(tally.statuses.items())),
                "unexpected": unexpected,
                "connection_errors": dict(tally.errors),
                "p50_ms": _ms(percentile(tally.latencies, 50)),
                "p99_ms": _ms(percentile(tally.latencies, 99)),
            }
        )
    valid = [x for kind in mix if kind.valid for x in tallies[kind.name].latencies]
    total = sum(r["requests"] for r in rows)
    server_errors = sum(n for r in rows for s, n in r["statuses"].items() if s >= 500)
    unexpected = sum(n for r in rows for n in r["unexpected"].values())
    dropped = sum(n for r in rows for n in r["connection_errors"].values())
    checks = {
        "no 5xx": server_errors == 0,
        "every answer the one its kind must get": unexpected == 0,
        "no dropped connection or timeout": dropped == 0,
        f"RSS at the end within ±{RSS_TOLERANCE:.0%} of the start": rss["change"] is not None
        and abs(rss["change"]) <= RSS_TOLERANCE,
    }
    return {
        "requests": total,
        "requests_per_second": round(total / wall, 1),
        "wall_seconds": round(wall, 1),
        "server_errors": server_errors,
        "unexpected": unexpected,
        "connection_errors": dropped,
        "valid_requests": len(valid),
        "valid_p50_ms": _ms(percentile(valid, 50)),
        "valid_p99_ms": _ms(percentile(valid, 99)),
        "rss": rss,
        "kinds": rows,
        "checks": checks,
        "passed": all(checks.values()),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def report(
    args: argparse.Namespace, machine: dict[str, Any], started_at: str, summary: dict[str, Any], bundle: dict[str, Any]
) -> str:
    rss = summary["rss"]
    lines = [
        "# automlops serve under hostile load",
        "",
        f"- run: {started_at}; command: `{_bench.command_line()}`",
        f"- {args.seconds:g} s at concurrency {args.concurrency} (after a {args.warmup:g} s warm-up of the same mix, not counted); "
        "one asyncio + aiohttp client on loopback, keep-alive",
        f"- server: `automlops serve --model <bundle> serve.token_env={TOKEN_ENV} serve.max_rows={MAX_ROWS} "
        f"serve.max_body_mb={MAX_BODY_MB}`, one worker; bundle: {bundle['description']}",
        f"- load average at start {', '.join(map(str, machine['load_average_at_start']))}, at end "
        f"{', '.join(map(str, summary['load_average_at_end']))} (includes this run's server and client) on {machine['usable_cores']} usable cores",
    ]
    if args.note:
        lines.append(f"- **note: {args.note}**")
    lines += ["", "## Verdict", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in summary["checks"].items()]
    lines += [
        "",
        f"{summary['requests']} requests ({summary['requests_per_second']}/s), {summary['server_errors']} 5xx, "
        f"{summary['unexpected']} unexpected statuses, {summary['connection_errors']} dropped connections or timeouts.",
        f"Valid requests: {summary['valid_requests']}, p50 {summary['valid_p50_ms']} ms, p99 {summary['valid_p99_ms']} ms "
        "(under the whole mix, client and server sharing the machine's cores).",
        f"Server RSS (process tree): {_bench.human_bytes(rss['after_startup'])} after startup, "
        f"{_bench.human_bytes(rss['start'])} at the start of the measured run, {_bench.human_bytes(rss['end'])} at its end "
        f"({rss['change']:+.1%}); min {_bench.human_bytes(rss['min'])}, max {_bench.human_bytes(rss['max'])} over {rss['samples']} samples.",
        "",
        "## Per kind",
        "",
    ]
    table = [
        [
            r["kind"],
            "/".join(map(str, r["expected"])),
            r["requests"],
            ", ".join(f"{s}: {n}" for s, n in r["statuses"].items()) or "-",
            ", ".join(f"{e}: {n}" for e, n in r["connection_errors"].items()) or "-",
            r["p50_ms"],
            r["p99_ms"],
        ]
        for r in summary["kinds"]
    ]
    lines.append(_bench.md_table(["kind", "must get", "requests", "statuses", "dropped", "p50 ms", "p99 ms"], table))
    lines += ["", "Machine:", "", _bench.describe_machine(machine), ""]
    return "\n".join(lines)


# ====================================================================== parent
def make_bundle(work: Path) -> Path:
    project = _bench.new_project(work / "project")
    found = sorted((project / "models" / "penguins" / "versions").glob("*/manifest.json"))
    if found:
        return found[-1].parent
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "automlops", "-q", "run", "+experiment=penguins", "search.n_trials=2"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise SystemExit(f"no bundle: automlops run failed: {done.stderr[-2000:]}")
    return sorted((project / "models" / "penguins" / "versions").glob("*/manifest.json"))[-1].parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds (default 60; --quick 10)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of the same mix before, not counted (default 10; --quick 3)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 s after a 3 s warm-up")
    parser.add_argument(
        "--workdir",
        default=None,
        help="scratch folder (default: a new temp dir, removed at the end); a bundle in it is reused",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--results", default=str(_bench.RESULTS), help="where hostile_load.md/.json go")
    parser.add_argument("--note", default="", help="a line for the results header (e.g. 'machine shared')")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (10.0 if args.quick else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (3.0 if args.quick else 10.0)
    if args.seconds <= 0 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--seconds and --concurrency must be positive, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server's finally block runs on a kill
    machine = _bench.machine_info()
    started_at = _bench.now()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="automlops-bench-hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bundle = make_bundle(work)
        manifest = json.loads((bundle / "manifest.json").read_text())
        rows = json.loads((bundle / "input_example.json").read_text())
        described = {
            "path": "penguins (palmerpenguins), `automlops run +experiment=penguins search.n_trials=2`",
            "description": f"penguins, {manifest['model']['family']}, {len(manifest['input_schema'])} input columns "
            f"({sum(c['kind'] == 'categorical' for c in manifest['input_schema'])} categorical)",
        }
        mix = kinds(rows)
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "automlops",
            "serve",
            "--model",
            str(bundle),
            "--port",
            str(port),
            f"serve.token_env={TOKEN_ENV}",
            f"serve.max_rows={MAX_ROWS}",
            f"serve.max_body_mb={MAX_BODY_MB}",
        ]
        print(
            f"hostile load: {args.seconds:g} s at concurrency {args.concurrency} after a {args.warmup:g} s warm-up",
            flush=True,
        )
        with running_server(command, port, work, work / "serve.log", ("/health",), env={TOKEN_ENV: TOKEN}) as server:
            base = f"http://127.0.0.1:{port}"
            after_startup = tree_rss(server.pid)
            if args.warmup:
                asyncio.run(load(base, mix, args.concurrency, args.warmup, SEED + 1))
            start = tree_rss(server.pid)
            with RssSampler(server.pid) as sampler:
                tallies, wall = asyncio.run(load(base, mix, args.concurrency, args.seconds, SEED))
            end = tree_rss(server.pid)
            alive = server.poll() is None
        samples = [s for s in [start, *sampler.samples, end] if s]
        rss = {
            "after_startup": after_startup,
            "start": start,
            "end": end,
            "min": min(samples),
            "max": max(samples),
            "samples": len(samples),
            "change": round(end / start - 1, 4) if start and end else None,
        }
        summary = summarise(mix, tallies, wall, rss)
        summary["server_alive_at_end"] = alive
        summary["checks"]["the server is still up"] = alive
        summary["passed"] = all(summary["checks"].values())
        summary["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results = Path(args.results)
        _bench.write_text(results / "hostile_load.md", report(args, machine, started_at, summary, described))
        _bench.write_json(
            results / "hostile_load.json",
            {
                "benchmark": "hostile_load",
                "started_at": started_at,
                "command": _bench.command_line(),
                "note": args.note,
                "bounds": {
                    "seconds": args.seconds,
                    "warmup": args.warmup,
                    "concurrency": args.concurrency,
                    "max_rows": MAX_ROWS,
                    "max_body_mb": MAX_BODY_MB,
                    "rss_tolerance": RSS_TOLERANCE,
                },
                "machine": machine,
                "bundle": described,
                "summary": summary,
            },
        )
        print((results / "hostile_load.md").read_text())
        return 0 if summary["passed"] else 1
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
