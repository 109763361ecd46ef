"""No process outlives `automlops run`, however it is stopped: SIGTERM, SIGINT and SIGHUP run the
cleanup (the gate stops its server) and exit 128 + the signal; SIGKILL takes every child down with it
(PR_SET_PDEATHSIG). The registry stays consistent in every case. tests/kills.py does the killing;
benchmarks/reliability.py tabulates the same kills."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, run_env
from kills import EXIT_TIMEOUT, EXPECTED_CODE, SIGNALS, STAGES, Kill, kill_run, plain_project

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project per signal, kept across stages: its Optuna study is reused, so later runs only refit."""
    root = tmp_path_factory.mktemp("signals")
    return {name: plain_project(root / name, REPO) for name in SIGNALS}


def problems(kill: Kill) -> list[str]:
    found = [f"still running {EXIT_TIMEOUT:g} s after the signal"] if kill.hung else []
    found += [f"outlived the run: {line}" for line in kill.survivors]
    if kill.health_after:
        found.append(f"the candidate server on port {kill.port} still answers /health")
    if kill.exit_code != EXPECTED_CODE[kill.signal]:
        found.append(f"exit code {kill.exit_code}, expected {EXPECTED_CODE[kill.signal]}")
    found += [f"registry: {problem}" for problem in kill.registry_problems]
    if kill.signal != "KILL":
        stopped = "interrupted" if kill.signal == "INT" else f"stopped by SIG{kill.signal}"
        if f"{stopped}; run the same command again" not in kill.log or "Traceback" in kill.log:
            found.append("no one-line message saying how it stopped")
    return [f"SIG{kill.signal} during {kill.stage}: {problem}" for problem in found]


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("stage", list(STAGES))
def test_killed_run_leaves_no_process_and_a_consistent_registry(projects: dict[str, Path], stage: str) -> None:
    """Each signal in its own project, the four at once (most of a run waits on imports and the server)."""
    with ThreadPoolExecutor(len(SIGNALS)) as pool:
        kills = list(pool.map(lambda name: kill_run(projects[name], stage, name, run_env()), SIGNALS))
    found = [problem for kill in kills for problem in problems(kill)]
    assert found == [], "\n".join(found) + "\n" + "\n---\n".join(k.log[-1500:] for k in kills if problems(k))


def test_a_signal_counts_even_when_cleanup_raises_something_else() -> None:
    """Optuna, interrupted while it records a trial, raises AssertionError from a `finally`: still a stop."""
    from automlops.children import stop_signal

    try:
        try:
            raise KeyboardInterrupt
        finally:
            raise AssertionError("Should not reach.")  # noqa: B012
    except AssertionError as error:
        assert stop_signal(error) == 2
    assert stop_signal(ValueError("unrelated")) is None


@linux_only
def test_sigterm_stops_the_command_as_ctrl_c_does() -> None:
    """The handlers turn SIGTERM into an exception that unwinds: `finally` blocks run, exit 143."""
    code = (
        "import os, signal, sys, time\n"
        "from automlops.children import install_handlers, Terminated\n"
        "install_handlers()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
        "except Terminated as stop:\n"
        "    print('cleaned up', stop.signum); sys.exit(128 + stop.signum)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (143, "cleaned up 15"), done.stderr

    # a second signal while cleaning up (Ctrl-C twice) leaves at once, with its own code
    twice = code.replace("print('cleaned up'", "os.kill(os.getpid(), signal.SIGHUP); time.sleep(5); print('cleaned up'")
    done = subprocess.run([sys.executable, "-c", twice], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (129, ""), done.stderr
    assert "stopped by a second SIGHUP, without cleanup" in done.stderr


@linux_only
def test_a_thread_that_never_ends_does_not_keep_a_stopped_command_alive() -> None:
    """Optuna's heartbeat thread (not a daemon) runs forever when the signal lands before it is told to stop."""
    code = (
        "import os, signal, threading, time\n"
        "import automlops.cli as cli\n"
        "def main():\n"
        "    threading.Thread(target=threading.Event().wait).start()\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT); time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        return 130\n"
        "cli.main = main\n"
        "cli.entry_point()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=40)
    assert done.returncode == 130, done.stderr
