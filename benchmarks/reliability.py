"""Reliability: kill `automlops run` at each stage with each signal and record what it left.

For every stage (search: trials running; gate: the candidate server answers /health; deploy: the
docker target's probe child is running) and every signal (TERM, INT, HUP, KILL), a real run in a
scratch project (one project per signal, reused across stages, as tests/test_signals.py does) is
stopped, then:

- survivors: the run's descendants (and any process working in the project folder) still alive 1 s
  after it ended; orphans of a gate are also looked for on the candidate port (/health answering);
- registry: every alias names an existing version, and every version's files match its manifest;
- exit code: 128 + the signal for TERM/INT/HUP (the cleanup ran), -9 for KILL.

The killing is tests/kills.py's. Writes benchmarks/results/reliability.md and .json.

    .venv/bin/python benchmarks/reliability.py                 # 3 stages x 4 signals, one kill each
    .venv/bin/python benchmarks/reliability.py --repeats 3     # each cell three times
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import _bench  # noqa: E402
from kills import EXIT_TIMEOUT, EXPECTED_CODE, SIGNALS, STAGES, Kill, kill_run, plain_project  # noqa: E402


def run_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _short(command: str) -> str:
    if "automlops.deploy.docker" in command:
        return "docker probe (python -c)"
    return command.removeprefix("-m ").split(" --")[0]


def code_under_test() -> str:
    """Which automlops the runs import (PYTHONPATH decides), and its git commit."""
    import subprocess

    import automlops

    folder = Path(automlops.__file__).resolve().parent.parent
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"{folder} at git {done.stdout.strip() or '?'}"


def row(kill: Kill, repeat: int) -> list[Any]:
    expected = EXPECTED_CODE[kill.signal]
    registry = "consistent" if not kill.registry_problems else "; ".join(kill.registry_problems)[:120]
    return [
        kill.stage,
        f"SIG{kill.signal}",
        repeat + 1,
        f"{kill.seconds_to_stage:.1f}",
        ", ".join(_short(c) for c in kill.children) or "none",
        len(kill.survivors),
        "n/a" if kill.port is None else ("yes" if kill.health_after else "no"),
        registry,
        (
            f"hung: no exit {EXIT_TIMEOUT:g} s after the signal"
            if kill.hung
            else f"{kill.exit_code}" + ("" if kill.exit_code == expected else f" (expected {expected})")
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="kills per stage x signal (default 1)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of: {', '.join(STAGES)}")
    parser.add_argument("--signals", default=",".join(SIGNALS), help=f"comma-separated, of: {', '.join(SIGNALS)}")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (projects and run logs)")
    parser.add_argument("--results", default=str(_bench.RESULTS), help="where <name>.md/.json go")
    parser.add_argument(
        "--name", default="reliability", help="results file stem (e.g. reliability_before for older code on PYTHONPATH)"
    )
    parser.add_argument("--note", default="", help="a line for the results header (e.g. 'machine shared')")
    args = parser.parse_args(argv)
    stages, signals = args.stages.split(","), args.signals.split(",")
    unknown = [s for s in stages if s not in STAGES] + [s for s in signals if s not in SIGNALS]
    if unknown:
        parser.error(f"unknown stage or signal: {', '.join(unknown)}")

    info = _bench.machine_info()
    started, started_at = time.monotonic(), _bench.now()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="automlops-reliability-"))
    projects = {name: plain_project(work / name, _bench.REPO) for name in signals}
    kills: list[tuple[int, Kill]] = []
    try:
        for stage in stages:
            for repeat in range(args.repeats):
                for name in signals:
                    kill = kill_run(projects[name], stage, name, run_env())
                    kills.append((repeat, kill))
                    print(" | ".join(map(str, row(kill, repeat))), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    header = [
        "stage",
        "signal",
        "#",
        "s to stage",
        "children at the signal",
        "survivors",
        "/health after",
        "registry",
        "exit code",
    ]
    rows = [row(kill, repeat) for repeat, kill in kills]
    bad = [
        k
        for _, k in kills
        if k.hung or k.survivors or k.health_after or k.registry_problems or k.exit_code != EXPECTED_CODE[k.signal]
    ]
    verdict = (
        f"{len(kills)} kills: {len(kills) - len(bad)} with no survivor, no server answering, a consistent registry "
        f"and the expected exit code; {len(bad)} not"
    )
    table = _bench.md_table(header, rows)
    print(table)
    print(verdict)
    results = Path(args.results)
    text = "\n".join(
        [
            "# Reliability: `automlops run` killed at each stage with each signal",
            "",
            f"- run: {started_at}, took {_bench.duration(time.monotonic() - started)}",
            f"- command: `{_bench.command_line()}`",
            f"- automlops under test: {code_under_test()}",
            "- stages: search (trials running), gate (the candidate server answers /health), deploy (the docker target's probe child runs);"
            " the run's overrides are tests/kills.py's `STAGES`",
            "- survivors: the run's descendants, or any process in its project folder, alive 1 s after it ended"
            " (a child killed with its parent is gone in milliseconds);"
            " /health after: whether the candidate port still answered; registry: aliases name existing versions,"
            " every version's files match its manifest",
            *([f"- **note: {args.note}**"] if args.note else []),
            "",
            "Machine:",
            "",
            _bench.describe_machine(info),
            "",
            f"**{verdict}.**",
            "",
            table,
            "",
        ]
    )
    _bench.write_text(results / f"{args.name}.md", text)
    _bench.write_json(
        results / f"{args.name}.json",
        {
            "machine": info,
            "command": _bench.command_line(),
            "code": code_under_test(),
            "started": started_at,
            "note": args.note,
            "kills": [
                {
                    **asdict(kill),
                    "repeat": repeat,
                    "expected_exit_code": EXPECTED_CODE[kill.signal],
                    "log": kill.log[-2000:],
                }
                for repeat, kill in kills
            ],
        },
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
