"""The HTTP service: a real `automlops serve` (uvicorn) on a free loopback port, real HTTP requests.
One server answers every test here (endpoints, request formats, telemetry, the prediction log). Bad
and fuzzed bodies: tests/test_serve_inputs.py; token, limits and workers: tests/test_serve_limits.py;
hot reload: tests/test_serve_reload.py. They share this module's helpers."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import champion, cli, run_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    model: Path | str, *args: str, cwd: Path, log_file: Path, env: dict[str, str] | None = None, startup: float = 90
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """`python -m automlops serve` on a free port, in its own process group; yields a client (and the
    process) once /health answers; always stops the whole group (workers included)."""
    port = free_port()
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "automlops",
                "serve",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=cwd,
            env=run_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # a fresh connection per request: a request the server fails on cannot break the next test's
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
    )
    try:
        deadline = time.monotonic() + startup
        while True:
            assert process.poll() is None, f"server exited with {process.returncode}:\n{log_file.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"server not healthy within {startup:g} s:\n{log_file.read_text()[-3000:]}"
            )
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield client, process
    finally:
        client.close()
        os.killpg(process.pid, signal.SIGTERM)  # the leader is not reaped before wait(), so its group id stays ours
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The sum of a Prometheus series' samples with these labels, read from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def wait_for(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def bundle(penguins_run) -> Path:
    root, _ = penguins_run
    return champion(root, "penguins")


@pytest.fixture(scope="module")
def example(bundle: Path) -> list[dict]:
    return json.loads((bundle / "input_example.json").read_text())


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path, Path]]:
    """(client, server log, prediction log folder) of a server on the bundle folder, with defaults
    except the prediction log (on, a new file per request of 5 rows)."""
    folder = tmp_path_factory.mktemp("serve")
    predictions = folder / "predictions"
    with running_server(
        bundle,
        "serve.prediction_log.enabled=true",
        f"serve.prediction_log.dir={predictions}",
        "serve.prediction_log.max_rows_per_file=5",
        cwd=folder,
        log_file=folder / "serve.log",
    ) as (client, _):
        yield client, folder / "serve.log", predictions


@pytest.fixture(scope="module")
def server(served: tuple[httpx.Client, Path, Path]) -> httpx.Client:
    return served[0]


@pytest.fixture(scope="module")
def cli_predictions(bundle: Path, example: list[dict], tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """`automlops predict` on the input example's rows, given as CSV and as JSON (the same table both
    ways): what the service must agree with."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "rows.csv").write_bytes(csv_bytes(example))
    outputs = []
    for source in (folder / "rows.csv", bundle / "input_example.json"):
        target = folder / f"{source.stem}.out.csv"
        done = cli("predict", "--model", str(bundle), "--input", str(source), "--output", str(target), cwd=folder)
        assert done.returncode == 0, done.stderr
        outputs.append(pd.read_csv(target, float_precision="round_trip"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1], check_exact=True)
    return outputs[0]


@pytest.fixture(scope="module")
def in_memory(bundle: Path, example: list[dict]) -> pd.DataFrame:
    """The same rows scored by the bundle loaded in this process."""
    from automlops.bundle import load_bundle
    from automlops.scoring import predict_frame
    from automlops.tables import records_from_json

    return predict_frame(load_bundle(bundle), records_from_json(example))


def probabilities(frame: pd.DataFrame) -> list[dict]:
    return (
        frame[[c for c in frame.columns if c.startswith("proba_")]]
        .rename(columns=lambda c: c[len("proba_") :])
        .to_dict("records")
    )


def test_probes_and_metadata(server: httpx.Client, bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert server.get("/health").json() == {"status": "ok", "model": "penguins", "task": "multiclass"}
    assert server.get("/ready").json() == {"ready": True, "model": "penguins", "version": manifest["version"]}
    metadata = server.get("/metadata").json()
    assert metadata["version"] == manifest["version"] and metadata["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert metadata["input_schema"] == manifest["input_schema"] and metadata["metrics"] == manifest["metrics"]
    assert metadata["served_from"] == str(bundle) and metadata["follows_alias"] is False
    assert metadata["model"]["family"] == manifest["model"]["family"]
    docs = server.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
    missing = server.get("/nowhere")
    assert missing.status_code == 404 and "Traceback" not in missing.text and missing.headers["x-request-id"]
    wrong_method = server.get("/predict")
    assert wrong_method.status_code == 405 and wrong_method.headers["x-request-id"]


def test_openapi_request_bodies_come_from_the_bundles_input_schema(server: httpx.Client, bundle: Path) -> None:
    contract = json.loads((bundle / "manifest.json").read_text())["input_schema"]
    paths = server.get("/openapi.json").json()["paths"]
    body = paths["/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    rows = body["application/json"]["schema"]
    assert rows["type"] == "array" and rows["minItems"] == 1
    row = rows["items"]
    assert row["required"] == [c["name"] for c in contract] and row["additionalProperties"] is False
    for column in contract:
        kind = (
            {"type": "number"}
            if column["kind"] == "numeric"
            else {"type": "string", "examples": column["categories"][:5]}
        )
        assert row["properties"][column["name"]] == (
            {"anyOf": [kind, {"type": "null"}]} if column["nullable"] else kind
        )
    assert body["application/json"]["example"] == json.loads(
        (bundle / "input_example.json").read_text()
    )  # no token: the real example
    envelopes = paths["/invocations"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [next(iter(e["properties"])) for e in envelopes] == [
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
    ]
    assert envelopes[1]["properties"]["dataframe_records"] == rows


def csv_bytes(records: list[dict]) -> bytes:
    """Records as CSV, each value as Python writes it (pandas would write a 7 beside a null as 7.0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(records[0])
    writer.writerows([["" if value is None else value for value in record.values()] for record in records])
    return out.getvalue().encode()


def _bodies(example: list[dict]) -> dict[str, tuple[str, bytes]]:
    """format -> (content type, body), all holding the input example's rows."""
    columns = list(example[0])
    by_column = {c: [r[c] for r in example] for c in columns}
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in example]}
    as_json = {
        "records": example,
        "columns": by_column,
        "dataframe_records": {"dataframe_records": example},
        "dataframe_split": {"dataframe_split": split},
        "instances": {"instances": example},
        "inputs_by_column": {"inputs": by_column},
    }
    return {
        **{name: ("application/json", json.dumps(body).encode()) for name, body in as_json.items()},
        "csv": ("text/csv", csv_bytes(example)),
    }


FORMATS = ["records", "columns", "dataframe_records", "dataframe_split", "instances", "inputs_by_column", "csv"]
MLFLOW_FORMATS = ["dataframe_records", "dataframe_split", "instances", "inputs_by_column", "csv"]


@pytest.mark.parametrize(
    "endpoint,form", [("/predict", f) for f in FORMATS] + [("/invocations", f) for f in MLFLOW_FORMATS]
)
def test_every_format_predicts_what_the_cli_and_the_loaded_model_do(
    server: httpx.Client,
    example: list[dict],
    cli_predictions: pd.DataFrame,
    in_memory: pd.DataFrame,
    endpoint: str,
    form: str,
) -> None:
    content_type, body = _bodies(example)[form]
    response = server.post(endpoint, content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "1"
    answer = response.json()
    assert answer["predictions"] == cli_predictions["prediction"].tolist() == in_memory["prediction"].tolist()
    assert "probabilities" not in answer
    if endpoint == "/predict":
        with_probabilities = server.post(
            endpoint, params={"proba": "1"}, content=body, headers={"content-type": content_type}
        ).json()
        assert with_probabilities["predictions"] == answer["predictions"]
        assert with_probabilities["probabilities"] == probabilities(cli_predictions) == probabilities(in_memory)


def test_nulls_in_nullable_columns_and_unseen_categories_are_scored(
    server: httpx.Client, bundle: Path, example: list[dict]
) -> None:
    """body_mass_g and flipper_length_mm are integers with gaps in training (nullable ints): null is a
    value; with serve.unknown_categories=missing an unseen island is scored as if it were empty."""
    from automlops.bundle import load_bundle
    from automlops.scoring import predict_frame
    from automlops.tables import records_from_json

    rows = [
        {**example[0], "body_mass_g": None, "flipper_length_mm": 190},
        {**example[1], "sex": None, "bill_length_mm": None},
        {**example[2], "island": "Atlantis"},
    ]
    response = server.post("/predict", params={"proba": "true"}, json=rows)
    assert response.status_code == 200, response.text
    expected = predict_frame(load_bundle(bundle), records_from_json(rows), unknown_categories="missing")
    assert response.json()["predictions"] == expected["prediction"].tolist()
    assert response.json()["probabilities"] == probabilities(expected)


def test_metrics_count_requests_latency_rows_and_version(server: httpx.Client, example: list[dict]) -> None:
    before = {
        "ok": metric(server, "automlops_requests_total", endpoint="/predict", status="200"),
        "bad": metric(server, "automlops_requests_total", endpoint="/predict", status="422"),
        "latency": metric(server, "automlops_request_seconds_count", endpoint="/predict"),
        "rows": metric(server, "automlops_rows_scored_total"),
    }
    assert server.post("/predict", json=example).status_code == 200
    assert server.post("/predict", json=[{**example[0], "island": None}]).status_code == 422
    assert metric(server, "automlops_requests_total", endpoint="/predict", status="200") == before["ok"] + 1
    assert metric(server, "automlops_requests_total", endpoint="/predict", status="422") == before["bad"] + 1
    assert metric(server, "automlops_request_seconds_count", endpoint="/predict") == before["latency"] + 2
    assert metric(server, "automlops_request_seconds_bucket", endpoint="/predict", le="+Inf") == before["latency"] + 2
    assert metric(server, "automlops_rows_scored_total") == before["rows"] + len(example)
    assert metric(server, "automlops_model_version", model="penguins") == 1
    assert metric(server, "automlops_requests_total", endpoint="/metrics", status="200") >= 1


@pytest.mark.parametrize(
    "given,kept", [("order-42.retry_1", True), ("has spaces", False), ("x" * 65, False), ("<script>", False)]
)
def test_request_ids_are_kept_when_sane_and_logged(
    served: tuple[httpx.Client, Path, Path], example: list[dict], given: str, kept: bool
) -> None:
    server, log_file, _ = served
    for method, path, body in (("POST", "/predict", example), ("POST", "/predict", []), ("GET", "/health", None)):
        response = server.request(method, path, json=body, headers={"X-Request-ID": given})
        rid = response.headers["x-request-id"]
        assert (rid == given) == kept and len(rid) <= 64, rid
        if response.status_code != 200:
            assert response.json()["request_id"] == rid
        wait_for(
            lambda: f"{rid} {method} {path} {response.status_code}" in log_file.read_text(),
            5,
            f"log line of request {rid}",
        )


def _logged(folder: Path) -> dict[str, dict]:
    entries = [
        json.loads(line) for file in sorted(folder.glob("*.jsonl")) for line in file.read_text().splitlines() if line
    ]
    return {entry["request_id"]: entry for entry in entries}


def test_prediction_log_holds_inputs_outputs_version_time_and_request_id(
    served: tuple[httpx.Client, Path, Path], example: list[dict]
) -> None:
    server, _, folder = served
    started = time.time()
    response = server.post("/predict", json=example, headers={"X-Request-ID": "logged-1"})
    assert response.status_code == 200
    wait_for(lambda: "logged-1" in _logged(folder), 10, "the prediction log entry")
    entry = _logged(folder)["logged-1"]
    assert entry["model"] == "penguins" and entry["version"] == 1 and started - 1 <= entry["time"] <= time.time()
    assert entry["inputs"] == example and entry["outputs"] == response.json()["predictions"]
    refused = server.post("/predict", json=[], headers={"X-Request-ID": "refused-1"})
    assert refused.status_code == 400
    time.sleep(0.3)
    assert "refused-1" not in _logged(folder)


def test_a_broken_prediction_log_fails_no_request(served: tuple[httpx.Client, Path, Path], example: list[dict]) -> None:
    """Each entry here opens a new file (5 rows per file): with the folder replaced by a plain file
    every write fails. Requests still answer; the lost entries are counted."""
    server, _, folder = served
    dropped = metric(server, "automlops_prediction_log_dropped_total")
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    try:
        for _ in range(3):
            assert server.post("/predict", json=example).status_code == 200
        wait_for(
            lambda: metric(server, "automlops_prediction_log_dropped_total") >= dropped + 3,
            10,
            "dropped entries counted",
        )
    finally:
        folder.unlink()
        folder.mkdir()
    assert server.post("/predict", json=example, headers={"X-Request-ID": "after-repair"}).status_code == 200
    wait_for(lambda: "after-repair" in _logged(folder), 10, "logging after the folder came back")


@pytest.mark.parametrize("problem", ["missing", "tampered"])
def test_serve_refuses_a_bad_bundle_with_one_line(bundle: Path, tmp_path: Path, problem: str) -> None:
    target = tmp_path / "bundle"
    if problem == "tampered":
        shutil.copytree(bundle, target)
        data = bytearray((target / "model" / "model.joblib").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (target / "model" / "model.joblib").write_bytes(bytes(data))
    try:
        done = cli(
            "serve", "--model", str(target), "--host", "127.0.0.1", "--port", str(free_port()), cwd=tmp_path, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve started on a {problem} bundle instead of refusing it")
    assert done.returncode != 0
    message = done.stderr.strip()
    assert "\n" not in message, f"expected a one-line error, got:\n{message}"
    assert message.startswith("error:") and str(target) in message
    assert "Traceback" not in done.stderr
    if problem == "tampered":
        assert "sha256" in message


def _batcher_calls(
    bundle: Path, example: list[dict], inline_ms: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[list, list[tuple[bool, int]]]:
    """Answers to one request, then one more, then 16 at once, through a real MicroBatcher and the
    real model; and per model call: (ran on the event loop's thread, rows)."""
    import asyncio
    import threading

    from automlops.data.contract import typed_records
    from automlops.serve import batching
    from automlops.serve.holder import load_warm

    served = load_warm(bundle)
    calls: list[tuple[bool, int]] = []
    real = batching._score_together

    def observed(items: list) -> list:
        calls.append((threading.current_thread() is threading.main_thread(), sum(batching._count(i[1]) for i in items)))
        return real(items)

    monkeypatch.setattr(batching, "_score_together", observed)
    rows = [typed_records([record], served.contract) for record in example]

    async def requests() -> list:
        batcher = batching.MicroBatcher(max_rows=10000, inline_ms=inline_ms)
        batcher.start()
        try:
            answers = [await batcher.score(served, rows[0], True), await batcher.score(served, rows[1], True)]
            answers += await asyncio.gather(*(batcher.score(served, rows[i % len(rows)], True) for i in range(16)))
            return answers
        finally:
            await batcher.stop()

    return asyncio.run(requests()), calls


def test_a_fast_model_is_scored_on_the_event_loop_and_concurrent_requests_still_share_calls(
    bundle: Path, example: list[dict], in_memory: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers, calls = _batcher_calls(bundle, example, inline_ms=10_000, monkeypatch=monkeypatch)
    assert calls[0] == (False, 1), "a model's first call goes to a thread: its cost is not known yet"
    assert calls[1] == (True, 1), "once it is known to be fast, a small call runs on the loop"
    assert sum(rows for _, rows in calls[2:]) == 16 and len(calls) - 2 < 16, (
        f"16 concurrent requests were not batched: {calls}"
    )
    labels = [answer[0][0] for answer in answers]
    order = [0, 1] + [i % len(example) for i in range(16)]
    assert labels == [in_memory["prediction"].iloc[i] for i in order]


@pytest.mark.parametrize("inline_ms", [0.0, 1e-6], ids=["off", "model-slower-than-the-budget"])
def test_other_models_are_scored_in_worker_threads(
    bundle: Path, example: list[dict], in_memory: pd.DataFrame, inline_ms: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers, calls = _batcher_calls(bundle, example, inline_ms=inline_ms, monkeypatch=monkeypatch)
    assert calls, "the model was never called: nothing shows where it ran"
    assert sum(rows for _, rows in calls) == 18, f"every request's row is scored exactly once: {calls}"
    assert not any(on_loop for on_loop, _ in calls), calls
    order = [0, 1] + [i % len(example) for i in range(16)]
    assert [answer[0][0] for answer in answers] == [in_memory["prediction"].iloc[i] for i in order]


def test_the_server_calls_the_pipeline_step_by_step_with_the_same_answers(penguins_run, bundle: Path) -> None:
    """serve/direct.py: every prepared row of penguins (gaps included), and each with its categories
    unseen, scored by the step-by-step pipeline the server uses and by the pipeline itself."""
    from automlops.bundle import load_bundle
    from automlops.data.contract import CATEGORICAL, enforce_contract
    from automlops.scoring import score_arrays
    from automlops.serve.direct import DirectPipeline
    from automlops.serve.holder import load_warm

    root, _ = penguins_run
    served, plain = load_warm(bundle), load_bundle(bundle)
    assert isinstance(served.model, DirectPipeline), "an Optuna bundle's pipeline is served step by step"
    names = [spec.name for spec in plain.contract]
    rows = pd.concat(
        [
            pd.read_parquet(root / "data" / "prepared" / f"{split}.parquet")[names]
            for split in ("train", "valid", "test")
        ],
        ignore_index=True,
    )
    assert rows.isna().any().any(), "the check needs rows with gaps"
    unseen = rows.copy()
    for spec in plain.contract:
        if spec.kind == CATEGORICAL:
            unseen[spec.name] = "not-a-" + unseen[spec.name].astype(str)
    for frame in (rows, unseen):
        x = enforce_contract(frame, plain.contract, "model")
        for proba in (False, True):
            want, got = score_arrays(plain, x, proba), score_arrays(served, x, proba)
            assert (want[0] == got[0]).all()
            assert (want[1] is None and got[1] is None) or (want[1] == got[1]).all()


def test_a_pipeline_of_another_shape_is_served_as_it_is_and_sparse_columns_step_by_step() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from automlops.data.contract import ColumnSpec
    from automlops.serve.direct import direct_pipeline

    x = pd.DataFrame({"a": ["x", "y", "x", "y"], "b": ["u", "u", "v", "v"]})
    y = [0, 0, 1, 1]
    contract = [
        ColumnSpec(name, "categorical", "object", nullable=False, categories=sorted(set(x[name])))
        for name in ("a", "b")
    ]
    no_columns = Pipeline([("onehot", OneHotEncoder()), ("model", LogisticRegression())]).fit(x, y)
    assert direct_pipeline(no_columns, x, contract) is None, "a pipeline that does not start with a ColumnTransformer"
    assert direct_pipeline(LogisticRegression().fit(pd.get_dummies(x, dtype=float), y), x, contract) is None
    sparse = Pipeline(
        [
            ("columns", ColumnTransformer([("onehot", OneHotEncoder(), ["a", "b"])], sparse_threshold=1.0)),
            ("model", LogisticRegression()),
        ]
    ).fit(x, y)
    direct = direct_pipeline(sparse, x, contract)  # sparse one-hot columns are stacked as the ColumnTransformer does
    assert direct is not None
    assert (direct.predict_proba(x) == sparse.predict_proba(x)).all()
