"""Checks of the sections no package owns (run, predict) and of URLs that may hold a password. The other
sections' checks live in their packages (data/checks.py, ...); automlops.checks runs them all and raises once."""

from __future__ import annotations

import re

from automlops.config.schema import Config, PredictConfig
from automlops.constraints import Constraints, Interval, violations
from automlops.urls import url_problem

PREDICT_CONSTRAINTS: Constraints = {"chunk_rows": Interval(1, None, note="(rows scored at a time)")}


def check_urls(config: Config) -> list[str]:
    """URLs that may hold a password, checked before any work (and again, filled in, where they are used)."""
    urls = {
        "data.url": config.data.url,
        "search.storage": config.search.storage,
        "deploy.mlflow.tracking_uri": config.deploy.mlflow.tracking_uri,
    }
    return [problem for key, url in urls.items() if url and (problem := url_problem(url, key))]


def check_run(config: Config) -> list[str]:
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", config.run.name):
        problems.append(
            f"run.name: '{config.run.name}' must be a plain name (letters, digits, _ . -), it names the model folder"
        )
    return problems + violations("run", config.run, {"seed": Interval(0, None)})


def check_predict(predict: PredictConfig) -> list[str]:
    return violations("predict", predict, PREDICT_CONSTRAINTS)
