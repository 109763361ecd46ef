"""Artifacts follow the umask, as `open` and `mkdir` do: 0644 files and 0755 folders under umask 022, so
another user can read, predict with or serve the registry; 0600/0700 under 077. Atomic writes publish a
temporary file or folder by renaming it, and `tempfile.mkstemp`/`mkdtemp` would make those 0600/0700
whatever the umask."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from conftest import PROJECT_FILES, champion, cli, new_project
from palmerpenguins import load_penguins

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
NOT_OURS = (
    ".git",
    ".dvc",
    ".dvcignore",
    "data",
    *(name for name in PROJECT_FILES if name != "params.yaml"),
)  # git, dvc, the copied inputs


def created(root: Path) -> list[Path]:
    """Every file and folder under `root` that automlops wrote (a project's copied inputs left out)."""
    paths = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if relative in NOT_OURS or any(relative.startswith(f"{name}/") for name in NOT_OURS if name != "data"):
            continue
        paths.append(path)
    return paths


def wrong_modes(paths: list[Path], umask: int) -> dict[str, str]:
    """path -> its mode, for each one that is not 0666/0777 less the umask."""
    wrong = {}
    for path in paths:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        expected = (0o777 if stat.S_ISDIR(mode) else 0o666) & ~umask
        if stat.S_IMODE(mode) != expected:
            wrong[str(path)] = f"{stat.S_IMODE(mode):04o} (want {expected:04o})"
    return wrong


def predict_and_monitor(model: Path, tmp_path: Path, umask: int, suffix: str) -> Path:
    """Score and monitor a penguins batch under `umask`; returns the folder holding only what they wrote."""
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    load_penguins()[FEATURES].to_csv(inputs / "batch.csv", index=False)
    scored = cli(
        "predict",
        "--model",
        str(model),
        "--input",
        str(inputs / "batch.csv"),
        "--output",
        str(out / "scores" / f"p{suffix}"),
        cwd=tmp_path,
        umask=umask,
    )
    assert scored.returncode == 0, scored.stderr[-2000:]
    watched = cli(
        "monitor",
        "--model",
        str(model),
        "--data",
        str(inputs / "batch.csv"),
        "--out",
        str(out / "monitor"),
        cwd=tmp_path,
        umask=umask,
    )
    assert watched.returncode in (0, 4), watched.stderr[-2000:]
    assert {p.name for p in (out / "monitor").iterdir()} == {"monitor.json", "monitor.html"}
    return out


def test_under_umask_022_every_artifact_is_0644_and_every_folder_0755(penguins_run, tmp_path: Path):
    root, _ = penguins_run  # `automlops run` under umask 022
    out = predict_and_monitor(champion(root, "penguins"), tmp_path, 0o022, ".parquet")
    paths = created(root) + [out, *out.rglob("*")]
    names = {p.relative_to(root).as_posix() for p in paths if p.is_relative_to(root)}
    for name in (
        "params.yaml",
        "metrics/deploy.json",
        "metrics/blessing.json",
        "models/penguins/aliases.json",
        "models/penguins/versions/1/manifest.json",
        "models/penguins/versions/1/model_card.html",
        "models/penguins/versions/1/blessing.json",
        "models/penguins/versions/1/statistics.json",
        "data/prepared/statistics.json",
        "artifacts/bundle",
    ):
        assert name in names  # the walk sees what the issue listed
    wrong = wrong_modes(paths, 0o022)
    assert not wrong, f"{len(wrong)} of {len(paths)} paths: {wrong}"


@pytest.mark.slow
def test_under_umask_077_artifacts_stay_private(tmp_path: Path):
    """The umask is followed, not overridden: a user who keeps files private gets 0600/0700."""
    root = new_project(tmp_path / "project")
    run = cli("run", "+experiment=penguins", "search.n_trials=1", "gate.infra.enabled=false", cwd=root, umask=0o077)
    assert run.returncode == 0, run.stderr[-3000:]
    out = predict_and_monitor(champion(root, "penguins"), tmp_path, 0o077, ".csv")
    paths = created(root) + [out, *out.rglob("*")]
    assert len(paths) > 40
    wrong = wrong_modes(paths, 0o077)
    assert not wrong, f"{len(wrong)} of {len(paths)} paths: {wrong}"
