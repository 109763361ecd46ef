"""A search killed mid-way (SIGKILL, no chance to clean up) resumes from its Optuna study in
.automlops/optuna.db: every finished trial is kept and only the missing ones run."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from conftest import REPO, cli, run_env

from automlops.bundle import load_bundle

pytestmark = pytest.mark.slow

# LightGBM only: every trial takes a noticeable moment, so the run can be caught mid-search
ONLY_LIGHTGBM = ["search.space.random_forest=null", "search.space.linear=null"]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)


def complete_trials(db: Path) -> int:
    """COMPLETE trials in the study database, read without creating or locking anything."""
    if not db.is_file():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as connection:
            return int(connection.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet, or the writer holds the lock
        return 0


def finished_trials(storage: str, study_name: str) -> dict[int, tuple[dict, float | None, str]]:
    study = optuna.load_study(study_name=study_name, storage=storage)
    return {t.number: (t.params, t.value, t.state.name) for t in study.get_trials(deepcopy=False, states=FINISHED)}


def test_killed_search_resumes_with_its_finished_trials(project: Path, tmp_path: Path) -> None:
    db = project / ".automlops" / "optuna.db"
    storage = f"sqlite:///{db}"
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "automlops", "run", "search.n_trials=40", *ONLY_LIGHTGBM],
        cwd=project,
        env=run_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while complete_trials(db) < 3:
            assert process.poll() is None, (
                f"the run ended (rc {process.returncode}) before 3 trials:\n{(tmp_path / 'killed.log').read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, "3 trials did not complete in time"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL

    names = optuna.get_all_study_names(storage)
    assert len(names) == 1
    study_name = names[0]
    before = finished_trials(storage, study_name)
    assert 3 <= len(before) < 40
    # the trial in flight at the kill: its heartbeat goes stale after the grace period, and whichever run
    # looks after that marks it FAIL, possibly the resumed run below, midway
    in_flight = {
        t.number
        for t in optuna.load_study(study_name=study_name, storage=storage).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
        )
    }
    assert len(in_flight) <= 1, in_flight
    # the killed run left nothing half-made behind, and did not claim success in params.yaml
    assert not (project / "models" / "breast_cancer").exists()
    assert not (project / "artifacts" / "search").exists()
    assert (project / "params.yaml").read_text() == (REPO / "params.yaml").read_text()

    target = len(before) + 2
    resumed = cli("run", f"search.n_trials={target}", *ONLY_LIGHTGBM, cwd=project)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming study {study_name}: {len(before)} trial(s) already finished" in resumed.stderr

    assert optuna.get_all_study_names(storage) == [study_name]
    after = finished_trials(storage, study_name)
    for number, trial in before.items():
        assert after.get(number) == trial, f"finished trial {number} changed or vanished on resume"
    new = sorted(set(after) - set(before) - in_flight)
    assert new and min(new) > max([*before, *in_flight]), new
    failed_in_flight = in_flight & set(after)
    assert all(after[number][2] == "FAIL" for number in failed_in_flight), after
    # once marked FAIL, the killed trial counts towards n_trials: the resumed run stops one trial early,
    # unless it was marked as the last new trial started, which leaves the study one over n_trials
    assert len(new) == 2 or (len(new) == 1 and failed_in_flight), (new, in_flight)
    assert len(after) == target + (len(new) == 2 and len(failed_in_flight)), (len(after), target, new, in_flight)

    bundle = load_bundle(project / "models" / "breast_cancer")
    search = bundle.manifest.lineage.search
    assert search["study_name"] == study_name
    assert search["trials_finished"] == len(after)
    best = optuna.load_study(study_name=study_name, storage=storage).best_trial
    assert search["best_trial"] == best.number
    assert bundle.manifest.model.params == best.user_attrs["record"]["params"]
    assert json.loads((project / "metrics" / "search.json").read_text())["trials"] == len(after)

    # the resumed trials explore new points: re-running an earlier candidate would waste the budget
    earlier = [params for params, _, _ in before.values()]
    repeats = [number for number in new if after[number][0] in earlier]
    assert not repeats, (
        f"resumed trial(s) {repeats} repeat the parameters of earlier trials: the seeded sampler restarts "
        "its random stream on resume"
    )
