"""The `docker` deploy target. No Docker engine runs here, so the context is checked piece by piece:
the Dockerfile as Docker reads it (dockerfile-parse), every file it copies, the pins and the shipped
automlops wheel installed into a venv that holds nothing but the pinned packages, which then serves
the context's bundle over HTTP; and the native libraries those packages link."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from conftest import champion, cli, new_project, run_env, snapshot
from dockerfile_parse import DockerfileParser

from automlops.bundle import PICKLE_PACKAGES, load_bundle, read_manifest
from automlops.config.schema import DeployConfig, DockerConfig
from automlops.deploy.package import seal
from automlops.deploy.targets import TARGETS, Release
from automlops.errors import BundleError

pytestmark = pytest.mark.slow

PORT = 9090
BASE_IMAGE = "python:3.11-slim"
# shared libraries every python:3.11-slim (Debian bookworm) image has: glibc, the C++ runtime
# (apt needs it), and the libraries CPython itself links
BASE_LIBS = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "libz.so.1",
    "libffi.so.8",
    "libssl.so.3",
    "libcrypto.so.3",
    "libbz2.so.1.0",
    "liblzma.so.5",
    "libsqlite3.so.0",
    "libuuid.so.1",
    "libexpat.so.1",
}
APT_LIBS = {"libgomp1": {"libgomp.so.1"}}  # what the Debian packages the Dockerfile may install provide


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real pipeline run with the docker target in deploy.targets, a LightGBM winner (the engine
    that needs a system library) and card fields, all from the command line."""
    root = new_project(tmp_path_factory.mktemp("docker") / "project")
    done = cli(
        "run",
        "+experiment=penguins",
        "search.n_trials=1",
        "search.space.random_forest=null",
        "search.space.linear=null",
        "deploy.targets=[bundle,docker]",
        f"deploy.docker.port={PORT}",
        f"deploy.docker.base_image={BASE_IMAGE}",
        "deploy.card.intended_use='Sorting penguins by species'",
        "deploy.card.owners=[ml-team]",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def context(run: Path) -> Path:
    return run / "artifacts" / "docker" / "penguins"


@pytest.fixture(scope="module")
def parsed(context: Path) -> list[dict]:
    return DockerfileParser(path=str(context / "Dockerfile")).structure


def instructions(parsed: list[dict], name: str) -> list[str]:
    return [item["value"] for item in parsed if item["instruction"] == name]


def copy_sources(value: str) -> list[str]:
    words = json.loads(value) if value.lstrip().startswith("[") else shlex.split(value)
    return [w for w in words if not w.startswith("--")][:-1]


def pins(context: Path) -> dict[str, str]:
    lines = (context / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def release_of(bundle: Path) -> Release:
    return Release(name="penguins", bundle=bundle, manifest=read_manifest(bundle), alias="champion")


def test_the_deploy_stage_writes_the_context_and_records_it(run: Path, context: Path) -> None:
    record = json.loads((run / "metrics" / "deploy.json").read_text())["targets"]["docker"]
    assert record["context"] == "artifacts/docker/penguins" and record["image_tag"] == "penguins:v1"
    assert record["port"] == PORT and record["base_image"] == BASE_IMAGE
    assert sorted(p.name for p in context.iterdir()) == [
        ".dockerignore",
        "Dockerfile",
        "README.txt",
        "bundle",
        "requirements.txt",
        "wheels",
    ]
    assert "docker build -t penguins:v1 artifacts/docker/penguins" in (context / "README.txt").read_text()
    released = champion(run, "penguins")  # the context serves the version the registry holds
    assert read_manifest(context / "bundle") == read_manifest(released)
    assert "Sorting penguins by species" in (released / "model_card.md").read_text()


def test_dockerfile_copies_only_files_the_context_has(context: Path, parsed: list[dict]) -> None:
    sources = [
        src for value in instructions(parsed, "COPY") + instructions(parsed, "ADD") for src in copy_sources(value)
    ]
    assert sources and not instructions(parsed, "ADD")
    for source in sources:
        assert (context / source).exists(), source
    ignore = (context / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything else is kept out of the build
    for source in sources:  # ...so each copied path must be let back in
        assert f"!{source.split('/')[0]}" in ignore or f"!{source.split('/')[0]}/" in ignore, source


def test_dockerfile_runs_the_server_unprivileged_with_a_healthcheck(context: Path, parsed: list[dict]) -> None:
    assert instructions(parsed, "FROM") == [BASE_IMAGE]
    assert instructions(parsed, "EXPOSE") == [str(PORT)]
    names = [item["instruction"] for item in parsed]
    assert names[-1] == "CMD" and names.count("CMD") == 1 and "ENTRYPOINT" not in names
    assert json.loads(instructions(parsed, "CMD")[0]) == [
        "automlops",
        "serve",
        "--model",
        "/app/bundle",
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]
    users = instructions(parsed, "USER")
    uid = users[-1].split(":")[0]
    assert (
        names.index("USER") < names.index("CMD") and uid.isdigit() and int(uid) != 0
    )  # numeric: runAsNonRoot can check it
    assert any(f"useradd --system --uid {uid}" in run for run in instructions(parsed, "RUN"))
    [health] = instructions(parsed, "HEALTHCHECK")
    command = json.loads(health[health.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"] and f"http://127.0.0.1:{PORT}/health" in command[2]  # no curl in slim images
    installs = [run for run in instructions(parsed, "RUN") if "pip install" in run]
    assert len(installs) == 2 and all("--no-cache-dir" in run for run in installs)
    assert "-r /app/requirements.txt" in installs[0] and "--no-deps /app/wheels/automlops-" in installs[1]
    apt = " ".join(run for run in instructions(parsed, "RUN") if "apt-get install" in run)
    assert "libgomp1" in apt and "--no-install-recommends" in apt and "rm -rf /var/lib/apt/lists" in apt
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|curl)\b", apt)


def test_pins_hold_the_engine_and_not_the_search(context: Path, run: Path) -> None:
    pinned = {name.lower(): version for name, version in pins(context).items()}
    for name in ("lightgbm", "scikit-learn", "fastapi", "uvicorn", "pandas", "numpy", "omegaconf"):
        assert pinned[name] == metadata.version(name), name
    for name in (
        "autogluon.tabular",
        "autogluon.core",
        "optuna",
        "dvc",
        "hydra-core",
        "sqlalchemy",
        "automlops",
        "pyarrow",
    ):
        assert name not in pinned, name
    manifest = read_manifest(context / "bundle")
    for name in PICKLE_PACKAGES[manifest.model.format]:  # load_bundle refuses the bundle without them
        if name in manifest.lineage.packages:
            assert pinned[name.lower()] == manifest.lineage.packages[name], name
    trained = (champion(run, "penguins") / "requirements.txt").read_text()
    for name in ("lightgbm", "scikit-learn", "pandas", "numpy"):
        assert f"{name}=={pinned[name]}" in trained  # what trained it


def test_context_serves_from_a_venv_holding_only_the_pins(context: Path, tmp_path: Path) -> None:
    """What `docker build` would install, without PyPI: the pinned distributions (linked from this
    environment) and the context's automlops wheel installed with --no-deps; then `automlops serve`
    from that venv answers /health and /predict for the context's bundle."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for name, version in pins(context).items():
        dist = metadata.distribution(name)
        assert dist.version == version, name
        for file in dist.files or ():
            if file.parts[0] != ".." and "__pycache__" not in file.parts and dist.locate_file(file).exists():
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                (site / file).symlink_to(dist.locate_file(file))
    [wheel] = (context / "wheels").glob("automlops-*-py3-none-any.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    where = subprocess.run(
        [
            python,
            "-c",
            "import automlops, importlib.util as u; print(automlops.__file__); "
            "print([m for m in ('autogluon', 'optuna', 'dvc', 'hydra', 'pyarrow') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=run_env(),
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.splitlines() == [str(site / "automlops" / "__init__.py"), "[]"]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [venv / "bin" / "automlops", "serve", "--model", str(context / "bundle"), "--port", str(port)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read())
                break
            except OSError:
                time.sleep(0.2)
        assert health["status"] == "ok" and health["model"] == "penguins"
        example = (context / "bundle" / "input_example.json").read_bytes()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict?proba=1", data=example, headers={"Content-Type": "application/json"}
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert len(answer["predictions"]) == len(json.loads(example)) and len(answer["probabilities"][0]) == 3
    finally:
        server.terminate()
        server.wait(timeout=15)

    # a regular (non-editable) install ships the same wheel as the editable one this suite runs
    rebuilt = subprocess.run(
        [
            python,
            "-c",
            "import sys; from pathlib import Path; from automlops.deploy.docker import build_wheel; "
            "print(build_wheel(Path(sys.argv[1])))",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert Path(rebuilt.stdout.strip()).read_bytes() == wheel.read_bytes()


def test_context_bundle_loads_and_is_readable_by_anyone(context: Path) -> None:
    bundle = load_bundle(context / "bundle")  # every sha256 checked, then unpickled
    assert bundle.manifest.model.family == "lightgbm"
    for path in (context / "bundle").rglob("*"):
        assert path.stat().st_mode & (0o555 if path.is_dir() else 0o444) == (0o555 if path.is_dir() else 0o444), path
    with zipfile.ZipFile(next((context / "wheels").glob("*.whl"))) as wheel:
        names = wheel.namelist()
    assert "automlops/serve/app.py" in names and "hydra_plugins/automlops_resolvers/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs readelf (binutils)")
def test_native_libraries_are_vendored_in_the_base_image_or_installed(context: Path, parsed: list[dict]) -> None:
    """Every shared library a pinned package's native code links is in that package set, in the
    base image, or in a Debian package the Dockerfile installs (LightGBM: libgomp1)."""
    apt = {
        word
        for run in instructions(parsed, "RUN")
        if "apt-get install" in run
        for word in run.split()
        if word in APT_LIBS
    }
    dists = [metadata.distribution(name) for name in pins(context)]
    vendored = {Path(str(f)).name for d in dists for f in d.files or ()}
    unmet: dict[str, set[str]] = {}  # library file -> what neither the pins nor the base image provide
    for dist in dists:
        for file in dist.files or ():
            if re.search(r"\.so(\.|$)", file.name):
                dynamic = subprocess.run(
                    ["readelf", "-d", str(dist.locate_file(file))], capture_output=True, text=True
                ).stdout
                needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
                if needed - vendored - BASE_LIBS:
                    unmet[str(file)] = needed - vendored - BASE_LIBS
    installed = {lib for package in apt for lib in APT_LIBS[package]}
    assert not {file: libs - installed for file, libs in unmet.items() if libs - installed}
    assert unmet == {"lightgbm/lib/lib_lightgbm.so": {"libgomp.so.1"}} and apt == {
        "libgomp1"
    }  # the one system library needed


def test_pins_follow_the_bundle_requirements(run: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(champion(run, "penguins"), bundle)
    manifest = read_manifest(bundle)
    (bundle / "requirements.txt").write_text("# edited\nscikit-learn==1.0.99\noptuna==3.0.0\n")
    seal(bundle, manifest)
    cfg = DeployConfig(docker=DockerConfig(dir=str(tmp_path / "docker"), port=8000))
    record = TARGETS.get("docker")(release_of(bundle), cfg)
    pinned = pins(Path(record["context"]))
    assert pinned["scikit-learn"] == "1.0.99"  # the bundle's pin wins over this environment's version
    assert "optuna" not in pinned and pinned["lightgbm"] == metadata.version("lightgbm")
    assert (
        "Pinned: 1 version(s) from the bundle's requirements.txt"
        in (Path(record["context"]) / "requirements.txt").read_text()
    )

    (bundle / "requirements.txt").unlink()  # an older bundle without one: this environment's versions
    seal(bundle, manifest)
    record = TARGETS.get("docker")(release_of(bundle), cfg)
    assert pins(Path(record["context"]))["scikit-learn"] == metadata.version("scikit-learn")
    assert record["port"] == 8000 and "EXPOSE 8000" in (Path(record["context"]) / "Dockerfile").read_text()


def test_a_modified_bundle_is_refused_and_the_old_context_kept(run: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(champion(run, "penguins"), bundle)
    cfg = DeployConfig(docker=DockerConfig(dir=str(tmp_path / "docker")))
    TARGETS.get("docker")(release_of(bundle), cfg)
    before = snapshot(tmp_path, ("docker",))
    (bundle / "input_example.json").write_text("[]\n")
    with pytest.raises(BundleError, match=r"input_example\.json does not match its sha256"):
        TARGETS.get("docker")(release_of(bundle), cfg)
    assert snapshot(tmp_path, ("docker",)) == before
    assert [p.name for p in (tmp_path / "docker").iterdir()] == ["penguins"]  # no staging left behind
