"""The pipeline's stages, each declared once: the params it reads, the files it reads and writes.

`automlops stage NAME` takes its choices from STAGES, `automlops run` runs the stages it marks `in_run`
(automlops.pipeline.run_<name>, the stage's function), and tests/test_stages.py checks dvc.yaml against
it, so a stage that reads a config key dvc.yaml does not list (a stale output after `dvc repro`) fails a
fast test. This module imports nothing of automlops (`automlops --help` stays fast; deploy/ and monitor/
take STATE_DIR from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR = Path(".automlops")  # state outside DVC's outputs: Optuna studies (so searches resume), locks, mlflow.db
CONF_OK = STATE_DIR / "conf.ok"  # written by the check_conf stage when params.yaml matches conf/
PREPARED_DIR = Path("data/prepared")
VALIDATION_REPORT = Path("metrics/validation.json")  # prepare's validation of the batch against data.schema
SEARCH_DIR = Path("artifacts/search")
SEARCH_METRICS = Path("metrics/search.json")
LEADERBOARD = Path("metrics/leaderboard.csv")
TEST_METRICS = Path("metrics/test.json")
SLICE_METRICS = Path("metrics/slices.json")
PLOTS_DIR = Path("metrics/plots")  # the evaluate stage's DVC plot files (automlops.evaluate.PLOT_FILES)
EVALUATE_DIR = Path("artifacts/evaluate")
ANSWER_STATISTICS = EVALUATE_DIR / "answers.json"  # statistics of the model's test answers, for package
CANDIDATE_DIR = Path("artifacts/bundle")  # the packaged candidate, before the gate
BLESSING = Path("metrics/blessing.json")  # the gate's verdict, every check with its numbers
DEPLOY_RECORD = Path("metrics/deploy.json")  # what the deploy stage published where
MONITOR_REPORT = Path("metrics/monitor/monitor.json")  # the monitor's report at monitor.out's default, a DVC metric


@dataclass(frozen=True)
class Stage:
    """One stage as dvc.yaml runs it (`automlops stage NAME`); its function is automlops.pipeline.run_<name>."""

    name: str
    params: tuple[str, ...] = ()  # params.yaml sections or dotted keys the stage reads: dvc.yaml's `params`
    deps: tuple[str, ...] = ()  # files and folders it reads: dvc.yaml's `deps`
    outs: tuple[str, ...] = ()  # what it writes: dvc.yaml's `outs`
    metrics: tuple[str, ...] = ()  # dvc.yaml's `metrics`
    plots: tuple[str, ...] = ()  # dvc.yaml's `plots` (PLOTS_DIR: every file of automlops.evaluate.PLOT_FILES in it)
    in_run: bool = True  # `automlops run` runs it; check_conf and monitor run under `dvc repro` only

    @property
    def cmd(self) -> str:
        return f"automlops stage {self.name}"

    def reads(self, key: str) -> bool:
        """Whether the declared params cover the dotted `key` (a section covers every key in it)."""
        return any(key == param or key.startswith(param + ".") for param in self.params)


def _paths(*paths: Path | str) -> tuple[str, ...]:
    return tuple(Path(path).as_posix() if isinstance(path, Path) else path for path in paths)


_CHAMPION = ("deploy.dir", "deploy.alias", "deploy.signing", "run.name")  # which model is the champion, and its keys

STAGES: tuple[Stage, ...] = (
    Stage("check_conf", deps=("conf",), outs=_paths(CONF_OK), in_run=False),  # stops when conf/ changed after compose
    Stage(
        "prepare",
        params=("data", "run.seed"),
        deps=_paths(CONF_OK, "data/raw", "conf/schema"),
        outs=_paths(PREPARED_DIR),
        metrics=_paths(VALIDATION_REPORT),
    ),
    Stage(
        "search",
        params=("search", "data.split", "run.seed"),  # data.split: the folds follow the split's strategy
        deps=_paths(PREPARED_DIR),
        outs=_paths(SEARCH_DIR),
        metrics=_paths(SEARCH_METRICS),
        plots=_paths(LEADERBOARD),
    ),
    Stage(
        "evaluate",
        params=("evaluate", "run.seed"),
        deps=_paths(PREPARED_DIR, SEARCH_DIR),
        outs=_paths(EVALUATE_DIR),
        metrics=_paths(TEST_METRICS, SLICE_METRICS),
        plots=_paths(PLOTS_DIR),
    ),
    Stage(
        "package",
        params=("deploy", "evaluate.threshold", "run.name"),  # the manifest records the whole deploy section
        deps=_paths(PREPARED_DIR, SEARCH_DIR, EVALUATE_DIR, TEST_METRICS),
        outs=_paths(CANDIDATE_DIR),
    ),
    Stage("gate", params=("gate", *_CHAMPION), deps=_paths(PREPARED_DIR, CANDIDATE_DIR), metrics=_paths(BLESSING)),
    Stage(
        "deploy",
        # gate: a champion published since the gate is judged again; run.seed: deploy.refit_all_rows fits with it
        params=("deploy", "gate", "run.name", "run.seed"),
        deps=_paths(PREPARED_DIR, SEARCH_DIR, CANDIDATE_DIR, BLESSING, SLICE_METRICS),  # search: the refit's winner
        outs=_paths(DEPLOY_RECORD),
    ),
    Stage(
        "monitor",
        params=("monitor", *_CHAMPION),
        deps=_paths("${monitor.data}", DEPLOY_RECORD),
        metrics=_paths(MONITOR_REPORT),
        in_run=False,
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage(name: str) -> Stage:
    return STAGES[STAGE_NAMES.index(name)]
