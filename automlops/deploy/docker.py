"""The `docker` deploy target: a build context for a slim image that runs `automlops serve` on the
release, written to <deploy.docker.dir>/<run.name>/ in one rename:

    Dockerfile          FROM deploy.docker.base_image, non-root user, HEALTHCHECK on /health
    .dockerignore       only what the Dockerfile copies is sent to the builder
    requirements.txt    pinned: what serving this model imports, nothing of the search or of DVC
    wheels/automlops-<version>-py3-none-any.whl   automlops itself, installed without dependencies
    bundle/             the sealed bundle, served from /app/bundle
    README.txt          build and run commands

automlops is not on PyPI, so the context carries it as a wheel assembled from the installed
distribution: its package folders (found by import, so an editable install ships the working tree
and a regular one its site-packages copy) plus its own metadata. No build tool or network is needed.

The pins come from a probe: a subprocess loads the bundle and predicts its input example, and every
distribution it imports for that (beyond what `automlops serve` itself needs) is an engine library
the image must hold. So are the libraries whose versions load_bundle checks (bundle.PICKLE_PACKAGES
found in lineage.packages), used by the model or not. Those and the server's own libraries, with
everything they require, are pinned to the bundle's requirements.txt where it names them and to this
environment's versions otherwise.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from automlops import children
from automlops.bundle import EXAMPLE_FILE, PICKLE_PACKAGES, load_bundle, read_manifest, verify_bundle
from automlops.config.schema import DeployConfig, SigningConfig
from automlops.deploy.base import Release
from automlops.errors import BundleError
from automlops.io import atomic_dir
from automlops.records import Manifest
from automlops.scoring import predict_frame
from automlops.signing import NO_KEYS, TrustedKeys, trusted_keys
from automlops.tables import records_from_json

log = logging.getLogger(__name__)

APP_DIR = "/app"
BUNDLE_DIR = "bundle"
WHEEL_DIR = "wheels"
USER, UID = "automlops", 10001
# What `automlops serve` imports whatever the model (automlops.serve, .predict, .deploy, .config.schema);
# tests/test_docker_target.py serves a bundle from a venv holding only the pinned packages to prove it.
SERVE_PACKAGES = (
    "fastapi",
    "uvicorn",
    "pandas",
    "numpy",
    "omegaconf",
    "prometheus-client",
    "pyyaml",
    "cryptography",
)  # verifies a bundle's signature when the container is given deploy.signing.public_keys
# Debian packages a distribution's native code links from the system: LightGBM's wheels use the
# system OpenMP runtime (libgomp.so.1), which slim images lack. Other wheels vendor theirs.
SYSTEM_PACKAGES = {"lightgbm": ("libgomp1",)}
# the packages of the automlops distribution (pyproject: packages.find include automlops*, hydra_plugins*)
WHEEL_PACKAGES = ("automlops", "hydra_plugins.automlops_resolvers")
NOT_PINNED = {"automlops", "pip", "setuptools", "wheel"}  # shipped separately, or part of the base image


def build_context(release: Release, cfg: DeployConfig) -> dict[str, Any]:
    docker = cfg.docker
    keys = trusted_keys(cfg.signing)
    target = Path(docker.dir) / release.name
    version = release.manifest.version
    tag = f"{_repository(release.name)}:{f'v{version}' if version is not None else 'latest'}"  # docker's tag grammar
    _warn_python_mismatch(docker.base_image, release.manifest)
    with atomic_dir(target) as staging:
        bundle = staging / BUNDLE_DIR
        shutil.copytree(release.bundle, bundle)
        verify_bundle(bundle, keys=keys)  # the copy is what the image serves: it must still match its seal
        pins, from_bundle = serving_requirements(bundle, keys=keys)
        system = sorted({apt for name in pins for apt in SYSTEM_PACKAGES.get(_canonical(name), ())})
        (staging / "requirements.txt").write_text(_requirements_text(release, pins, from_bundle))
        (staging / WHEEL_DIR).mkdir()
        wheel = build_wheel(staging / WHEEL_DIR)
        (staging / "Dockerfile").write_text(dockerfile(release, docker.base_image, docker.port, wheel.name, system))
        (staging / ".dockerignore").write_text(DOCKERIGNORE)
        (staging / "README.txt").write_text(_readme(release, target, tag, docker.port, len(pins), wheel.name))
        _make_readable(staging)
    return {
        "context": str(target),
        "image_tag": tag,
        "base_image": docker.base_image,
        "port": docker.port,
        "requirements": len(pins),
        "system_packages": system,
        "automlops_wheel": f"{WHEEL_DIR}/{wheel.name}",
        "build": f"docker build -t {tag} {target}",
    }


# ---- requirements -------------------------------------------------------------------------------


def serving_requirements(bundle: Path, keys: TrustedKeys = NO_KEYS) -> tuple[dict[str, str], int]:
    """{distribution: version} that serving this bundle needs, and how many versions came from the
    bundle's requirements.txt (the rest are this environment's). `keys`: the probe loads the bundle
    only when one of them signed it (deploy.signing.public_keys)."""
    manifest = read_manifest(bundle)
    # load_bundle checks the installed version of each of these that trained the model, used or not
    checked = {name for name in PICKLE_PACKAGES.get(manifest.model.format, ()) if name in manifest.lineage.packages}
    roots = set(SERVE_PACKAGES) | checked | set(probe_engine(bundle, keys=keys))
    trained = _bundle_pins(bundle / "requirements.txt")
    pins: dict[str, str] = {}
    from_bundle = 0
    for name, version in closure(roots).items():
        if _canonical(name) in NOT_PINNED:
            continue
        pinned = trained.get(_canonical(name))
        from_bundle += pinned is not None
        pins[name] = pinned or version
    return dict(sorted(pins.items(), key=lambda item: _canonical(item[0]))), from_bundle


def probe_engine(bundle: Path, keys: TrustedKeys = NO_KEYS) -> list[str]:
    """The distributions that loading the bundle and predicting its input example imports, beyond
    `automlops serve` itself: run in a subprocess, so this process imports no model library."""
    # The probe program first imports what `automlops serve` imports (the CLI, the server, uvicorn), so that
    # only the model's own needs are new after it; this module does not import the CLI, the program does.
    code = (
        "import sys, automlops.cli, automlops.serve.app, uvicorn; from automlops.deploy.docker import _probe; "
        "_probe(sys.argv[1], sys.argv[2:])"
    )
    try:
        out = children.run(
            [sys.executable, "-c", code, str(bundle), *keys.paths], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        raise BundleError(
            f"deploy.targets: 'docker' could not load {bundle} within 900 s to find the libraries it needs"
        ) from None
    if out.returncode != 0:
        last = ([line for line in out.stderr.splitlines() if line.strip()] or ["no output"])[-1]
        raise BundleError(
            f"deploy.targets: 'docker' could not load and run {bundle} to find the libraries it needs ({last[:300]}); "
            "deploy from the environment that trained it"
        )
    return list(json.loads(out.stdout.splitlines()[-1]))


def _probe(path: str, public_keys: list[str]) -> None:
    """Runs in the probe subprocess, after the server's imports: prints the distributions the model imports,
    as JSON."""
    keys = trusted_keys(
        SigningConfig(public_keys=public_keys)
    )  # before `before`: cryptography is the server's, not the model's
    before = set(sys.modules)
    bundle = load_bundle(Path(path), keys=keys)
    example = records_from_json(json.loads((Path(path) / EXAMPLE_FILE).read_text()))
    predict_frame(bundle, example, probabilities=bundle.manifest.task != "regression")
    print(json.dumps(sorted(_owners([sys.modules[name] for name in set(sys.modules) - before]))))


def _owners(modules: list[Any]) -> set[str]:
    """The installed distributions the modules' files belong to (stdlib and unowned files: none)."""
    top_level = metadata.packages_distributions()
    owners: set[str] = set()
    for module in modules:
        file = getattr(module, "__file__", None)
        candidates = top_level.get(module.__name__.split(".")[0], [])
        if not file or not candidates:
            continue
        if len(candidates) == 1:  # the usual case; several: a namespace package shared by distributions
            owners.add(candidates[0])
            continue
        owners.update(name for name in candidates if os.path.realpath(file) in _files_of(name))
    return owners - {"automlops"}


@functools.cache
def _files_of(name: str) -> frozenset[str]:
    return frozenset(
        os.path.realpath(str(metadata.distribution(name).locate_file(f)))
        for f in metadata.distribution(name).files or ()
    )


def closure(roots: set[str]) -> dict[str, str]:
    """The roots and every distribution they require (markers evaluated here, extras followed),
    with this environment's versions; a requirement not installed here is left to pip."""
    from packaging.requirements import Requirement

    todo: list[tuple[str, frozenset[str]]] = [(name, frozenset()) for name in roots]
    done: set[tuple[str, frozenset[str]]] = set()
    found: dict[str, str] = {}
    while todo:
        name, extras = todo.pop()
        if (_canonical(name), extras) in done:
            continue
        done.add((_canonical(name), extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[dist.metadata["Name"]] = dist.version
        for line in dist.requires or ():
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return found


def _bundle_pins(file: Path) -> dict[str, str]:
    """`name==version` lines of the bundle's requirements.txt, by canonical name."""
    if not file.is_file():
        return {}
    pins = {}
    for line in file.read_text().splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#]+).*", line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements_text(release: Release, pins: dict[str, str], from_bundle: int) -> str:
    manifest = release.manifest
    head = (
        f"# What serving {_label(release)} ({manifest.model.family}, {manifest.model.format} format) needs.\n"
        f"# Pinned: {from_bundle} version(s) from the bundle's requirements.txt, the rest from the environment\n"
        f"# that deployed it (Python {manifest.lineage.python}). automlops itself is installed from wheels/\n"
        "# without its dependencies: serving needs neither the search nor Hydra nor DVC.\n"
    )
    return head + "".join(f"{name}=={version}\n" for name, version in pins.items())


# ---- automlops as a wheel -----------------------------------------------------------------------


def build_wheel(dest: Path) -> Path:
    """A py3-none-any wheel of the installed automlops (editable or not), byte-for-byte the same
    for the same sources, so the image layer that installs it is cached between deploys."""
    try:
        dist = metadata.distribution("automlops")
    except metadata.PackageNotFoundError:
        raise BundleError(
            "deploy.targets: 'docker' ships automlops from its installed distribution, and none is installed; "
            "pip install -e . (or the automlops wheel) in this environment"
        ) from None
    info = f"automlops-{dist.version}.dist-info"
    files: dict[str, bytes] = {}
    for package in WHEEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise BundleError(
                f"deploy.targets: 'docker' cannot find the installed package {package}; reinstall automlops"
            )
        root = Path(list(spec.submodule_search_locations)[0])
        for file in sorted(root.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".pyo"):
                files[f"{package.replace('.', '/')}/{file.relative_to(root).as_posix()}"] = file.read_bytes()
    for name in ("METADATA", "entry_points.txt", "top_level.txt"):
        text = dist.read_text(name)
        if text is not None:
            files[f"{info}/{name}"] = text.encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: automlops docker target\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = dest / f"automlops-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# ---- the context's files ------------------------------------------------------------------------


def dockerfile(release: Release, base_image: str, port: int, wheel: str, system: list[str]) -> str:
    health = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=4)"
    serve = ["automlops", "serve", "--model", f"{APP_DIR}/{BUNDLE_DIR}", "--host", "0.0.0.0", "--port", str(port)]
    apt = (
        ""
        if not system
        else (
            "# native libraries the engine links from the system (LightGBM: the OpenMP runtime)\n"
            f"RUN apt-get update \\\n && apt-get install -y --no-install-recommends {' '.join(system)} \\\n"
            " && rm -rf /var/lib/apt/lists/*\n\n"
        )
    )
    return f"""\
# Serves model {_label(release)} with `automlops serve`; written by the
# automlops `docker` deploy target (rewritten on every deploy, do not edit). See README.txt.
FROM {base_image}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore

{apt}# an unprivileged user runs the server; everything it reads stays root-owned
RUN groupadd --system --gid {UID} {USER} \\
 && useradd --system --uid {UID} --gid {UID} --create-home --shell /usr/sbin/nologin {USER}

WORKDIR {APP_DIR}
# the libraries serving this model imports, pinned (their own layer: cached while the pins stay)
COPY requirements.txt {APP_DIR}/requirements.txt
RUN pip install --no-cache-dir -r {APP_DIR}/requirements.txt
# automlops itself, without the dependencies of the search and the pipeline
COPY {WHEEL_DIR}/{wheel} {APP_DIR}/{WHEEL_DIR}/{wheel}
RUN pip install --no-cache-dir --no-deps {APP_DIR}/{WHEEL_DIR}/{wheel}
# the sealed bundle: the server checks every file's sha256 before loading it
COPY {BUNDLE_DIR}/ {APP_DIR}/{BUNDLE_DIR}/

USER {UID}:{UID}
EXPOSE {port}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\
  CMD {json.dumps(["python", "-c", health])}
CMD {json.dumps(serve)}
"""


DOCKERIGNORE = """\
# send the builder only what the Dockerfile copies
*
!requirements.txt
!wheels/
!bundle/
"""


def _readme(release: Release, target: Path, tag: str, port: int, pins: int, wheel: str) -> str:
    return f"""\
Build context for model {_label(release)}, written by the automlops `docker` deploy target.
Run from the project root:

  docker build -t {tag} {target}
  docker run --rm -p {port}:{port} {tag}
  curl -s http://127.0.0.1:{port}/health
  curl -s -H 'Content-Type: application/json' --data @{target}/{BUNDLE_DIR}/input_example.json http://127.0.0.1:{port}/predict

Dockerfile         FROM the base image; pip installs requirements.txt, then the automlops wheel (--no-deps)
requirements.txt   {pins} pinned packages: what serving this model imports, and what those require
{WHEEL_DIR}/            {wheel}: automlops, built from the installed distribution (`pip check` in the
                   image lists its pipeline dependencies as missing: serving does not need them)
{BUNDLE_DIR}/            the sealed bundle, served from {APP_DIR}/{BUNDLE_DIR}; a modified file is refused at startup

The container runs as user {USER} (uid {UID}), listens on port {port} on all interfaces, and reports
its health to Docker by GET /health. The server has no authentication: publish the port only behind
a proxy that adds it.
"""


def _make_readable(folder: Path) -> None:
    """Files 644, folders 755: COPY keeps modes, and the non-root user must read the bundle
    (files written under a strict umask such as 077 are 600)."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _label(release: Release) -> str:
    version = release.manifest.version
    return f"{release.name} v{version}" if version is not None else f"{release.name} (no version number)"


def _repository(name: str) -> str:
    """An image repository name from run.name (lowercase letters, digits, separators inside)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _warn_python_mismatch(base_image: str, manifest: Manifest) -> None:
    image = re.search(r"python:(\d+\.\d+)", base_image)
    trained = ".".join(str(manifest.lineage.python or "").split(".")[:2])
    if image and trained and image.group(1) != trained:
        log.warning(
            "deploy.docker.base_image: %s runs Python %s, the model was trained with %s; the pinned versions may "
            "have no wheels there. Use python:%s-slim",
            base_image,
            image.group(1),
            trained,
            trained,
        )
