"""What a server tells its operators: Prometheus metrics, request ids, and the opt-in prediction log
that monitoring reads. None of it may slow down or fail a request."""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from automlops.config.schema import PredictionLogConfig
from automlops.records import Manifest

log = logging.getLogger("automlops.serve")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new one."""
    return header if header and REQUEST_ID.fullmatch(header) else uuid.uuid4().hex


class Metrics:
    """One registry per app (several apps may live in one process, e.g. in tests). With --workers N
    each worker process counts its own requests."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the output and no dashboard reads them
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "automlops_requests_total",
            "HTTP requests by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "automlops_request_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("automlops_rows_scored_total", "Rows scored", registry=self.registry)
        self.model_version = Gauge(
            "automlops_model_version",
            "Version of the model being served (0: not registered)",
            ["model"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "automlops_model_reloads_total",
            "Model reloads after an alias moved, by result",
            ["result"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "automlops_prediction_log_dropped_total",
            "Prediction log entries dropped because the log queue was full",
            registry=self.registry,
        )


class PredictionLog:
    """Append-only JSONL files, one entry per request, rotated by rows. Requests put entries on a
    bounded queue and never wait: a full queue drops the entry and counts it."""

    def __init__(self, cfg: PredictionLogConfig, dropped: Counter) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=cfg.queue_size)
        self._dropped = dropped
        self._thread = threading.Thread(target=self._write, name="automlops-prediction-log", daemon=True)
        self._file: Any = None
        self._rows_in_file = 0

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def add(self, entry: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._dropped.inc()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop (called at shutdown)."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _write(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                break
            try:
                self._append(entry)
            except Exception as error:  # a full disk or an odd value must not take the server down
                log.error("prediction log: cannot write to %s (%s); entry dropped", self.dir, error)
                self._dropped.inc()
        if self._file is not None:
            self._file.close()

    def _append(self, entry: dict[str, Any]) -> None:
        rows = len(entry.get("outputs", [])) or 1
        if self._file is None or self._rows_in_file >= self.cfg.max_rows_per_file:
            if self._file is not None:
                self._file.close()
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            self._file = (self.dir / f"predictions-{stamp}-{os.getpid()}.jsonl").open("a", encoding="utf-8")
            self._rows_in_file = 0
        self._file.write(json.dumps(entry, default=str) + "\n")
        self._file.flush()
        self._rows_in_file += rows


def log_entry(
    request_id: str, bundle_manifest: Manifest, inputs: list[dict[str, Any]], outputs: list[Any]
) -> dict[str, Any]:
    return {
        "time": time.time(),
        "request_id": request_id,
        "model": bundle_manifest.name,
        "version": bundle_manifest.version,
        "inputs": inputs,
        "outputs": outputs,
    }
