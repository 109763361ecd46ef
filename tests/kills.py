"""Kill a real `automlops run` at a chosen stage with a chosen signal, then look for what it left:
processes that outlived it, a candidate server still answering, an inconsistent registry.

Shared by tests/test_signals.py and benchmarks/reliability.py (which adds it to sys.path).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# a fast run: linear models scored on the valid split, one thread, no permutation importance
FAST = [
    "search.space.lightgbm=null",
    "search.space.random_forest=null",
    "search.validation.method=holdout",
    "search.threads=1",
    "evaluate.importance_repeats=0",
    "search.n_trials=2",
]
# each stage's overrides keep the run in that stage until it is killed
STAGES: dict[str, list[str]] = {
    "search": [*FAST, "search.n_trials=100000"],  # trials until killed
    "gate": [*FAST, "gate.infra.requests=100000000"],  # the candidate server is queried until killed
    "deploy": [
        *FAST,
        "deploy.targets=[bundle,docker]",
        "gate.infra.enabled=false",
    ],  # the docker target probes the release in a child
}
SIGNALS = {"TERM": signal.SIGTERM, "INT": signal.SIGINT, "HUP": signal.SIGHUP, "KILL": signal.SIGKILL}
EXPECTED_CODE = {"TERM": 143, "INT": 130, "HUP": 129, "KILL": -signal.SIGKILL}
EXIT_TIMEOUT = 60.0  # seconds a signalled run may take to exit
TRIAL_LINE = re.compile(r"^trial \d+ ", re.MULTILINE)


def plain_project(root: Path, repo: Path) -> Path:
    """A project without git or DVC (`automlops run` needs neither): the repository's conf/."""
    root.mkdir(parents=True)
    shutil.copytree(repo / "conf", root / "conf")
    return root


@dataclass
class Kill:
    stage: str
    signal: str
    exit_code: int | None = None
    hung: bool = False  # still running EXIT_TIMEOUT s after the signal
    seconds_to_stage: float | None = None
    children: list[str] = field(default_factory=list)  # the run's descendants seen up to the signal
    survivors: list[str] = field(default_factory=list)  # processes of the run alive after it ended
    port: int | None = None  # the candidate server's, when one was up
    health_after: bool = False  # something still answered /health on that port after the run ended
    registry_problems: list[str] = field(default_factory=list)
    log: str = ""


def kill_run(project: Path, stage: str, name: str, env: dict[str, str], timeout: float = 180) -> Kill:
    """Start `automlops run` in `project`, wait until it is in `stage`, send signal `name`, and report."""
    result = Kill(stage, name)
    log_file = project / f"kill-{stage}-{name}.log"
    started = time.monotonic()
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "automlops", "run", *STAGES[stage]],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    run = psutil.Process(process.pid)
    seen: dict[int, psutil.Process] = {}
    try:
        while not _in_stage(stage, log_file, run, seen, result):
            if process.poll() is not None:
                raise AssertionError(
                    f"the run ended (rc {process.returncode}) before reaching {stage}:\n{log_file.read_text()[-3000:]}"
                )
            if time.monotonic() - started > timeout:
                raise AssertionError(f"the run did not reach {stage} in {timeout:g} s:\n{log_file.read_text()[-3000:]}")
            time.sleep(0.05)
        result.seconds_to_stage = round(time.monotonic() - started, 2)
        result.children = [" ".join(_cmdline(child)[1:6]) for child in _descendants(run, seen)]
        process.send_signal(SIGNALS[name])
        try:
            process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            result.hung = True  # killed below: exit_code is then -9
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    result.exit_code = process.returncode
    result.survivors = survivors(seen, project)
    if result.port is not None:
        result.health_after = answers_health(result.port)
    result.registry_problems = registry_problems(project / "models")
    result.log = log_file.read_text()
    for leftover in [seen[pid] for pid in seen] + _in_folder(
        project
    ):  # never leave a process behind, even when the test fails
        try:
            leftover.kill()
        except psutil.Error:
            pass
    return result


def _in_stage(stage: str, log_file: Path, run: psutil.Process, seen: dict[int, psutil.Process], result: Kill) -> bool:
    children = _descendants(run, seen)
    if stage == "search":
        return bool(TRIAL_LINE.search(log_file.read_text()))
    if stage == "gate":
        for child in children:
            port = _port(child)
            if port is not None and answers_health(port):
                result.port = port
                return True
        return False
    return any("automlops.deploy.docker" in " ".join(_cmdline(child)) for child in children)


def _descendants(run: psutil.Process, seen: dict[int, psutil.Process]) -> list[psutil.Process]:
    try:
        children = run.children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        seen.setdefault(child.pid, child)
    return children


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _port(process: psutil.Process) -> int | None:
    line = _cmdline(process)
    if "serve" in line and "--port" in line:
        return int(line[line.index("--port") + 1])
    return None


def answers_health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def survivors(seen: dict[int, psutil.Process], project: Path, grace: float = 1.0) -> list[str]:
    """The run's descendants (seen while it ran, or any process working in the project folder) still
    alive `grace` seconds after it ended; a zombie is dead."""
    deadline = time.monotonic() + grace
    while True:
        alive = [p for p in {**seen, **{p.pid: p for p in _in_folder(project)}}.values() if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return [f"{p.pid} {' '.join(_cmdline(p))[:160]}" for p in alive]
        time.sleep(0.1)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _in_folder(project: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if Path(process.cwd()) == project:
                found.append(process)
        except psutil.Error:
            continue
    return found


def registry_problems(root: Path) -> list[str]:
    """Every alias names an existing version, and every version is complete (its files match the manifest)."""
    from automlops import model_registry as reg
    from automlops.bundle import verify_bundle
    from automlops.errors import AutomlopsError

    problems = []
    for registry in sorted(root.iterdir()) if root.is_dir() else []:
        if not registry.is_dir():
            continue
        versions = reg.list_versions(registry)
        try:
            aliases = reg.read_aliases(registry)["aliases"]
        except AutomlopsError as error:
            problems.append(str(error))
            continue
        problems += [
            f"{registry.name}: alias {alias} -> v{version}, which does not exist"
            for alias, version in aliases.items()
            if int(version) not in versions
        ]
        for version in versions:
            try:
                verify_bundle(reg.version_dir(registry, version))
            except AutomlopsError as error:
                problems.append(f"{registry.name} v{version}: {error}")
    return problems
