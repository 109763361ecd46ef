"""Shared fixtures: a throwaway project (git + DVC) built from this repository's conf/ and dvc.yaml,
and helpers that run the real `automlops` and `dvc` commands in it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

# OpenMP threads (LightGBM, scikit-learn's histogram boosting, XGBoost) sleep instead of spinning while
# they wait: `make test` runs two workers on two cores, each fit asks for search.threads=2, and spinning
# threads burn the other worker's core. Results are the same; test_search took 122 -> 74 CPU s.
# Set before anything loads OpenMP here, and inherited by every `automlops` subprocess.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_FILES = ("conf", "dvc.yaml", "params.yaml", "data/raw", "data/incoming")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PIPELINE_FLAG = "_automlops_runs_pipeline"
F = TypeVar("F", bound=Callable[..., Any])


def run_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # dvc stages call `automlops`
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(extra or {})
    return env


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    """Run the real `automlops` command line (under `umask` when given, else this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "automlops", *args],
        cwd=cwd,
        env=run_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        umask=umask,
    )


def cli_in_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`automlops ARGS` as `cli` runs it, but in this process (automlops.cli.main, as click's CliRunner
    does): for the many cases of a bad-input matrix that stop before any work, where starting Python
    and importing the libraries again would be most of the cost. `cli` keeps covering the entry point."""
    import contextlib
    import io
    import logging

    from automlops.cli import main

    out, err, root = io.StringIO(), io.StringIO(), logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()  # main's logging.basicConfig then writes to this call's stderr
    cwd_before = Path.cwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(cwd_before)
        root.handlers[:] = saved
    return subprocess.CompletedProcess(["automlops", *args], code, out.getvalue(), err.getvalue())


def dvc(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dvc"), *args], cwd=cwd, env=run_env(env), capture_output=True, text=True, timeout=timeout
    )


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True, capture_output=True
    )


def snapshot(root: Path, names: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every file under the given paths (a missing path is recorded as missing), to prove
    that a failed command left them untouched. Lock files are left out: they are not artifacts, and
    `.automlops/run.lock` holds the pid of the last run that took it."""
    state: dict[str, str] = {}
    for name in names:
        path = root / name
        if not path.exists():
            state[name] = "<missing>"
            continue
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            if file.suffix == ".lock":
                continue
            state[file.relative_to(root).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return state


def new_project(root: Path) -> Path:
    """Build a throwaway project at `root` (the `project` fixture, usable by wider-scoped fixtures)."""
    root.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / name)
    git("init", "-q", cwd=root)
    assert dvc("init", "-q", cwd=root).returncode == 0
    assert dvc("config", "hydra.enabled", "true", cwd=root).returncode == 0
    git("add", "-A", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    return root


def champion(root: Path, name: str) -> Path:
    """The folder of the version `models/<name>` resolves to (its champion)."""
    from automlops.model_registry import resolve

    return resolve(root / "models" / name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh user project: conf/, dvc.yaml, params.yaml, data/raw, in a git repo with DVC initialised."""
    return new_project(tmp_path / "project")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The machine's PostgreSQL (trust auth, database `test`). Unreachable: fail in CI, skip elsewhere."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_URL)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as error:  # any driver or network failure means the same: no server
        message = f"PostgreSQL at {PG_URL} unreachable: {str(error).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


def runs_pipeline(fixture: F) -> F:
    """Marks a fixture that runs the pipeline (`automlops run`, `dvc repro`, model fits): every test
    that uses it, directly or through other fixtures, is marked slow, so `make test-fast` never waits
    on it. Put it under @pytest.fixture."""
    setattr(fixture, PIPELINE_FLAG, True)
    return fixture


def _uses_pipeline(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)  # the test's fixture closure (pytest's, not public API)
    if info is None:
        return False
    return any(
        getattr(definition.func, PIPELINE_FLAG, False)
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


@pytest.fixture(scope="session")
@runs_pipeline
def penguins_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One real `automlops run +experiment=penguins search.n_trials=2`, shared read-only by the tests
    that need a packaged bundle (copy it before modifying it). Returns (project root, the run). Runs
    under umask 022 whatever the shell's, so test_file_modes knows the modes to expect."""
    root = new_project(tmp_path_factory.mktemp("penguins") / "project")
    result = cli("run", "+experiment=penguins", "search.n_trials=2", cwd=root, umask=0o022)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


LONGEST_FILES = ("test_dvc.py",)  # minutes of `dvc repro`: started first, so it never runs alone at the end


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks slow every test that uses a @runs_pipeline fixture. With `make test`'s two workers (xdist,
    whole files each), the longest file starts first."""
    for item in items:
        if _uses_pipeline(item):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.path.name not in LONGEST_FILES)  # stable: the rest keep their order
