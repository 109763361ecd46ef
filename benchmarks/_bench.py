"""Shared helpers for the benchmark scripts: machine description, child processes with a hard
time limit and their own peak RSS, project folders for automlops runs, and result files.

Only the standard library (plus psutil, if present) is imported here, so a parent process stays
small and the systems it measures are imported only inside their own child processes.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
KEY_PACKAGES = (
    "automlops",
    "optuna",
    "autogluon.tabular",
    "flaml",
    "lightgbm",
    "xgboost-cpu",
    "xgboost",
    "catboost",
    "scikit-learn",
    "pandas",
    "numpy",
    "pyarrow",
    "hydra-core",
    "torch",
)


# ---------------------------------------------------------------- machine description
def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "ram_gib": round(ram / 2**30, 1) if ram else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git_commit(),
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None


def describe_machine(info: dict[str, Any]) -> str:
    p = info["packages"]
    shown = ", ".join(f"{k} {v}" for k, v in p.items() if v != "not installed")
    missing = ", ".join(k for k, v in p.items() if v == "not installed")
    return "\n".join(
        [
            f"- CPU: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable); RAM {info['ram_gib']} GiB",
            f"- OS: {info['os']}; Python {info['python']}",
            f"- packages: {shown}",
            f"- not installed: {missing or 'none'}",
            f"- load average at start: {', '.join(map(str, info['load_average_at_start']))}; git {info['git_commit']}",
        ]
    )


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- child processes
@dataclass
class ChildRun:
    returncode: int | None
    wall_seconds: float
    peak_rss_bytes: int | None
    timed_out: bool
    log: str  # path of the child's combined stdout/stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 6) -> str:
        try:
            text = Path(self.log).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])[-600:]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_child(
    args: list[str], log: Path, timeout: float | None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> ChildRun:
    """Run `python args...` in its own session; kill the whole group past `timeout` seconds.
    Peak RSS comes from wait4() on that one child (max RSS of it and the children it waited for)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=full_env, start_new_session=True
        )
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group of the child this function started
                except ProcessLookupError:
                    pass
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return ChildRun(proc.returncode, round(wall, 3), int(usage.ru_maxrss) * 1024, timed_out, str(log))


# ---------------------------------------------------------------- automlops project folders
def new_project(folder: Path) -> Path:
    """A scratch automlops project: the repository's conf/ (compose reads conf/ from the cwd)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "conf", folder / "conf", dirs_exist_ok=True)
    return folder


def clone_project(source: Path, target: Path) -> Path:
    """A fresh copy of a prepared project (conf/ and data/), so no search state carries over
    between runs: the Optuna study name does not depend on the budget, so a shared
    .automlops/ would make the second budget resume the first one's study."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copytree(source / "conf", target / "conf")
    shutil.copytree(source / "data", target / "data")
    return target


# ---------------------------------------------------------------- output
def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
