"""Conformance suite for search engines: every engine in the registry passes the same checks, as
Optuna's sampler tests do. A newly registered engine is picked up here and fails until it has a tiny
budget in TINY below."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from automlops.artifacts import FORMATS
from automlops.config.schema import AutoGluonConfig, SearchConfig, ValidationConfig
from automlops.data.contract import infer_contract
from automlops.search.engines import ENGINES, Candidate, Engine, SearchData, SearchResult

# the smallest budget each engine runs with: a few seconds of fitting on 200 rows
TINY: dict[str, SearchConfig] = {
    "optuna": SearchConfig(
        engine="optuna",
        n_trials=2,
        refit=False,
        progress=False,
        keep_top=1,
        validation=ValidationConfig(method="holdout"),
        space={"linear": {"alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}}},
    ),
    "autogluon": SearchConfig(
        engine="autogluon",
        timeout=30,
        progress=False,
        autogluon=AutoGluonConfig(hyperparameters={"LR": {}}, refit_full=False),
    ),
}

ENGINE_NAMES = ENGINES.names()


@pytest.fixture(scope="module")
def tiny_data() -> SearchData:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x, y = x.iloc[:200, :6], pd.Series(["malignant" if v == 0 else "benign" for v in y.iloc[:200]])
    return SearchData(
        x.iloc[:140],
        y.iloc[:140],
        x.iloc[140:].reset_index(drop=True),
        y.iloc[140:].reset_index(drop=True),
        infer_contract(x),
        "binary",
        "sha256:conformance",
    )


def test_every_engine_has_a_tiny_budget() -> None:
    assert set(TINY) == set(ENGINE_NAMES), "add a tiny SearchConfig for each registered engine to TINY"


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_the_registered_name_resolves_to_an_engine(name: str) -> None:
    engine = ENGINES.get(name)
    assert isinstance(engine, Engine) and name in ENGINES
    assert callable(engine.run) and callable(engine.check)
    assert engine.later_stages_seconds > 0


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_check_accepts_the_tiny_config_and_names_the_key_of_a_bad_one(name: str) -> None:
    problems: list[str] = []
    ENGINES.get(name).check(TINY[name], problems)
    assert problems == []
    ENGINES.get(name).check(replace(TINY[name], objectives=["__nope__"]), problems)
    assert len(problems) == 1 and problems[0].startswith("search.objectives"), problems


@pytest.mark.slow  # fits models
@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_a_tiny_search_returns_the_shared_result_shape(name: str, tiny_data: SearchData, tmp_path: Path) -> None:
    result = ENGINES.get(name).run(TINY[name], tiny_data, 0, tmp_path)
    assert isinstance(result, SearchResult)
    assert result.metric and result.model_format in FORMATS
    assert result.candidates and all(isinstance(c, Candidate) and c.engine == name for c in result.candidates)
    winner = result.winner
    assert winner.engine == name and winner.state == "COMPLETE" and isinstance(winner.score, float)
    assert winner.score == max(c.score for c in result.candidates if c.state == "COMPLETE" and c.score is not None)
    predicted: Any = result.model.predict(tiny_data.x_valid)
    assert len(predicted) == len(tiny_data.x_valid)
    assert set(pd.Series(predicted).astype(str)) <= {"malignant", "benign"}
