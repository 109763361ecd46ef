"""The serving check (`gate.infra.*`, TFX's InfraValidator): serve the new bundle for real, in a subprocess on a
free loopback port, send it its own input example and time the answers, then stop it. A bundle that
does not start, answers wrongly or too slowly never becomes the champion."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from automlops import children
from automlops.bundle import EXAMPLE_FILE
from automlops.config.schema import InfraConfig
from automlops.signing import NO_KEYS, TrustedKeys, keys_override


def check_serving(bundle: Path, cfg: InfraConfig, keys: TrustedKeys = NO_KEYS) -> dict[str, Any]:
    """`keys`: the gate's deploy.signing.public_keys, handed to the server so it verifies the candidate as the gate did."""
    example = json.loads((bundle / EXAMPLE_FILE).read_text())
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    record: dict[str, Any] = {
        "passed": False,
        "requests": cfg.requests,
        "rows_per_request": len(example),
        "p95_limit_ms": cfg.p95_ms,
    }
    with tempfile.TemporaryFile("w+") as log_file:
        # one worker: no grandchildren; children.popen: the server dies with this process, even on SIGKILL
        server = children.popen(
            [
                sys.executable,
                "-m",
                "automlops",
                "serve",
                "--model",
                str(bundle),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                keys_override(keys),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            started = time.perf_counter()
            if not _wait_healthy(url, server, cfg.startup_timeout):
                log_file.seek(0)
                last = [line for line in log_file.read().splitlines() if line.strip()][-1:] or ["no output"]
                state = (
                    f"exited with {server.returncode}"
                    if server.poll() is not None
                    else f"no answer on /health in {cfg.startup_timeout:g} s"
                )
                record["error"] = f"the server did not start ({state}): {last[0][:300]}"
                return record
            record["startup_seconds"] = round(time.perf_counter() - started, 2)
            latencies = []
            for _ in range(cfg.requests):
                sent = time.perf_counter()
                status, body = _post(f"{url}/predict", example)
                latencies.append((time.perf_counter() - sent) * 1000)
                if status != 200 or len(body.get("predictions", [])) != len(example):
                    record["error"] = (
                        f"POST /predict with the input example answered {status}: {json.dumps(body)[:300]}"
                    )
                    return record
            record.update(
                p50_ms=round(float(np.percentile(latencies, 50)), 2),
                p95_ms=round(float(np.percentile(latencies, 95)), 2),
            )
            if record["p95_ms"] > cfg.p95_ms:
                record["error"] = f"p95 latency {record['p95_ms']} ms is above gate.infra.p95_ms={cfg.p95_ms:g}"
                return record
            record["passed"] = True
            return record
        finally:  # also on Ctrl-C, SIGTERM and SIGHUP (children.Terminated)
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def _post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"detail": error.read().decode(errors="replace")[:300]}
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return 0, {"detail": str(error)}
