"""The HTTP service: a real `automlops serve` (uvicorn) on a free loopback port, real HTTP requests."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def bundle(penguins_run) -> Path:
    root, _ = penguins_run
    return champion(root, "penguins")


@pytest.fixture(scope="module")
def example(bundle: Path) -> list[dict]:
    return json.loads((bundle / "input_example.json").read_text())


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """`python -m automlops serve` on a free port; yields a client; always stops the server."""
    port = free_port()
    log_file = tmp_path_factory.mktemp("serve") / "serve.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "automlops", "serve", "--model", str(bundle), "--host", "127.0.0.1", "--port", str(port)],
            cwd=bundle.parent.parent, env=run_env(), stdout=log, stderr=subprocess.STDOUT,
        )
    # a fresh connection per request: a request the server fails on cannot break the next test's
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"server exited with {process.returncode}:\n{log_file.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"server not healthy within 60 s:\n{log_file.read_text()[-3000:]}"
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cli_predictions(bundle: Path, example: list[dict], tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """`automlops predict` on the input example's rows (as CSV): what the service must agree with."""
    folder = tmp_path_factory.mktemp("cli")
    pd.DataFrame.from_records(example).to_csv(folder / "rows.csv", index=False)
    done = cli("predict", "--model", str(bundle), "--input", str(folder / "rows.csv"), "--output", str(folder / "out.csv"), cwd=folder)
    assert done.returncode == 0, done.stderr
    return pd.read_csv(folder / "out.csv", float_precision="round_trip")


def test_health(server: httpx.Client) -> None:
    response = server.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model": "penguins", "task": "multiclass"}


def test_predict_on_input_example_matches_cli(server: httpx.Client, bundle: Path, example: list[dict], cli_predictions: pd.DataFrame) -> None:
    body = (bundle / "input_example.json").read_bytes()
    response = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(example)
    assert predictions == cli_predictions["prediction"].tolist()

    with_probabilities = server.post("/predict", params={"proba": "1"}, content=body)
    assert with_probabilities.status_code == 200, with_probabilities.text
    payload = with_probabilities.json()
    assert payload["predictions"] == predictions
    expected = cli_predictions[[c for c in cli_predictions.columns if c.startswith("proba_")]]
    expected = expected.rename(columns=lambda c: c[len("proba_"):]).to_dict("records")
    assert payload["probabilities"] == expected
    assert "probabilities" not in server.post("/predict", params={"proba": "0"}, content=body).json()


@pytest.mark.parametrize("envelope", ["dataframe_records", "dataframe_split"])
def test_mlflow_envelopes(server: httpx.Client, example: list[dict], cli_predictions: pd.DataFrame, envelope: str) -> None:
    if envelope == "dataframe_records":
        body = {"dataframe_records": example}
    else:
        columns = list(example[0])
        body = {"dataframe_split": {"columns": columns, "data": [[record[c] for c in columns] for record in example]}}
    response = server.post("/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == cli_predictions["prediction"].tolist()


def _without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


def _malformed(example: list[dict]) -> dict[str, tuple[bytes, list[str]]]:
    """case -> (request body, words the error must contain)"""
    columns = list(example[0])
    text_in_number = [dict(record) for record in example]
    text_in_number[1]["bill_length_mm"] = "abc"
    return {
        "not_json": (b"{this is not json", ["JSON"]),
        "unknown_object": (json.dumps({"nonsense": True}).encode(), ["list of records"]),
        "empty_list": (b"[]", ["empty"]),
        "column_missing": (json.dumps([_without(r, "body_mass_g") for r in example]).encode(), ["body_mass_g"]),
        "column_missing_in_one_record": (
            json.dumps([_without(r, "sex") if i == 2 else r for i, r in enumerate(example)]).encode(), ["sex"]),
        "extra_column": (json.dumps([{**r, "colour": "blue"} for r in example]).encode(), ["colour"]),
        "text_in_numeric_column": (json.dumps(text_in_number).encode(), ["bill_length_mm", "row 1"]),
        "split_with_duplicate_column": (json.dumps({"dataframe_split": {
            "columns": [*columns, "island"], "data": [[*(r[c] for c in columns), "Dream"] for r in example]}}).encode(), ["island"]),
        "number_too_large_for_a_float": (
            json.dumps([{**example[0], "body_mass_g": 0}]).replace('"body_mass_g": 0', '"body_mass_g": 1' + "0" * 400).encode(),
            ["body_mass_g"]),
    }


MALFORMED = ["not_json", "unknown_object", "empty_list", "column_missing", "column_missing_in_one_record", "extra_column",
             "text_in_numeric_column", "split_with_duplicate_column", "number_too_large_for_a_float"]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_body_is_a_4xx_naming_the_problem(server: httpx.Client, example: list[dict], case: str) -> None:
    body, words = _malformed(example)[case]
    response = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    for word in words:
        assert word in detail, f"{word!r} not in {detail!r}"
    if case == "text_in_numeric_column":  # names the bad cell, echoes nothing of the other rows
        echoed = [str(value) for i, record in enumerate(example) for key, value in record.items()
                  if value is not None and (i, key) != (1, "bill_length_mm") and str(value) in detail]
        assert not echoed, f"the error echoes other values {echoed}: {detail!r}"


@pytest.mark.parametrize("problem", ["missing", "tampered"])
def test_serve_refuses_a_bad_bundle_with_one_line(bundle: Path, tmp_path: Path, problem: str) -> None:
    target = tmp_path / "bundle"
    if problem == "tampered":
        shutil.copytree(bundle, target)
        data = bytearray((target / "model" / "model.joblib").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (target / "model" / "model.joblib").write_bytes(bytes(data))
    try:
        done = cli("serve", "--model", str(target), "--host", "127.0.0.1", "--port", str(free_port()), cwd=tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve started on a {problem} bundle instead of refusing it")
    assert done.returncode != 0
    message = done.stderr.strip()
    assert "\n" not in message, f"expected a one-line error, got:\n{message}"
    assert message.startswith("error:") and str(target) in message
    assert "Traceback" not in done.stderr
    if problem == "tampered":
        assert "sha256" in message
