"""`automlops worker` processes sharing one Optuna study in PostgreSQL, and the run that then
resumes that study to refit and package its best trial."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
from conftest import cli, new_project, run_env

from automlops.bundle import load_bundle

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_TRIALS = 12
WORKERS = 2
STUDY_LINE = re.compile(r"^study (automlops-[0-9a-f]{12}): (\d+) trial\(s\) finished$", re.M)
TRIAL_LINE = re.compile(r"^trial (\d+) ", re.M)


@pytest.fixture
def seed() -> int:
    """A seed no earlier run used: it is part of the study's name, so every run starts a new study."""
    return uuid.uuid4().int % 1_000_000_000


@pytest.fixture
def studies_to_delete(postgres_url: str):
    names: list[str] = []
    yield names
    for name in names:
        try:
            optuna.delete_study(study_name=name, storage=postgres_url)
        except KeyError:  # never created, or already gone
            pass


def test_two_workers_share_one_study_and_the_run_resumes_it(
    tmp_path: Path, postgres_url: str, seed: int, studies_to_delete: list[str]
) -> None:
    root = new_project(tmp_path / "project")
    overrides = [
        f"search.storage={postgres_url}",
        f"run.seed={seed}",
        f"search.n_trials={N_TRIALS}",
        "search.space.random_forest=null",
        "search.space.lightgbm.n_estimators.high=150",
        "search.threads=1",  # one core per worker
    ]
    for args in (("compose", *overrides), ("stage", "prepare")):  # workers score on the data the run will prepare
        done = cli(*args, cwd=root)
        assert done.returncode == 0, done.stderr
    before = set(optuna.get_all_study_names(postgres_url))

    logs = [(tmp_path / f"worker{i}.out", tmp_path / f"worker{i}.err") for i in range(WORKERS)]
    processes = []
    try:
        for out, err in logs:
            with out.open("w") as stdout, err.open("w") as stderr:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "automlops", "worker", *overrides],
                        cwd=root,
                        env=run_env(),
                        stdout=stdout,
                        stderr=stderr,
                    )
                )
        for process in processes:
            process.wait(timeout=240)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        studies_to_delete.extend(set(optuna.get_all_study_names(postgres_url)) - before)

    outputs = [(out.read_text(), err.read_text()) for out, err in logs]
    for process, (_stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr and "error" not in stderr.lower(), stderr[-3000:]
    names = {STUDY_LINE.search(stdout).group(1) for stdout, _ in outputs if STUDY_LINE.search(stdout)}
    assert len(names) == 1, f"the workers name different studies (or none): {[o for o, _ in outputs]}"
    study_name = names.pop()
    assert studies_to_delete == [study_name], "the workers created other studies than the one they name"

    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(len(trials))), "trial numbers are not unique and contiguous from 0"
    assert {t.state.name for t in trials} <= {"COMPLETE", "FAIL", "PRUNED"}, [t.state.name for t in trials]
    # MaxTrialsCallback stops each worker at the study's total; a trial already running elsewhere may finish after
    assert N_TRIALS <= len(trials) <= N_TRIALS + WORKERS - 1
    assert any(t.state.name == "COMPLETE" for t in trials)

    # each trial was run by one worker, and both workers did some of them
    per_worker = [{int(n) for n in TRIAL_LINE.findall(stderr)} for _, stderr in outputs]
    assert all(per_worker), f"a worker ran no trial: {per_worker}"
    assert not per_worker[0] & per_worker[1]
    assert per_worker[0] | per_worker[1] == {t.number for t in trials}

    # the run with the same overrides finds the budget spent: it refits the study's best and packages it
    run = cli("run", *overrides, cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"resuming study {study_name}: {len(trials)} trial(s) already finished" in run.stderr
    assert not TRIAL_LINE.search(run.stderr), "the run ran trials although the study had its budget"
    assert len(optuna.load_study(study_name=study_name, storage=postgres_url).trials) == len(trials)
    assert set(optuna.get_all_study_names(postgres_url)) - before == {study_name}

    bundle = load_bundle(root / "models" / "breast_cancer")
    lineage = bundle.manifest.lineage.search
    assert lineage["study_name"] == study_name
    assert lineage["storage"] == postgres_url
    assert lineage["trials_finished"] == len(trials)
    assert lineage["best_trial"] == study.best_trial.number
    assert bundle.manifest.model.params == study.best_trial.user_attrs["record"]["params"]
    assert not (root / ".automlops" / "optuna.db").exists(), "a local sqlite study was used instead of PostgreSQL"
