#!/usr/bin/env python3
"""N concurrent `automlops run`s publishing to one registry: does the champion ever get worse, and does
every blessing name the champion it really beat? (issue 14: "N concurrent runs -> champion never worse")

    python benchmarks/concurrency.py                      # N = 2 and 4, 3 rounds each (several minutes)
    python benchmarks/concurrency.py --sizes 2 --rounds 1 --results /tmp/cc   # a smoke run

Each size N has its own registry (an absolute deploy.dir shared by every run) and runs several rounds.
A round starts N real `automlops run` processes at once on breast_cancer (the same data and run.seed, so
the same split: every candidate is scored on the same test rows), each with a different search space and
one deliberately worse (a single two-leaf LightGBM tree). Runs 1 and 2 of a round share one checkout
from N = 4 (they take turns on its workspace); the others each have their own, as CI jobs or queued
`dvc exp run`s would. The gate serves every candidate (infra validation), which leaves seconds between its champion
check and the publish: the window in which another run can publish.

Recorded per round: the champion (version, test roc_auc) before and after, and per run its config, exit
code, outcome (published / unchanged / refused by the gate / refused by deploy's recheck), its candidate's
roc_auc, whether it waited for its checkout and whether deploy judged it again. Checked per round: the
champion after is no worse than before and no worse than any candidate; every version published names, in
its blessing.json, the champion it replaced.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench  # noqa: E402

NAME = "breast_cancer"  # run.name, from the data
FAMILIES = ("lightgbm", "random_forest", "linear")
# search spaces, one family each; WEAK is deliberately worse, the others take turns as the round's good runs
GOOD = {
    "linear": ("linear", "{alpha: {type: float, low: 0.01, high: 10.0, log: true}}"),
    "linear-strong": ("linear", "{alpha: 30.0}"),
    "forest": ("random_forest", "{n_estimators: 30, max_features: 0.5, min_samples_leaf: 2}"),
    "forest-deep": ("random_forest", "{n_estimators: 60, max_features: 0.3, min_samples_leaf: 1}"),
    "lightgbm": ("lightgbm", "{n_estimators: 50, num_leaves: 7, learning_rate: 0.1}"),
    "lightgbm-slow": ("lightgbm", "{n_estimators: 100, num_leaves: 15, learning_rate: 0.05, min_child_samples: 10}"),
}
WEAK = ("weak", ("lightgbm", "{n_estimators: 1, num_leaves: 2, learning_rate: 0.01, min_child_samples: 50}"))
RUN = (
    "search.n_trials=1",
    "search.validation.method=holdout",
    "search.progress=false",
    "evaluate.importance_repeats=0",
    "evaluate.plots=false",
    "gate.infra.enabled=true",
    "gate.infra.requests=3",
)


def experiment(family: str, space: str) -> str:
    others = "\n".join(f"    {f}: null" for f in FAMILIES if f != family)
    return f"# @package _global_\nsearch:\n  space:\n    {family}: {space}\n{others}\n"


def checkout(folder: Path) -> Path:
    _bench.new_project(folder)
    for name, (family, space) in [*GOOD.items(), WEAK]:
        (folder / "conf" / "experiment" / f"{name}.yaml").write_text(experiment(family, space))
    return folder


def champion(registry: Path) -> tuple[int | None, float | None]:
    aliases = registry / "aliases.json"
    version = json.loads(aliases.read_text())["aliases"].get("champion") if aliases.is_file() else None
    return version, (auc(registry, version) if version else None)


def auc(registry: Path, version: int) -> float:
    return float(
        json.loads((registry / "versions" / str(version) / "manifest.json").read_text())["metrics"]["test"]["roc_auc"]
    )


def outcome(code: int, log: str, deploy: dict[str, Any] | None) -> str:
    if code == 0 and deploy and deploy.get("published"):
        return f"published v{deploy['version']}"
    if code == 0 and deploy and deploy.get("unchanged"):
        return f"unchanged (= v{deploy['version']})"
    if "does not pass against it" in log:
        return "refused by deploy (recheck)"
    if "was not blessed" in log:
        return "refused by the gate"
    return f"error (exit {code})"


def one_round(size: int, index: int, registry: Path, workdir: Path) -> dict[str, Any]:
    goods = list(GOOD)
    names = [goods[(index * (size - 1) + i) % len(goods)] for i in range(size - 1)]
    names.insert(index % size, WEAK[0])  # the worse run takes another slot each round
    shared = 1 if size >= 4 else 0  # from N = 4, runs 1 and 2 share a checkout
    folders = [workdir / f"n{size}-r{index + 1}-{chr(ord('a') + max(i - shared, 0))}" for i in range(size)]
    for folder in dict.fromkeys(folders):
        checkout(folder)
    before = champion(registry)
    started = time.perf_counter()
    logs = [workdir / f"n{size}-r{index + 1}-run{i + 1}.log" for i in range(size)]
    running = []
    for name, folder, log in zip(names, folders, logs):
        with log.open("w") as out:
            running.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "automlops",
                        "run",
                        f"+experiment={name}",
                        f"deploy.dir={registry.parent}",
                        *RUN,
                    ],
                    cwd=folder,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    codes = [process.wait(timeout=900) for process in running]
    wall = time.perf_counter() - started
    runs = []
    for i, (name, folder, log, code) in enumerate(zip(names, folders, logs, codes)):
        text = log.read_text(errors="replace")
        scores = re.findall(r"roc_auc=([0-9.]+)", text)
        deploy_file = folder / "metrics" / "deploy.json"
        deploy = json.loads(deploy_file.read_text()) if deploy_file.is_file() and folders.count(folder) == 1 else None
        if deploy is None and code == 0:  # two runs in one checkout: each one's record is in its own log
            match = re.search(r"model \S+ v(\d+) is the champion|unchanged: the candidate equals champion v(\d+)", text)
            deploy = (
                {
                    "published": bool(match and match.group(1)),
                    "unchanged": bool(match and match.group(2)),
                    "version": int(match.group(1) or match.group(2)),
                }
                if match
                else None
            )
        runs.append(
            {
                "run": i + 1,
                "config": name,
                "worse": name == WEAK[0],
                "checkout": folder.name,
                "exit": code,
                "outcome": outcome(code, text, deploy),
                "candidate_auc": float(scores[-1]) if scores else None,
                "waited": "waiting for another automlops run in this project" in text,
                "rechecked": "judging the candidate again" in text,
                "internal_error": "internal error" in text or "Traceback" in text,
                "log_tail": " | ".join(text.strip().splitlines()[-3:])[-400:],
            }
        )
    after = champion(registry)
    return {
        "size": size,
        "round": index + 1,
        "wall_seconds": round(wall, 1),
        "before": before,
        "after": after,
        "runs": runs,
        "problems": problems(registry, before, after, runs),
    }


def problems(
    registry: Path,
    before: tuple[int | None, float | None],
    after: tuple[int | None, float | None],
    runs: list[dict[str, Any]],
) -> list[str]:
    found = []
    if before[1] is not None and (after[1] is None or after[1] < before[1]):
        found.append(f"the champion got worse: v{before[0]} ({before[1]:.4f}) -> v{after[0]} ({after[1]})")
    best = max((r["candidate_auc"] for r in runs if r["candidate_auc"] is not None), default=None)
    if best is not None and after[1] is not None and round(after[1], 4) < best:
        found.append(f"the champion ({after[1]:.4f}) is worse than a candidate of this round ({best:.4f})")
    found += [
        f"run {r['run']} ({r['config']}): {r['outcome']}: {r['log_tail']}"
        for r in runs
        if r["internal_error"] or r["outcome"].startswith("error")
    ]
    history = (
        json.loads((registry / "aliases.json").read_text())["history"] if (registry / "aliases.json").is_file() else []
    )
    for entry in history:
        if entry.get("action") != "promote" or entry.get("alias") != "champion":
            continue
        blessing = json.loads((registry / "versions" / str(entry["version"]) / "blessing.json").read_text())
        judged = (blessing.get("champion") or {}).get("version")
        if judged != entry["previous"]:
            found.append(
                f"v{entry['version']} replaced v{entry['previous']}, but its blessing names {judged and f'v{judged}' or 'no champion'}"
            )
    return sorted(set(found))


def report(results: list[dict[str, Any]], info: dict[str, Any], args: argparse.Namespace, total: float) -> str:
    def shown(champ: list[Any] | tuple[Any, ...]) -> str:
        return f"v{champ[0]} ({champ[1]:.4f})" if champ[0] else "none"

    rows = [
        [
            r["size"],
            r["round"],
            shown(r["before"]),
            "; ".join(
                f"{run['config']}{' [worse]' if run['worse'] else ''}{' (waited)' if run['waited'] else ''}: {run['outcome']}"
                f"{' after recheck' if run['rechecked'] and run['outcome'].startswith('published') else ''}"
                f" @ {run['candidate_auc']:.4f}"
                if run["candidate_auc"] is not None
                else f"{run['config']}: {run['outcome']}"
                for run in r["runs"]
            ),
            shown(r["after"]),
            f"{r['wall_seconds']:.0f} s",
            "ok" if not r["problems"] else "; ".join(r["problems"]),
        ]
        for r in results
    ]
    runs = [run for r in results for run in r["runs"]]
    count = lambda prefix: sum(run["outcome"].startswith(prefix) for run in runs)  # noqa: E731
    violations = sum(len(r["problems"]) for r in results)
    return "\n".join(
        [
            "# Concurrent runs and the registry",
            "",
            f"{_bench.now()}, {_bench.duration(total)} in all. `{_bench.command_line()}`"
            + (f"  \nNote: {args.note}" if args.note else ""),
            "",
            _bench.describe_machine(info),
            "",
            f"**{len(results)} rounds, {len(runs)} runs: {violations} violation(s).** The champion never got worse"
            if not violations
            else f"**{len(results)} rounds, {len(runs)} runs: {violations} violation(s).**",
            "" if violations else "and every published version's blessing.json names the champion it replaced.",
            "",
            f"Outcomes: {count('published')} published ({sum(run['rechecked'] and run['outcome'].startswith('published') for run in runs)} "
            f"of them after deploy judged them again against a champion published meanwhile), {count('unchanged')} unchanged "
            f"(the champion's content digest), {count('refused by the gate')} refused by the gate, {count('refused by deploy')} "
            f"refused by deploy's recheck, {count('error')} errors; {sum(run['waited'] for run in runs)} run(s) waited for "
            "their checkout.",
            "",
            "Each round starts N `automlops run`s at once on breast_cancer (same split), one with a deliberately worse space "
            "(`weak`: one two-leaf LightGBM tree); from N = 4 runs 1 and 2 share a checkout, the others have their own; all publish to "
            "one registry per N through an absolute `deploy.dir`. roc_auc is each model's test score (the gate compares on "
            "the same rows). Champion = `champion` alias before and after the round.",
            "",
            _bench.md_table(
                [
                    "N",
                    "round",
                    "champion before",
                    "runs (config: outcome @ candidate roc_auc)",
                    "champion after",
                    "wall",
                    "checks",
                ],
                rows,
            ),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2,4", help="concurrent runs per round, comma-separated (default 2,4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (default 3)")
    parser.add_argument(
        "--workdir", type=Path, help="where the checkouts, logs and registries go (default: a temp folder)"
    )
    parser.add_argument("--results", type=Path, default=_bench.RESULTS, help="folder for concurrency.md/.json")
    parser.add_argument("--note", default="", help="a line for the results header (e.g. the machine was shared)")
    args = parser.parse_args()
    info = _bench.machine_info()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="automlops-concurrency-"))
    started = time.perf_counter()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        registry = workdir / f"registry-n{size}" / NAME
        for index in range(args.rounds):
            result = one_round(size, index, registry, workdir)
            results.append(result)
            print(
                f"N={size} round {index + 1}: champion {result['before']} -> {result['after']}, "
                f"{[r['outcome'] for r in result['runs']]}, {result['problems'] or 'ok'}",
                flush=True,
            )
    total = time.perf_counter() - started
    _bench.write_json(
        args.results / "concurrency.json",
        {
            "machine": info,
            "command": _bench.command_line(),
            "note": args.note,
            "seconds": round(total, 1),
            "workdir": str(workdir),
            "rounds": results,
        },
    )
    _bench.write_text(args.results / "concurrency.md", report(results, info, args, total))
    print(f"wrote {args.results / 'concurrency.md'} (workdir {workdir})")
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
