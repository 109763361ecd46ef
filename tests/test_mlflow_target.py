"""The `mlflow` deploy target for real: bundles made by real pipeline runs (Optuna and AutoGluon),
logged to a real SQLite tracking store, registered with an alias, then served by a real
`mlflow models serve -m models:/<name>@champion` whose /invocations answers must equal what
`automlops serve` and predict_frame give for the same rows sent as JSON."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, cli, new_project, run_env, runs_pipeline

from automlops.bundle import load_bundle, read_manifest
from automlops.config.schema import DeployConfig, MlflowConfig
from automlops.data.sources import BUILTIN_DATASETS
from automlops.deploy.mlflow_target import MISSING_EXTRA, check_mlflow
from automlops.deploy.targets import TARGETS, Release
from automlops.errors import AutomlopsError, ConfigError
from automlops.records import Manifest
from automlops.scoring import predict_frame
from automlops.tables import records_from_json

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_mlflow = pytest.mark.skipif(
    not HAS_MLFLOW, reason="mlflow is not installed: pip install -e '.[mlflow]' (the test extra has it)"
)
SERVER_START_SECONDS = 240  # loading an AutoGluon predictor in a fresh process takes a while on 2 cores
AG_EXPERIMENT = """\
# @package _global_
# AutoGluon on breast cancer with a tiny budget and two model families
defaults:
  - override /search: autogluon
run:
  name: ag_mlflow
search:
  timeout: 15
  autogluon:
    hyperparameters: {GBM: {}, LR: {}}
"""


def find_bundle(root: Path, name: str) -> Path:
    """The newest bundle the pipeline wrote for `name` (models/<name>/ or models/<name>/versions/<n>/)."""
    manifests = sorted((root / "models" / name).rglob("manifest.json"), key=lambda p: p.stat().st_mtime)
    assert manifests, f"no bundle under {root / 'models' / name}"
    return manifests[-1].parent


def release_of(bundle: Path, name: str) -> Release:
    return Release(name=name, bundle=bundle, manifest=read_manifest(bundle), alias="champion")


def source_rows(dataset: str, bundle: Path, count: int = 30) -> pd.DataFrame:
    """Real rows of the dataset the bundle was trained on (the first ones, with any missing values
    they hold, then a seeded sample), restricted to the model's input columns."""
    columns = [spec["name"] for spec in read_manifest(bundle).input_schema]
    frame = BUILTIN_DATASETS[dataset]()[columns]
    rows = pd.concat([frame.head(10), frame.iloc[10:].sample(count - 10, random_state=0)])
    return rows.reset_index(drop=True)


def plain(rows: pd.DataFrame) -> list[list[Any]]:
    """Rows as JSON values: NaN becomes null."""
    return [
        [None if isinstance(v, float) and math.isnan(v) else v for v in row]
        for row in rows.astype(object).itertuples(index=False)
    ]


def records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(zip(rows.columns, row)) for row in plain(rows)]


def automlops_answer(bundle: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """What `automlops serve` answers for these rows sent as JSON records, as predict_frame's table;
    predict_frame on the same JSON-decoded rows must agree with it."""
    from fastapi.testclient import TestClient

    from automlops.config.schema import ServeConfig
    from automlops.serve.app import create_app

    with TestClient(create_app(str(bundle), ServeConfig())) as client:
        answer = client.post("/predict?proba=1", json=records(rows))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    served = pd.DataFrame({"prediction": body["predictions"]})
    if "probabilities" in body:
        served = served.join(pd.DataFrame(body["probabilities"]).add_prefix("proba_"))
    expected = predict_frame(load_bundle(bundle), records_from_json(records(rows)))
    assert_same_predictions(served.to_dict("records"), expected)
    return expected


def assert_same_predictions(answer: list[dict[str, Any]], expected: pd.DataFrame) -> None:
    got = pd.DataFrame(answer)
    assert list(got.columns) == list(expected.columns)
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    probabilities = [c for c in expected.columns if c.startswith("proba_")]
    if probabilities:
        np.testing.assert_allclose(
            got[probabilities].to_numpy(float), expected[probabilities].to_numpy(float), rtol=1e-12, atol=0
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def no_stray_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any MLflow call that falls back on the environment writes under tmp, never ./mlflow.db in the repo."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(tmp_path / 'stray' / 'mlflow.db').as_posix()}")


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """Starts `mlflow models serve` (its own process group) and returns its base URL once /ping
    answers; every server started is terminated at teardown, killed if it does not stop in time."""
    started: list[subprocess.Popen[bytes]] = []

    def start(model_uri: str, tracking_uri: str) -> str:
        port = free_port()
        log = tmp_path / f"mlflow-serve-{port}.log"
        command = [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=tmp_path,
                env=run_env({"MLFLOW_TRACKING_URI": tracking_uri}),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        import httpx

        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"mlflow models serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        pytest.fail(f"mlflow models serve not ready after {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}")

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the group: mlflow and the uvicorn it starts
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


@pytest.fixture(scope="module")
def optuna_project(penguins_run: tuple[Path, Any]) -> Path:
    """A real Optuna run on penguins (categorical columns and missing values in the input): the
    session's, read only (publishing to MLflow reads the bundle)."""
    return penguins_run[0]


@pytest.fixture(scope="module")
@runs_pipeline
def autogluon_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real AutoGluon run on breast cancer with a 15 s budget and two families."""
    root = new_project(tmp_path_factory.mktemp("mlflow-autogluon") / "project")
    (root / "conf" / "experiment" / "ag_mlflow.yaml").write_text(AG_EXPERIMENT)
    result = cli("run", "+experiment=ag_mlflow", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_without_the_extra_the_target_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an environment without mlflow does on `import mlflow`
    release = Release(name="x", bundle=tmp_path, manifest=Manifest.from_dict({}), alias="champion")
    with pytest.raises(ConfigError) as error:
        TARGETS.get("mlflow")(release, DeployConfig(targets=["bundle", "mlflow"]))
    assert (
        str(error.value)
        == MISSING_EXTRA
        == "deploy.targets: 'mlflow' needs the mlflow extra: pip install 'automlops[mlflow]'"
    )


def test_config_checks_name_the_mlflow_keys() -> None:
    problems: list[str] = []
    check_mlflow(
        DeployConfig(targets=["bundle", "mlflow"], alias="latest", mlflow=MlflowConfig(experiment=" ")), problems
    )
    assert problems[:2] == [
        "deploy.mlflow.experiment: must name an MLflow experiment, e.g. automlops",
        "deploy.alias: 'latest' is reserved by MLflow's registry; choose another name, e.g. champion",
    ]
    assert (MISSING_EXTRA in problems) == (not HAS_MLFLOW)
    untouched: list[str] = []
    check_mlflow(DeployConfig(targets=["bundle"], alias="latest"), untouched)  # not an mlflow deploy: nothing to say
    assert untouched == []


@needs_mlflow
def test_signature_types_follow_the_input_contract() -> None:
    """Integers stay long only when training saw no missing value (MLflow cannot cast null to long)."""
    from automlops.data.contract import infer_contract
    from automlops.deploy.mlflow_target import _input_schema

    frame = pd.DataFrame(
        {
            "count": [1, 2],
            "maybe": pd.array([1, None], dtype="Int64"),
            "size": [0.5, None],
            "flag": [True, False],
            "city": ["a", None],
        }
    )
    schema = _input_schema(infer_contract(frame))
    assert {spec.name: spec.type.name for spec in schema.inputs} == {
        "count": "long",
        "maybe": "double",
        "size": "double",
        "flag": "boolean",
        "city": "string",
    }
    assert all(spec.required for spec in schema.inputs)


@needs_mlflow
@pytest.mark.slow
def test_unreachable_tracking_server_is_one_line_without_the_password(
    optuna_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once instead of backing off for minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("MLFLOW_TEST_PASSWORD", "s3cret")
    cfg = DeployConfig(
        targets=["mlflow"], mlflow=MlflowConfig(tracking_uri="http://ci:${oc.env:MLFLOW_TEST_PASSWORD}@127.0.0.1:9")
    )
    with pytest.raises(AutomlopsError) as error:
        TARGETS.get("mlflow")(release_of(find_bundle(optuna_project, "penguins"), "penguins"), cfg)
    message = str(error.value)
    assert message.startswith(
        "deploy.mlflow.tracking_uri: publishing to MLflow at http://ci:${oc.env:MLFLOW_TEST_PASSWORD}@127.0.0.1:9 failed ("
    )
    assert message.endswith("; check the URI and that the store is reachable")
    assert "s3cret" not in message and "\n" not in message


@needs_mlflow
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_optuna_bundle_served_by_mlflow_predicts_like_automlops(
    optuna_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: Callable[[str, str], str]
) -> None:
    import httpx
    import mlflow

    bundle = find_bundle(optuna_project, "penguins")
    uri = f"sqlite:///{(tmp_path / 'tracking' / 'mlflow.db').as_posix()}"
    cfg = DeployConfig(targets=["bundle", "mlflow"], mlflow=MlflowConfig(tracking_uri=uri, experiment="penguins-test"))
    first = TARGETS.get("mlflow")(release_of(bundle, "penguins"), cfg)
    second = TARGETS.get("mlflow")(
        release_of(bundle, "penguins"), cfg
    )  # a second release: a new version takes the alias

    assert (first["version"], second["version"]) == (1, 2)
    assert second["tracking_uri"] == uri and second["serve_uri"] == "models:/penguins@champion"
    assert json.loads(json.dumps(second)) == second  # the record is JSON as it is
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias("penguins", "champion").version) == "2"
    assert (tmp_path / "tracking" / "mlflow-artifacts").is_dir()  # artifacts beside the SQLite file, not ./mlruns
    run = client.get_run(second["run_id"])
    assert run.data.tags["automlops.engine"] == "optuna" and any(key.startswith("test_") for key in run.data.metrics)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for the fluent API that resolves models:/ URIs
    info = mlflow.models.get_model_info("models:/penguins@champion")
    contract = read_manifest(bundle).input_schema
    assert info.signature.inputs.input_names() == [spec["name"] for spec in contract]
    assert {spec.name: spec.type.name for spec in info.signature.inputs.inputs}["island"] == "string"
    assert "prediction" in info.signature.outputs.input_names() and info.saved_input_example_info is not None

    rows = source_rows("penguins", bundle)
    assert rows.isna().any().any()  # the rows include missing measurements and categories
    expected = automlops_answer(bundle, rows)
    url = mlflow_server("models:/penguins@champion", uri)
    split = {"dataframe_split": {"columns": list(rows.columns), "data": plain(rows)}}
    for body in (split, {"dataframe_records": records(rows)}):
        answer = httpx.post(f"{url}/invocations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        assert_same_predictions(answer.json()["predictions"], expected)

    extra = {"dataframe_records": [{**record, "year": 2008} for record in records(rows)]}
    answer = httpx.post(f"{url}/invocations", json=extra, timeout=60)  # MLflow drops columns the signature lacks
    assert answer.status_code == 200, answer.text
    assert_same_predictions(answer.json()["predictions"], expected)

    bad = plain(rows.head(2))
    bad[1][list(rows.columns).index("island")] = None  # island never was missing in training
    refused = httpx.post(
        f"{url}/invocations", json={"dataframe_split": {"columns": list(rows.columns), "data": bad}}, timeout=60
    )
    assert refused.status_code == 400
    assert "column 'island' must not be empty (row 1)" in refused.json()["message"]


@needs_mlflow
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_autogluon_bundle_logged_to_the_default_store_serves_like_automlops(
    autogluon_project: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: Callable[[str, str], str]
) -> None:
    import httpx
    import mlflow

    bundle = find_bundle(autogluon_project, "ag_mlflow")
    assert read_manifest(bundle).model.format == "autogluon"
    monkeypatch.chdir(autogluon_project)  # deploy stages run from the project root
    environment = os.environ.get("MLFLOW_TRACKING_URI")
    record = TARGETS.get("mlflow")(release_of(bundle, "ag_mlflow"), DeployConfig(targets=["bundle", "mlflow"]))
    assert os.environ.get("MLFLOW_TRACKING_URI") == environment  # MLflow's process-wide URI is given back

    database = autogluon_project.resolve() / ".automlops" / "mlflow.db"
    uri = f"sqlite:///{database.as_posix()}"
    assert database.is_file() and record["tracking_uri"] == uri and record["experiment"] == "automlops"
    assert (autogluon_project / ".automlops" / "mlflow-artifacts").is_dir() and not (
        autogluon_project / "mlruns"
    ).exists()
    assert record["version"] == 1
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    loaded = mlflow.pyfunc.load_model("models:/ag_mlflow@champion")
    rows = source_rows("breast_cancer", bundle)
    expected = automlops_answer(bundle, rows)
    assert_same_predictions(loaded.predict(rows).to_dict("records"), expected)  # in process, through load_context

    url = mlflow_server("models:/ag_mlflow@champion", uri)
    for body in (
        {"dataframe_split": {"columns": list(rows.columns), "data": plain(rows)}},
        {"dataframe_records": records(rows)},
    ):
        answer = httpx.post(f"{url}/invocations", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        assert_same_predictions(answer.json()["predictions"], expected)
