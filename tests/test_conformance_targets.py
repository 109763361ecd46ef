"""Conformance suite for deploy targets: every target in the registry publishes a real blessed
bundle (the session's penguins run) and returns a JSON record, and refuses a bundle changed after
sealing. A newly registered target is picked up here and fails until SETUPS says how to point it
at a throwaway place.

docker builds the image's context only (no Docker engine needed), so it never skips; mlflow skips
when the mlflow extra is not installed (the test extra has it)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import champion

from automlops.bundle import read_manifest
from automlops.config.schema import DeployConfig, DockerConfig, MlflowConfig
from automlops.deploy.targets import TARGETS, Release
from automlops.errors import AutomlopsError

TARGET_NAMES = TARGETS.names()
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None


def _bundle(tmp_path: Path) -> DeployConfig:
    return DeployConfig(targets=["bundle"], dir=str(tmp_path / "models"))


def _mlflow(tmp_path: Path) -> DeployConfig:
    if not HAS_MLFLOW:
        pytest.skip("mlflow is not installed: pip install -e '.[mlflow]' (the test extra has it)")
    return DeployConfig(
        targets=["mlflow"], mlflow=MlflowConfig(tracking_uri=f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}")
    )


def _docker(tmp_path: Path) -> DeployConfig:
    return DeployConfig(targets=["docker"], docker=DockerConfig(dir=str(tmp_path / "docker")))


# how to point each target at a throwaway place under tmp_path
SETUPS: dict[str, Callable[[Path], DeployConfig]] = {"bundle": _bundle, "mlflow": _mlflow, "docker": _docker}


@pytest.fixture
def release(penguins_run: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Release:
    """A copy of the session run's published version (blessed, sealed, numbered), in a fresh cwd."""
    root, _ = penguins_run
    bundle = tmp_path / "release"
    shutil.copytree(champion(root, "penguins"), bundle)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(tmp_path / 'stray' / 'mlflow.db').as_posix()}")
    return Release(name="penguins", bundle=bundle, manifest=read_manifest(bundle), alias="champion")


def test_every_target_has_a_setup() -> None:
    assert set(SETUPS) == set(TARGET_NAMES), "add to SETUPS how each registered target publishes under tmp_path"


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_the_registered_name_resolves_to_a_publish_function(name: str) -> None:
    assert name in TARGETS and callable(TARGETS.get(name))


@pytest.mark.slow  # the session's penguins run
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", TARGET_NAMES)
def test_a_target_publishes_a_blessed_bundle_and_returns_a_json_record(
    name: str, release: Release, tmp_path: Path
) -> None:
    cfg = SETUPS[name](tmp_path)
    record = TARGETS.get(name)(release, cfg)
    assert isinstance(record, dict) and record
    assert json.loads(json.dumps(record)) == record, "the record goes into metrics/deploy.json as it is"


# the local registry copies the release without checking its seal: the deploy stage sealed it a moment before
UNVERIFIED = {"bundle"}


@pytest.mark.slow  # the session's penguins run
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="publishes without verifying the seal"))
        if name in UNVERIFIED
        else name
        for name in TARGET_NAMES
    ],
)
def test_a_target_refuses_a_bundle_changed_after_sealing(name: str, release: Release, tmp_path: Path) -> None:
    cfg = SETUPS[name](tmp_path)
    model_file = next(p for p in sorted(release.bundle.rglob("*")) if p.is_file() and p.suffix in {".joblib", ".pkl"})
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    with pytest.raises(AutomlopsError) as caught:
        TARGETS.get(name)(replace(release), cfg)
    assert "\n" not in str(caught.value)
