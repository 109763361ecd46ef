"""Registry consistency under concurrency, and registry hygiene: the gate's judgement and the publish
are one critical section (a champion published in between is judged against again), the champion
never gets worse however many runs race, every blessing names the champion it really beat, an
unchanged model publishes no new version, and delete/prune never touch an alias's target."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import new_project, run_env

from automlops.deploy.targets import TARGETS, Release
from automlops.errors import DeployError, GateError
from automlops.model_registry import list_versions, next_version, read_aliases
from automlops.records import Manifest

pytestmark = pytest.mark.slow

# Each search is one cheap trial scored on the holdout split: the runs differ in the model, not in the data or split.
EXPERIMENTS = {
    "lin": "linear: {alpha: {type: float, low: 0.01, high: 10.0, log: true}}",  # a good model (roc_auc ~0.99)
    "forest": "random_forest: {n_estimators: 30, max_features: 0.5, min_samples_leaf: 2}",  # another good one
    "weak": "lightgbm: {n_estimators: 1, num_leaves: 2, learning_rate: 0.01, min_child_samples: 50}",  # deliberately worse (~0.88)
}
FAST = (
    "search.n_trials=1",
    "search.validation.method=holdout",
    "search.progress=false",
    "gate.infra.enabled=false",
    "evaluate.importance_repeats=0",
    "evaluate.plots=false",
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one experiment per entry of EXPERIMENTS; tests copy it, one checkout per run."""
    root = new_project(tmp_path_factory.mktemp("hygiene") / "template")
    families = {"lightgbm": "null", "random_forest": "null", "linear": "null"}
    for name, family in EXPERIMENTS.items():
        space = "\n".join(f"    {f}: {v}" for f, v in families.items() if not family.startswith(f))
        (root / "conf" / "experiment" / f"{name}.yaml").write_text(
            f"# @package _global_\nsearch:\n  space:\n    {family}\n{space}\n"
        )
    return root


def checkout(template: Path, where: Path) -> Path:
    shutil.copytree(template, where, symlinks=True)
    return where


def auc(version_dir: Path) -> float:
    return float(json.loads((version_dir / "manifest.json").read_text())["metrics"]["test"]["roc_auc"])


def assert_truthful(registry: Path) -> None:
    """Every promotion replaced the champion its blessing names, and never with a worse model."""
    promotions = [e for e in read_aliases(registry)["history"] if e["action"] == "promote" and e["alias"] == "champion"]
    assert promotions, "nothing was published"
    for entry in promotions:
        version = registry / "versions" / str(entry["version"])
        blessing = json.loads((version / "blessing.json").read_text())
        judged = (blessing["champion"] or {}).get("version")
        assert judged == entry["previous"], (
            f"v{entry['version']} replaced champion v{entry['previous']}, but its blessing says it "
            f"was judged against {judged and f'v{judged}' or 'no champion'}"
        )
        if entry["previous"] is not None:
            assert auc(version) >= auc(registry / "versions" / str(entry["previous"])), (
                f"v{entry['version']} made the champion worse"
            )


# ---- the critical section, step by step (in this process: deterministic) ----


@pytest.fixture
def probe() -> Iterator[list[dict[str, Any]]]:
    """A deploy target that records what metrics/deploy.json says while a deploy is publishing: what a
    `kill -9` at that moment would leave behind."""
    seen: list[dict[str, Any]] = []

    def record(release: Release, cfg: Any) -> dict[str, Any]:
        seen.append(json.loads(Path("metrics/deploy.json").read_text()))
        return {}

    TARGETS.register("probe")(record)
    yield seen
    TARGETS._items.pop("probe")


def stages(project: Path, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...], *overrides: str) -> Any:
    from automlops.checks import to_typed
    from automlops.config.compose import compose
    from automlops.pipeline import stage_function

    monkeypatch.chdir(project)
    config = to_typed(compose([*FAST, *overrides]))
    return [stage_function(name)(config) for name in names][-1]


GATED = ("prepare", "search", "evaluate", "package", "gate")


def test_a_champion_published_between_gate_and_deploy_is_judged_again(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe: list[dict[str, Any]]
) -> None:
    shared = tmp_path / "models"
    registry = shared / "breast_cancer"
    weak, good = checkout(template, tmp_path / "weak"), checkout(template, tmp_path / "good")
    to = f"deploy.dir={shared}"
    stages(weak, monkeypatch, GATED, "+experiment=weak", to)  # both gated while there is no champion
    stages(good, monkeypatch, GATED, "+experiment=lin", to)
    (good / "metrics" / "deploy.json").write_text('{"published": true, "version": 7}')  # an older run's record

    first = stages(weak, monkeypatch, ("deploy",), "+experiment=weak", to)
    assert first.published and first.version == 1 and first.compared_with is None and not first.rechecked

    # the good candidate was gated against no champion; the weak one is champion now: judged again, it wins
    second = stages(good, monkeypatch, ("deploy",), "+experiment=lin", to, "deploy.targets=[bundle,probe]")
    blessing = json.loads((registry / "versions" / "2" / "blessing.json").read_text())
    assert (blessing["champion"] or {}).get("version") == 1, (
        "v2 replaced champion v1, but its blessing says it was not judged against it"
    )
    assert blessing["comparison"]["basis"] == "unseen_rows" and blessing["rechecked"]
    assert second.published and second.version == 2 and second.compared_with == 1 and second.rechecked
    assert probe == [{"published": None, "state": "in progress", "started_at": probe[0]["started_at"]}], (
        probe
    )  # not version 7
    gated = json.loads((good / "metrics" / "blessing.json").read_text())
    assert blessing["candidate"]["sha256"] == gated["candidate"]["sha256"] and gated["champion"] is None

    # the same release again: same content digest as the champion, so no new version
    again = stages(good, monkeypatch, ("deploy",), "+experiment=lin", to)
    assert again.unchanged and again.version == 2 and not again.published and list_versions(registry) == [1, 2]
    assert json.loads((good / "metrics" / "deploy.json").read_text())["unchanged"]

    # the weak candidate, blessed against no champion, deployed again: refused against v2, which stays
    with pytest.raises(
        GateError, match=r"deploy: the champion changed to v2 after the gate, .*roc_auc .* FAILED.*champion v2 stays"
    ):
        stages(weak, monkeypatch, ("deploy",), "+experiment=weak", to)
    refused = json.loads((weak / "metrics" / "deploy.json").read_text())
    assert refused["published"] is False and refused["rechecked"] and refused["compared_with"] == 2
    assert read_aliases(registry)["aliases"] == {"champion": 2} and list_versions(registry) == [1, 2]
    assert_truthful(registry)

    # a candidate repackaged after the gate is not the one it blessed: refused, and deploy.json says it failed
    stages(good, monkeypatch, ("package",), "+experiment=lin", to, "deploy.example_rows=3")
    with pytest.raises(DeployError, match=r"artifacts/bundle/ is not the bundle the gate blessed .*run the gate again"):
        stages(good, monkeypatch, ("deploy",), "+experiment=lin", to)
    assert json.loads((good / "metrics" / "deploy.json").read_text())["state"] == "failed"
    assert list_versions(registry) == [1, 2]


# ---- real concurrent runs ----


def launch(project: Path, log: Path, *overrides: str) -> subprocess.Popen[bytes]:
    """A real run; its output goes to `log` (a full pipe must not stall a run that holds a lock)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "automlops", "run", *FAST, *overrides],
            cwd=project,
            env=run_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# the 2-run case serves each candidate at the gate: seconds between its champion check and the publish, the race's window
@pytest.mark.parametrize(
    ("plan", "infra"),
    [
        pytest.param([("a", "weak"), ("b", "lin")], "gate.infra.enabled=true", id="2-checkouts"),
        pytest.param(
            [("a", "weak"), ("a", "lin"), ("b", "forest"), ("c", "weak")],
            "gate.infra.enabled=false",
            id="4-runs-3-checkouts",
        ),
    ],
)
def test_concurrent_runs_never_make_the_champion_worse(
    template: Path, tmp_path: Path, plan: list[tuple[str, str]], infra: str
) -> None:
    """Runs in separate checkouts share deploy.dir and meet at the registry lock; two runs in one
    checkout ("a") take turns (they share its data/prepared, artifacts/ and metrics/)."""
    shared = tmp_path / "models"
    projects = {where: checkout(template, tmp_path / where) for where in dict(plan)}
    logs = [tmp_path / f"run{i}.log" for i in range(len(plan))]
    running = [
        launch(projects[where], log, f"+experiment={name}", f"deploy.dir={shared}", infra, "gate.infra.requests=3")
        for (where, name), log in zip(plan, logs)
    ]
    finished = [(process.wait(timeout=300), log.read_text()) for process, log in zip(running, logs)]
    candidates = []
    for (code, err), (where, name) in zip(finished, plan):
        assert code in (0, 1) and "internal error" not in err, f"{name} in {where}: exit {code}\n{err[-2000:]}"
        if code == 1:  # refused at the gate, or at deploy against a champion published meanwhile
            assert re.search(r"not blessed|does not pass against it", err), err[-2000:]
        candidates.append(float(re.findall(r"roc_auc=([0-9.]+)", err)[-1]))
    registry = shared / "breast_cancer"
    assert_truthful(registry)
    best = auc(registry / "versions" / str(read_aliases(registry)["aliases"]["champion"]))
    assert round(best, 4) >= max(candidates), f"the champion ({best:.4f}) is worse than a candidate ({candidates})"
    if sum(where == "a" for where, _ in plan) > 1:
        assert "waiting for another automlops run in this project" in "".join(err for _, err in finished)


# ---- delete, prune, version numbers ----


def registry_of(where: Path, count: int) -> Path:
    """models/breast_cancer with v1..v`count` (small sealed bundles; nothing here loads a model), champion v1."""
    from automlops.bundle import FORMAT_VERSION
    from automlops.deploy.package import seal
    from automlops.model_registry import add_version, promote

    registry = where / "models" / "breast_cancer"
    for version in range(1, count + 1):
        bundle = where / "bundles" / str(version)
        (bundle / "model").mkdir(parents=True)
        (bundle / "model" / "model.joblib").write_bytes(f"model {version}".encode())
        seal(
            bundle, Manifest.from_dict({"format_version": FORMAT_VERSION, "name": "breast_cancer", "version": version})
        )
        add_version(registry, bundle, version)
    promote(registry, 1)
    return registry


def models(registry: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`automlops models ...` through the real command line (in this process: no interpreter start per call)."""
    from automlops.cli import main

    capsys.readouterr()
    code = main(["models", *args, "--dir", str(registry.parent)])
    out, err = capsys.readouterr()
    return code, out, err


def test_delete_refuses_an_alias_target_and_numbers_are_never_reused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = registry_of(tmp_path, 3)
    models(registry, capsys, "promote", "breast_cancer", "3", "--alias", "staging")
    code, _, err = models(registry, capsys, "delete", "breast_cancer", "1")
    assert code == 1 and err.count("\n") == 1, err
    assert re.search(r"v1 is the target of alias 'champion'; point the alias at another version first", err)
    assert list_versions(registry) == [1, 2, 3]
    models(registry, capsys, "promote", "breast_cancer", "2", "--alias", "staging")
    code, out, _ = models(registry, capsys, "delete", "breast_cancer", "3")
    assert code == 0 and "deleted v3" in out
    assert list_versions(registry) == [1, 2] and next_version(registry) == 4  # v3's number is not given again
    code, _, err = models(registry, capsys, "delete", "breast_cancer", "3")
    assert code == 1 and "has no version 3; it has 1, 2" in err


def test_prune_keeps_the_newest_and_every_alias_target_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = registry_of(tmp_path, 5)
    models(registry, capsys, "promote", "breast_cancer", "2", "--alias", "staging")
    code, out, err = models(registry, capsys, "prune", "breast_cancer", "--keep", "1")
    assert code == 0, err
    assert "deleted v3, v4; kept the newest 1 and alias target(s) v1 (champion), v2 (staging)" in out
    assert list_versions(registry) == [1, 2, 5] and next_version(registry) == 6
    assert [e["version"] for e in read_aliases(registry)["history"] if e["action"] == "delete"] == [3, 4]
    code, out, _ = models(registry, capsys, "prune", "breast_cancer", "--keep", "0")
    assert code == 0 and "deleted v5; kept the newest 0 and alias target(s) v1 (champion), v2 (staging)" in out
    assert next_version(registry) == 6  # the highest number was deleted, and is still not given again


def test_rollback_to_a_deleted_version_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = registry_of(tmp_path, 3)
    models(registry, capsys, "promote", "breast_cancer", "2")
    models(registry, capsys, "promote", "breast_cancer", "3")
    assert models(registry, capsys, "delete", "breast_cancer", "2")[0] == 0
    code, _, err = models(registry, capsys, "rollback", "breast_cancer")
    assert code == 1 and "alias 'champion' held v2 before v3, but v2 was deleted" in err
    assert read_aliases(registry)["aliases"]["champion"] == 3


# ---- the local Optuna storage ----


def test_processes_opening_a_new_local_optuna_storage_together_all_get_the_study(tmp_path: Path) -> None:
    """Runs and `automlops worker`s starting at once on a fresh .automlops/optuna.db: SQLite let each
    create the tables, and all but one failed with "table ... already exists"."""
    import threading
    from dataclasses import replace

    from automlops.config.schema import SearchConfig
    from automlops.search.optuna_engine import open_study, plan

    cfg = replace(SearchConfig(), space={"linear": {}})
    the_plan = plan(cfg, "binary", 1)
    for attempt in range(3):  # each round a new file: the race is lost in most rounds without the fix
        folder, errors, names = tmp_path / str(attempt), [], set()
        barrier = threading.Barrier(4)

        def open_it() -> None:
            barrier.wait()
            try:
                names.add(open_study(cfg, the_plan, 42, "data", folder).study_name)
            except Exception as error:  # noqa: BLE001  (collected and shown below)
                errors.append(str(error))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors and len(names) == 1, errors[:1]
