"""Hot reload: a server started on models/<name> follows the champion alias. A client sends requests
back to back while the alias is promoted, rolled back, and pointed at a version that cannot load;
no request may fail, and X-Model-Version says which version answered each one."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import cli
from test_serve import metric, running_server, wait_for

from automlops.deploy.package import seal
from automlops.model_registry import add_version, promote
from automlops.records import Manifest
from automlops.serve.holder import follows_alias


def resealed(source: Path, target: Path, version: int, model_bytes: bytes | None = None) -> Path:
    """A copy of a bundle as another version (optionally with other model bytes), every sha256 in
    its manifest matching, as a published version's would."""
    shutil.copytree(source, target)
    if model_bytes is not None:
        (target / "model" / "model.joblib").write_bytes(model_bytes)
    seal(target, Manifest.from_dict({**json.loads((target / "manifest.json").read_text()), "version": version}))
    return target


@pytest.fixture(scope="module")
def registry(penguins_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/penguins with v1 (the run's, champion), v2 (the same model, resealed as version 2) and
    v3 (sealed, but its model file is garbage: it passes the sha256 check and fails to unpickle)."""
    root, _ = penguins_run
    folder = tmp_path_factory.mktemp("reload")
    registry = folder / "models" / "penguins"
    shutil.copytree(root / "models" / "penguins", registry)
    v1 = registry / "versions" / "1"
    add_version(registry, resealed(v1, folder / "v2", 2), 2)
    add_version(registry, resealed(v1, folder / "v3", 3, model_bytes=b"this is not a pickle"), 3)
    return registry


@pytest.fixture(scope="module")
def reloading(registry: Path) -> Iterator[tuple[httpx.Client, Path, Path]]:
    """(client, server log, prediction log folder) of a server following models/penguins's champion."""
    folder = registry.parent.parent
    with running_server(
        registry,
        "serve.reload_interval=0.2",
        "serve.unknown_categories=model",
        "serve.prediction_log.enabled=true",
        f"serve.prediction_log.dir={folder / 'predictions'}",
        cwd=folder,
        log_file=folder / "serve.log",
    ) as (client, _):
        yield client, folder / "serve.log", folder / "predictions"


@pytest.fixture(scope="module")
def example(registry: Path) -> list[dict]:
    return json.loads((registry / "versions" / "1" / "input_example.json").read_text())


class Traffic:
    """A client thread that POSTs rows to /predict back to back on one keep-alive connection,
    recording each answer: (status or error name, X-Model-Version, request id, body)."""

    def __init__(self, base_url: str, rows: list[dict], name: str = "traffic") -> None:
        self.base_url, self.body, self.name = base_url, json.dumps(rows), name
        self.answers: list[tuple[Any, str | None, str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self._stop.is_set():
                rid = f"{self.name}-{len(self.answers)}"
                try:
                    response = client.post(
                        "/predict", content=self.body, headers={"content-type": "application/json", "X-Request-ID": rid}
                    )
                    body = response.json() if response.status_code == 200 else response.text[:300]
                    self.answers.append((response.status_code, response.headers.get("x-model-version"), rid, body))
                except httpx.HTTPError as error:
                    self.answers.append((type(error).__name__, None, rid, str(error)))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the client loop did not stop"

    def version(self) -> str | None:
        return self.answers[-1][1] if self.answers else None

    def more(self, count: int) -> None:
        """Wait until `count` more answers came in (the client kept going)."""
        target = len(self.answers) + count
        wait_for(lambda: len(self.answers) >= target, 30, f"{count} more answers")


def _runs(values: list[Any]) -> list[Any]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def test_which_references_follow_an_alias(tmp_path: Path) -> None:
    registry = tmp_path / "models" / "penguins"
    (registry / "versions" / "1").mkdir(parents=True)
    (registry / "versions" / "1" / "manifest.json").write_text("{}")
    (registry / "aliases.json").write_text('{"aliases": {"champion": 1}, "history": []}')
    assert (
        follows_alias(str(registry)) and follows_alias(f"{registry}@champion") and follows_alias(f"{registry}@staging")
    )
    assert not follows_alias(f"{registry}@2") and not follows_alias(f"{registry}@v2")  # a fixed version
    assert not follows_alias(str(registry / "versions" / "1"))  # a bundle folder


@pytest.mark.slow
def test_promotion_and_rollback_switch_versions_with_no_failed_request(
    reloading: tuple[httpx.Client, Path, Path], registry: Path, example: list[dict]
) -> None:
    """Two clients: small requests, and 1000-row ones that are being scored while versions swap."""
    server, _, predictions = reloading
    promote(registry, 1)  # whatever an earlier test left
    wait_for(lambda: server.get("/metadata").json()["version"] == 1, 15, "v1 serving")
    reloads = metric(server, "automlops_model_reloads_total", result="ok")
    project = registry.parent.parent
    with (
        Traffic(str(server.base_url), example, "small") as small,
        Traffic(str(server.base_url), example * 200, "large") as large,
    ):

        def serving(version: str) -> bool:
            return small.version() == version and large.version() == version

        small.more(20)
        promoted = cli("models", "promote", str(registry), "2", cwd=project)
        assert promoted.returncode == 0, promoted.stderr
        wait_for(lambda: serving("2"), 15, "v2 answering after `automlops models promote`")
        small.more(20)
        back = cli("models", "rollback", str(registry), cwd=project)
        assert back.returncode == 0 and "rolled back to v1" in back.stdout, back.stderr
        wait_for(lambda: serving("1"), 15, "v1 answering after `automlops models rollback`")
        small.more(20)
    for traffic, rows in ((small, len(example)), (large, 200 * len(example))):
        answers = traffic.answers
        failed = [a for a in answers if a[0] != 200]
        assert not failed, f"{len(failed)} of {len(answers)} {traffic.name} requests failed, e.g. {failed[:3]}"
        # requests in sequence: each swap is seen once and never undone (no flapping)
        assert _runs([a[1] for a in answers]) == ["1", "2", "1"], traffic.name
        assert {len(a[3]["predictions"]) for a in answers} == {rows}
    assert len({json.dumps(a[3]) for a in small.answers}) == 1  # v2 is v1's model: the same answers throughout
    assert metric(server, "automlops_model_reloads_total", result="ok") == reloads + 2
    assert metric(server, "automlops_model_version", model="penguins") == 1
    metadata = server.get("/metadata").json()
    assert metadata["version"] == 1 and metadata["follows_alias"] is True
    # the prediction log says, per request, the version that answered it
    wanted = {rid: int(version) for _, version, rid, _ in small.answers + large.answers}
    logged: dict[str, int] = {}

    def read_log() -> bool:
        for file in predictions.glob("*.jsonl"):
            for line in file.read_text().splitlines():
                if line.startswith("{") and line.endswith("}"):
                    entry = json.loads(line)
                    logged[entry["request_id"]] = entry["version"]
        return wanted.keys() <= logged.keys()

    wait_for(read_log, 15, "every answered request in the prediction log")
    assert {rid: logged[rid] for rid in wanted} == wanted


@pytest.mark.slow
def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    reloading: tuple[httpx.Client, Path, Path], registry: Path, example: list[dict]
) -> None:
    server, log_file, _ = reloading
    promote(registry, 1)
    wait_for(lambda: server.get("/metadata").json()["version"] == 1, 15, "v1 serving")
    failures = metric(server, "automlops_model_reloads_total", result="failed")
    try:
        with Traffic(str(server.base_url), example) as traffic:
            traffic.more(10)
            promote(registry, 3)
            wait_for(
                lambda: metric(server, "automlops_model_reloads_total", result="failed") == failures + 1,
                15,
                "the failed reload counted",
            )
            time.sleep(1)  # five reload intervals: v3 is not retried while the alias stays on it
            traffic.more(10)
        assert metric(server, "automlops_model_reloads_total", result="failed") == failures + 1
        assert {a[0] for a in traffic.answers} == {200} and {a[1] for a in traffic.answers} == {"1"}
        assert server.get("/metadata").json()["version"] == 1
        assert metric(server, "automlops_model_version", model="penguins") == 1
        line = next(line for line in log_file.read_text().splitlines() if "failed to load" in line)
        assert str(registry / "versions" / "3") in line and "still serving" in line
    finally:
        promote(registry, 1)


@pytest.mark.slow
def test_unknown_categories_model_passes_unseen_values_to_the_model(
    reloading: tuple[httpx.Client, Path, Path], registry: Path, example: list[dict]
) -> None:
    from automlops.bundle import load_bundle
    from automlops.scoring import predict_frame
    from automlops.tables import records_from_json

    rows = [{**example[0], "island": "Atlantis"}, {**example[1], "sex": "unknown"}]
    response = reloading[0].post("/predict", json=rows)
    assert response.status_code == 200, response.text
    expected = predict_frame(
        load_bundle(registry / "versions" / "1"), records_from_json(rows), unknown_categories="model"
    )
    assert response.json()["predictions"] == expected["prediction"].tolist()
