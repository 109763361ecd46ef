"""The `mlflow` deploy target: the release logged as an MLflow pyfunc model (the sealed bundle as
its artifact, with a signature and an input example), registered under run.name, and promoted to
deploy.alias, so `mlflow models serve -m models:/<name>@<alias>` serves what `automlops serve` does.

mlflow is an optional extra: it is imported only when the target runs, never by importing automlops.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from automlops.bundle import EXAMPLE_FILE, REQUIREMENTS, load_bundle
from automlops.config.schema import DeployConfig
from automlops.data.contract import NUMERIC, ColumnSpec
from automlops.deploy.base import Release
from automlops.errors import ConfigError, DeployError
from automlops.records import Manifest
from automlops.scoring import predict_frame
from automlops.signing import trusted_keys
from automlops.stages import STATE_DIR
from automlops.tables import records_from_json
from automlops.urls import connect_url, scrub
from automlops.urls import mask_secrets as mask_env

MISSING_EXTRA = "deploy.targets: 'mlflow' needs the mlflow extra: pip install 'automlops[mlflow]'"
DEFAULT_STORE = STATE_DIR / "mlflow.db"  # under the project, when deploy.mlflow.tracking_uri is null
ARTIFACTS = "mlflow-artifacts"  # beside a SQLite store: where experiments created here keep their files
MODEL_NAME = "model"  # the logged model's name inside its run


def check_mlflow(cfg: DeployConfig, problems: list[str]) -> None:
    """For the config checks: a missing extra is reported before any search runs (imports nothing)."""
    if "mlflow" not in cfg.targets:
        return
    if not cfg.mlflow.experiment.strip():
        problems.append("deploy.mlflow.experiment: must name an MLflow experiment, e.g. automlops")
    if cfg.alias == "latest":
        problems.append("deploy.alias: 'latest' is reserved by MLflow's registry; choose another name, e.g. champion")
    try:
        missing = importlib.util.find_spec("mlflow") is None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        missing = True
    if missing:
        problems.append(MISSING_EXTRA)


def tracking_uri(cfg: DeployConfig, project: Path | None = None) -> str:
    """deploy.mlflow.tracking_uri as written (`${oc.env:...}` kept), or the project's SQLite store."""
    if cfg.mlflow.tracking_uri:
        return cfg.mlflow.tracking_uri
    return "sqlite:///" + ((project or Path.cwd()).resolve() / DEFAULT_STORE).as_posix()


def publish_mlflow(release: Release, cfg: DeployConfig) -> dict[str, Any]:
    try:
        import mlflow
        from mlflow.exceptions import MlflowException

        from automlops.deploy.mlflow_model import BUNDLE_ARTIFACT, BundleModel
    except ImportError as error:
        if (error.name or "").split(".")[0] == "mlflow":
            raise ConfigError(MISSING_EXTRA) from None
        raise

    written = tracking_uri(cfg)
    uri = connect_url(written, "deploy.mlflow.tracking_uri")
    bundle = load_bundle(
        release.bundle, keys=trusted_keys(cfg.signing)
    )  # verified (signature too) before anything leaves the machine
    example = _input_example(release.bundle)
    signature = mlflow.models.ModelSignature(
        inputs=_input_schema(bundle.contract),
        outputs=mlflow.models.infer_signature(model_output=predict_frame(bundle, example)).outputs,
    )
    model = {
        "python_model": BundleModel(),
        "artifacts": {BUNDLE_ARTIFACT: str(release.bundle)},
        "signature": signature,
        "input_example": example,
        "pip_requirements": _requirements(release),
    }
    try:
        with _pointed_at(mlflow, uri):
            run, info = _log(mlflow, release, cfg.mlflow.experiment, uri, model)
        version = str(info.registered_model_version)
        mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            release.name, release.alias, version
        )
    except MlflowException as error:
        first = str(error.message).strip().splitlines()[0] if str(error.message).strip() else type(error).__name__
        raise DeployError(
            f"deploy.mlflow.tracking_uri: publishing to MLflow at {mask_env(written)} failed ({scrub(first, uri)[:300]}); "
            "check the URI and that the store is reachable"
        ) from None  # no cause: it may quote the URL
    return {
        "tracking_uri": mask_env(written),
        "experiment": cfg.mlflow.experiment,
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "registered_model": release.name,
        "version": int(version),
        "alias": release.alias,
        "serve_uri": f"models:/{release.name}@{release.alias}",
    }


def _log(mlflow: Any, release: Release, experiment: str, uri: str, model: dict[str, Any]) -> tuple[Any, Any]:
    """One run in the experiment: the bundle's tags and scores, and the model, registered as a new version."""
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    with mlflow.start_run(experiment_id=_experiment_id(client, experiment, uri), run_name=release.name) as run:
        mlflow.set_tags(_tags(release.manifest))
        mlflow.log_metrics(_metrics(release.manifest))
        info = mlflow.pyfunc.log_model(name=MODEL_NAME, registered_model_name=release.name, **model)
    return run, info


@contextmanager
def _pointed_at(mlflow: Any, uri: str) -> Iterator[None]:
    """MLflow's tracking and registry URIs are process-wide (and mirrored in the environment):
    point them at `uri` for the publish only, then give the environment back."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no progress bars in stage logs
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _input_example(bundle: Path) -> Any:
    return records_from_json(json.loads((bundle / EXAMPLE_FILE).read_text()))


def _input_schema(contract: list[ColumnSpec]) -> Any:
    """Typed from the bundle's contract rather than from the few example rows (which may lack the
    missing values or levels training saw): integer columns without missing values are long, other
    numbers double, the rest string (boolean if training saw booleans). Every column is required,
    as enforce_contract wants."""
    from mlflow.types import ColSpec, DataType, Schema

    def kind(spec: ColumnSpec) -> DataType:
        if spec.kind == NUMERIC:
            integer = spec.dtype.lower().startswith(("int", "uint")) and not spec.nullable
            return DataType.long if integer else DataType.double
        return DataType.boolean if spec.dtype == "bool" else DataType.string

    return Schema([ColSpec(kind(spec), spec.name) for spec in contract])


def _experiment_id(client: Any, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return str(client.create_experiment(name, artifact_location=_artifact_location(uri)))
    if experiment.lifecycle_stage != "active":
        raise ConfigError(
            f"deploy.mlflow.experiment: '{name}' is deleted in that tracking store; "
            f"restore it (`mlflow experiments restore --experiment-id {experiment.experiment_id}`) or choose another name"
        )
    return str(experiment.experiment_id)


def _artifact_location(uri: str) -> str | None:
    """A SQLite store keeps its artifacts beside the database file (MLflow's default, ./mlruns, would
    depend on the working directory); other stores decide for themselves."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    database.parent.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
    return (database.parent / ARTIFACTS).as_uri()


def _requirements(release: Release) -> list[str]:
    """The bundle's pinned requirements (or its manifest's package versions), so MLflow does not
    load the model once more just to guess them. automlops itself is not on PyPI: serve with
    `--env-manager local` from an environment that has it installed."""
    file = release.bundle / REQUIREMENTS
    if file.is_file():
        lines = (line.split("#")[0].strip() for line in file.read_text().splitlines())
        return [line for line in lines if line]
    packages = release.manifest.lineage.packages
    return [f"{name}=={version}" for name, version in sorted(packages.items()) if name != "automlops"]


def _tags(manifest: Manifest) -> dict[str, str]:
    model, lineage = manifest.model, manifest.lineage
    tags = {
        "automlops.task": manifest.task,
        "automlops.engine": model.engine,
        "automlops.family": model.family,
        "automlops.created_at": manifest.created_at,
        "automlops.data_hash": lineage.data_hash,
        "automlops.git_commit": lineage.git_commit,
        "automlops.version": manifest.version,
    }
    return {key: str(value) for key, value in tags.items() if value is not None}


def _metrics(manifest: Manifest) -> dict[str, float]:
    """The bundle's validation and test scores, as `valid_<metric>` and `test_<metric>`."""
    return {
        f"{prefix}_{name}": float(value)
        for prefix, scores in (("valid", manifest.metrics.validation), ("test", manifest.metrics.test))
        for name, value in scores.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
