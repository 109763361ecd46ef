"""A sweep (`automlops run -m`) runs every job even when one fails, ends with a table of each job's
outcome, and exits with the first failure's code."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, cli
from kills import FAST, plain_project


@pytest.mark.slow  # two pipeline runs
def test_a_failed_job_does_not_stop_the_sweep(tmp_path: Path) -> None:
    project = plain_project(tmp_path / "project", REPO)
    # job 1 asks for roc_auc >= 1.1 and fails the gate; job 2 asks for >= 0.5 and is published
    result = cli("run", "-m", "gate.checks.0.min=1.1,0.5", "gate.infra.enabled=false", *FAST, cwd=project)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: gate: the candidate was not blessed" in result.stderr
    assert (project / "models" / "breast_cancer" / "versions" / "1").is_dir(), "the second job did not run"
    table = result.stdout[result.stdout.index("sweep: ") :].splitlines()
    assert table[0] == "sweep: 2 of 2 job(s) ran, 1 failed"
    assert table[1].split() == ["job", "exit", "outcome"]
    assert table[2].startswith("  gate.checks.0.min=1.1     1  error: gate: the candidate was not blessed (roc_auc")
    assert table[3] == "  gate.checks.0.min=0.5     0  breast_cancer v1 is the champion"
    assert not (project / "params.yaml").exists()  # a sweep never writes params.yaml
