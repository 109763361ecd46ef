"""search=auto (issue 15, item 3, in part), the default: the engine is picked from the config and its budget
by a pure function, so the checks and every command pick the same one, and the search stage logs why.
Real Hydra composition of conf/."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import in_repo, typed  # noqa: F401 - in_repo is a fixture

from automlops.errors import ConfigError
from automlops.search.auto import resolve_auto

pytestmark = pytest.mark.usefixtures("in_repo")


@pytest.mark.parametrize(
    ("overrides", "engine", "why"),
    [
        ([], "optuna", "no search.timeout, and the autogluon engine needs a wall-clock budget"),
        (["search.timeout=60"], "autogluon", "search.timeout=60 s: the autogluon engine ranked first"),
        (["search.timeout=300"], "autogluon", "search.timeout=300 s"),
        (["search.timeout=10"], "optuna", "search.timeout=10 s is under 20 s"),
        (["search.timeout=60", "search.objectives=[model_size]"], "optuna", "multi-objective search"),
        (["search.timeout=60", "search.ensemble_size=10"], "optuna", "search.ensemble_size blends"),
        (["search.timeout=60", "deploy.refit_all_rows=true"], "optuna", "deploy.refit_all_rows refits"),
    ],
)
def test_auto_picks_an_engine_from_the_config_and_says_why(
    overrides: list[str], engine: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    written = typed(*overrides)  # auto is conf/'s default
    assert written.search.engine == "auto"  # as written: params.yaml and the checks keep the user's word
    with caplog.at_level("INFO", logger="automlops.search.auto"):
        config = resolve_auto(written, log_choice=True)
    assert config.search.engine == engine
    assert f"search.engine=auto: {engine}, since " in caplog.text and why in caplog.text


def test_the_picked_engine_keeps_the_optuna_groups_keys_and_autogluons_defaults() -> None:
    """auto extends conf/search/optuna.yaml: a user's space and n_trials survive, and AutoGluon's section is there."""
    optuna = resolve_auto(typed("search=auto", "search.n_trials=7", "search.space.linear=null"))
    assert (optuna.search.engine, optuna.search.n_trials) == ("optuna", 7)
    assert (
        set(optuna.search.space) == set(typed("search=optuna").search.space) and optuna.search.space["linear"] is None
    )
    autogluon = resolve_auto(typed("search=auto", "search.timeout=90"))
    assert autogluon.search.engine == "autogluon"
    assert autogluon.search.autogluon.presets == typed("search=autogluon").search.autogluon.presets


def test_a_config_auto_cannot_serve_is_refused_for_the_engine_it_picked() -> None:
    """The picked engine's own checks run: an AutoGluon-less metric is refused as for search=autogluon."""
    with pytest.raises(ConfigError, match=r"search.metric: 'neg_rmsle' has no AutoGluon equivalent"):
        typed("search=auto", "search.timeout=60", "data=diabetes", "search.metric=neg_rmsle")


def test_a_misspelled_engine_names_auto_among_the_choices(in_repo: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match=r"search.engine.*'atuo'.*did you mean 'auto'"):
        typed("search.engine=atuo")


@pytest.mark.slow
def test_a_run_with_search_auto_logs_its_choice_and_records_the_engine(tmp_path: Path) -> None:
    """The real command line: the reason is on stderr at the default verbosity, best.json names the engine."""
    import json

    from conftest import cli, new_project

    project = new_project(tmp_path / "project")
    run = cli("run", "search=auto", "search.n_trials=2", "gate.infra.enabled=false", cwd=project, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "search.engine=auto: optuna, since no search.timeout" in run.stderr
    assert json.loads((project / "artifacts" / "search" / "best.json").read_text())["engine"] == "optuna"


def test_checking_a_config_logs_no_choice(caplog: pytest.LogCaptureFixture) -> None:
    """The choice is logged when the search starts, not by the checks: an error before it stays one line."""
    with caplog.at_level("INFO", logger="automlops.search.auto"):
        typed("search.timeout=60")
    assert "search.engine=auto" not in caplog.text
