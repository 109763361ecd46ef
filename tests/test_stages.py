"""Each stage is declared once (automlops.stages); dvc.yaml must say the same, and a stage's declared
params must cover every config key it reads, or `dvc repro` leaves its outputs stale. Fast: no dvc run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import REPO

from automlops.bundle import MANIFEST
from automlops.config.schema import DeployConfig
from automlops.deploy.package import PackageInput, write_bundle
from automlops.evaluate.plots import PLOT_FILES
from automlops.records import PreparedMeta, SearchBest
from automlops.stages import PLOTS_DIR, STAGE_NAMES, STAGES, Stage, stage


def dvc_stages() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def paths(entries: list[Any] | None) -> list[str]:
    """dvc.yaml lists an output as a path, or as {path: options}."""
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries or []]


def declared_plots(declared: Stage) -> list[str]:
    return (
        [f"{PLOTS_DIR.as_posix()}/{name}" for name in PLOT_FILES]
        if declared.plots == (PLOTS_DIR.as_posix(),)
        else list(declared.plots)
    )


def keys(section: dict[str, Any], prefix: str) -> list[str]:
    """Every dotted leaf key of a nested config section."""
    found = []
    for name, value in section.items():
        key = f"{prefix}.{name}"
        found += keys(value, key) if isinstance(value, dict) else [key]
    return found


def test_dvc_yaml_has_the_declared_stages_in_order() -> None:
    assert list(dvc_stages()) == list(STAGE_NAMES)


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_dvc_yaml_stage_matches_its_declaration(name: str) -> None:
    declared, written = stage(name), dvc_stages()[name]
    assert written["cmd"] == declared.cmd
    assert written.get("params", []) == list(declared.params)
    assert written.get("deps", []) == list(declared.deps)
    assert paths(written.get("outs")) == list(declared.outs)
    assert paths(written.get("metrics")) == list(declared.metrics)
    assert paths(written.get("plots")) == declared_plots(declared)


def test_every_declared_param_is_in_params_yaml() -> None:
    """A misspelt key would make DVC fail, or silently track nothing."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    composed = keys(params, "")
    for declared in STAGES:
        for param in declared.params:
            assert any(f".{param}" == key or key.startswith(f".{param}.") for key in composed), (declared.name, param)


def test_every_stage_but_check_conf_has_its_function() -> None:
    from automlops.pipeline import stage_function

    for declared in STAGES[1:]:
        assert callable(stage_function(declared.name)), declared.name
    assert [s.name for s in STAGES if s.in_run] == ["prepare", "search", "evaluate", "package", "gate", "deploy"]


def test_package_declares_every_deploy_key_its_manifest_records(tmp_path: Path) -> None:
    """The candidate's manifest records the deploy section it was packaged with: a deploy key dvc.yaml
    does not list for package (deploy.card, deploy.targets) left that manifest stale after `dvc repro`."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.joblib").write_bytes(b"model")
    inputs = PackageInput(
        name="m",
        model_dir=model,
        example=pd.DataFrame({"x": [1.0]}),
        metrics={"accuracy": 1.0},
        prepared=PreparedMeta.from_dict(
            {
                "task": "binary",
                "target": "y",
                "classes": [0, 1],
                "contract": [],
                "data_hash": "h",
                "source": "s",
                "rows": {"train": 1},
                "config": {},
            }
        ),
        search=SearchBest.from_dict(
            {
                "metric": "accuracy",
                "valid_score": 1.0,
                "engine": "optuna",
                "format": "sklearn",
                "family": "f",
                "params": {},
                "lineage": {},
                "config": {},
            }
        ),
    )
    write_bundle(inputs, DeployConfig(), tmp_path / "bundle")
    recorded = keys(json.loads((tmp_path / "bundle" / MANIFEST).read_text())["config"]["deploy"], "deploy")
    assert "deploy.card.intended_use" in recorded and "deploy.targets" in recorded
    package = dvc_stages()["package"]["params"]
    missing = [key for key in recorded if not any(key == p or key.startswith(p + ".") for p in package)]
    assert missing == [], (
        f"dvc.yaml: the package stage records {missing} in its manifest but does not list them in params"
    )
