"""A locked-down `automlops serve`: a bearer token, small row and body limits, unseen categories
refused, and two worker processes. Real server, real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import cli
from test_serve import bundle, csv_bytes, example, free_port, running_server, wait_for  # noqa: F401  (bundle, example: shared fixtures)

pytestmark = pytest.mark.slow

TOKEN = "s3cret-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY_MB = 0.01  # 10 KiB: the 5-row input example is well under it


Locked = tuple[httpx.Client, "subprocess.Popen[bytes]", Path]


@pytest.fixture(scope="module")
def locked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Locked]:
    folder = tmp_path_factory.mktemp("locked")
    with running_server(
        bundle,
        "--workers",
        "2",
        "serve.token_env=SERVE_TEST_TOKEN",
        "serve.max_rows=3",
        f"serve.max_body_mb={MAX_BODY_MB}",
        "serve.unknown_categories=error",
        cwd=folder,
        log_file=folder / "serve.log",
        env={"SERVE_TEST_TOKEN": TOKEN},
    ) as (client, process):
        yield client, process, folder / "serve.log"


@pytest.fixture(scope="module")
def server(locked: Locked) -> httpx.Client:
    return locked[0]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
@pytest.mark.parametrize("method,path", [("POST", "/predict"), ("POST", "/invocations"), ("GET", "/metadata")])
def test_the_token_is_required(
    server: httpx.Client, example: list[dict], headers: dict, method: str, path: str
) -> None:
    body = {"dataframe_records": example[:2]} if path == "/invocations" else example[:2] if method == "POST" else None
    refused = server.request(method, path, json=body, headers=headers)
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"] == "Bearer" and refused.headers["x-request-id"]
    detail = refused.json()["detail"]
    assert "Authorization: Bearer" in detail and "SERVE_TEST_TOKEN" in detail and TOKEN not in detail
    allowed = server.request(method, path, json=body, headers=AUTH)
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/docs", "/openapi.json"])
def test_probes_metrics_and_docs_stay_open(server: httpx.Client, path: str) -> None:
    assert server.get(path).status_code == 200


def test_with_a_token_the_open_docs_show_no_real_row(server: httpx.Client, example: list[dict]) -> None:
    """The docs stay open for people and tools, but their examples were the input example's five real
    test rows: with a token they are one row built from the input schema, which the model answers."""
    paths = server.get("/openapi.json").json()["paths"]  # no token
    shown = {
        path: paths[path]["post"]["requestBody"]["content"]["application/json"]["example"]
        for path in ("/predict", "/invocations")
    }
    assert shown["/invocations"] == {"dataframe_records": shown["/predict"]} and len(shown["/predict"]) == 1
    row = shown["/predict"][0]
    assert list(row) == list(example[0])
    for name in row:
        if isinstance(row[name], float):
            assert row[name] not in [record[name] for record in example], f"{name}: {row[name]} is a real value"
    assert row not in example
    for path, body in shown.items():
        answer = server.post(path, json=body, headers=AUTH)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1, answer.text


@pytest.mark.parametrize("endpoint", ["/predict", "/invocations"])
def test_too_many_rows_is_a_413(server: httpx.Client, example: list[dict], endpoint: str) -> None:
    body = {"dataframe_records": example[:4]} if endpoint == "/invocations" else example[:4]
    response = server.post(endpoint, json=body, headers=AUTH)
    assert response.status_code == 413
    message = response.json()["message" if endpoint == "/invocations" else "detail"]
    assert "4 rows" in message and "serve.max_rows=3" in message
    assert (
        server.post(
            endpoint,
            json={"dataframe_records": example[:3]} if endpoint == "/invocations" else example[:3],
            headers=AUTH,
        ).status_code
        == 200
    )


@pytest.mark.parametrize("streamed", [False, True])
def test_a_body_over_the_size_limit_is_a_413(server: httpx.Client, example: list[dict], streamed: bool) -> None:
    """Declared (Content-Length) or streamed (chunked, no length): refused either way, before parsing."""
    big = json.dumps(example[:1] * 200).encode()
    assert len(big) > MAX_BODY_MB * 1024 * 1024
    content = iter([big[i : i + 1000] for i in range(0, len(big), 1000)]) if streamed else big
    response = server.post("/predict", content=content, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "serve.max_body_mb=0.01" in response.json()["detail"] and response.headers["x-request-id"]


def test_an_unseen_category_is_refused_naming_column_and_row(server: httpx.Client, example: list[dict]) -> None:
    rows = [example[0], {**example[1], "island": "Atlantis"}, {**example[2], "sex": "unknown"}]
    for endpoint, body, key in (("/predict", rows, "detail"), ("/invocations", {"dataframe_records": rows}, "message")):
        response = server.post(endpoint, json=body, headers=AUTH)
        assert response.status_code == 422, response.text
        message = response.json()[key]
        assert "column 'island' row 1: category 'Atlantis' was not seen in training" in message
        assert "column 'sex' row 2: category 'unknown'" in message
        assert "Biscoe" not in message and "female" not in message  # no recital of the known categories


@pytest.mark.parametrize("form", ["records", "dataframe_split", "csv"])
def test_a_category_is_read_as_sent_whatever_the_other_rows_hold(
    server: httpx.Client, example: list[dict], form: str
) -> None:
    """A number sent in a categorical column is the category "7" in every format, also beside a null
    (pandas alone would make that column 7.0 and NaN, and "7.0" another category)."""
    for rows in ([{**example[0], "sex": 7}], [{**example[0], "sex": 7}, {**example[1], "sex": None}]):
        columns = list(rows[0])
        body = {
            "records": json.dumps(rows).encode(),
            "csv": csv_bytes(rows),
            "dataframe_split": json.dumps(
                {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}}
            ).encode(),
        }[form]
        response = server.post(
            "/predict",
            content=body,
            headers={**AUTH, "content-type": "text/csv" if form == "csv" else "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == "input: column 'sex' row 0: category '7' was not seen in training"


def test_workers_are_separate_processes_that_log_request_ids(locked: Locked, example: list[dict]) -> None:
    server, process, log_file = locked
    workers = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _parent(p) == process.pid and b"spawn_main" in _cmdline(p)
    ]
    assert len(workers) == 2, [_cmdline(p) for p in workers]
    for i in range(6):
        response = server.post("/predict", json=example[:2], headers={**AUTH, "X-Request-ID": f"worker-check-{i}"})
        assert response.status_code == 200
        wait_for(
            lambda: f"worker-check-{i} POST /predict 200" in log_file.read_text(), 5, "a worker's request log line"
        )  # noqa: B023


def _parent(process: Path) -> int | None:
    try:
        return int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_token_variable_that_is_not_set_stops_the_server_with_one_line(bundle: Path, tmp_path: Path) -> None:
    try:
        done = cli(
            "serve",
            "--model",
            str(bundle),
            "--port",
            str(free_port()),
            "serve.token_env=NO_SUCH_TOKEN_VAR",
            cwd=tmp_path,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("serve started without its token")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: serve.token_env: environment variable NO_SUCH_TOKEN_VAR is not set or empty; "
        "export it, or set serve.token_env=null"
    )
