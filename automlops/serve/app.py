"""The HTTP prediction service (FastAPI on uvicorn): one model in memory, strict input validation
from the bundle's contract, MLflow-compatible /invocations, probes, metadata and Prometheus metrics.

Bad requests get a 4xx naming the field and row, never a 5xx and never other rows or the schema."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import Request  # module level: the endpoints' string annotations (PEP 563) resolve in these globals
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from automlops.bundle import Bundle
from automlops.config.schema import PredictionLogConfig, ServeConfig, SigningConfig
from automlops.data.contract import NUMERIC, ColumnSpec, enforce_contract
from automlops.errors import ConfigError, InputError
from automlops.serve.batching import MicroBatcher, ModelRows
from automlops.serve.bodies import BodyTooLarge, Rows, TooManyRows, read_limited, read_rows
from automlops.serve.holder import ModelHolder
from automlops.serve.middleware import Observe
from automlops.serve.telemetry import Metrics, PredictionLog, log_entry
from automlops.signing import NO_KEYS, TrustedKeys, trusted_keys

log = logging.getLogger("automlops.serve")
INLINE_BYTES = 16 * 1024  # bodies up to this size are parsed and checked on the event loop, larger ones in a thread
ENV_SETTINGS = "AUTOMLOPS_SERVE_SETTINGS"  # how `--workers N` hands the model and settings to each worker


def create_app(ref: str, cfg: ServeConfig, keys: TrustedKeys = NO_KEYS) -> Any:
    """`keys`: deploy.signing.public_keys; the first bundle and every reloaded one must be signed by one."""
    from fastapi import FastAPI

    token = _token(cfg)
    metrics = Metrics()
    holder = ModelHolder(
        ref, cfg.reload_interval, on_reload=lambda result, bundle: _reloaded(metrics, result, bundle), keys=keys
    )
    _reloaded(metrics, "initial", holder.bundle)
    prediction_log = PredictionLog(cfg.prediction_log, metrics.log_dropped) if cfg.prediction_log.enabled else None
    limit = int(cfg.max_body_mb * 1024 * 1024)
    batcher = MicroBatcher(cfg.max_rows, cfg.inline_ms)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        holder.start()
        batcher.start()
        if prediction_log:
            prediction_log.start()
        yield
        await batcher.stop()
        holder.stop()
        if prediction_log:
            prediction_log.close()

    manifest = holder.bundle.manifest
    app = FastAPI(
        title=f"automlops model {manifest.name}",
        version=str(manifest.version or manifest.created_at),
        description="Predictions from an automlops bundle. Request bodies are checked against the model's input schema.",
        lifespan=lifespan,
    )

    app.add_middleware(Observe, metrics=metrics, token=token, token_env=cfg.token_env)

    @app.get("/health", summary="Liveness: the process answers")
    def health() -> dict[str, Any]:
        bundle = holder.bundle
        return {"status": "ok", "model": bundle.manifest.name, "task": bundle.manifest.task}

    @app.get("/ready", summary="Readiness: the model is loaded and warmed up")
    def ready() -> dict[str, Any]:
        bundle = holder.bundle  # loaded and warmed before the port opened, and swapped only when warmed
        return {"ready": True, "model": bundle.manifest.name, "version": bundle.manifest.version}

    @app.get("/metadata", summary="The served model: version, metrics, input schema, lineage")
    def metadata() -> dict[str, Any]:
        return _metadata(holder.bundle, holder.ref, holder.follows)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def model_rows(body: bytes, content_type: str, bundle: Bundle, mlflow: bool) -> tuple[Rows, ModelRows]:
        """A body's rows, and what the model takes of them; InputError or TooManyRows when refused."""
        rows = read_rows(
            body, content_type, bundle.contract, strict_envelope=mlflow, quick=cfg.unknown_categories == "model"
        )
        if rows.count > cfg.max_rows:
            raise TooManyRows(rows.count)
        if rows.typed is not None:
            return rows, rows.typed
        assert rows.frame is not None
        return rows, enforce_contract(bundle.without_dropped(rows.frame), bundle.contract, cfg.unknown_categories)

    async def score(request: Request, mlflow: bool) -> Response:
        rid = request.state.request_id
        bundle = holder.bundle  # this request finishes on this version, whatever a reload does meanwhile
        try:
            body = await read_limited(request, limit)
        except BodyTooLarge:
            return _error(
                f"body: larger than serve.max_body_mb={cfg.max_body_mb:g} MiB; send fewer rows per request",
                413,
                rid,
                mlflow,
            )
        proba = not mlflow and request.query_params.get("proba", "").lower() in ("1", "true", "yes")
        work = (body, request.headers.get("content-type", ""), bundle, mlflow)
        try:  # a small body is read here: a thread hop would cost more than the work
            rows, x = model_rows(*work) if len(body) <= INLINE_BYTES else await run_in_threadpool(model_rows, *work)
            labels, probabilities = await batcher.score(bundle, x, proba)
        except TooManyRows as error:
            return _error(
                f"body: {error.count} rows, more than serve.max_rows={cfg.max_rows}; split the request",
                413,
                rid,
                mlflow,
            )
        except InputError as error:
            return _error(str(error), 400 if str(error).startswith("body") else 422, rid, mlflow)
        metrics.rows.inc(len(labels))
        predictions = _plain(labels.tolist())
        answer: dict[str, Any] = {"predictions": predictions}
        if probabilities is not None:
            classes = [str(label) for label in bundle.model.classes_]
            answer["probabilities"] = [dict(zip(classes, row)) for row in probabilities.tolist()]
        if prediction_log:
            sent = _sent(rows.records) if rows.records is not None else _records(rows.frame)
            prediction_log.add(log_entry(rid, bundle.manifest, sent, predictions))
        return JSONResponse(answer, headers={"X-Model-Version": str(bundle.manifest.version)})

    @app.post(
        "/predict",
        summary="Predict: JSON records or columns, or CSV (text/csv); ?proba=1 adds class probabilities",
        openapi_extra={"requestBody": _request_schema(holder.bundle, synthetic=token is not None)},
    )
    async def predict(request: Request) -> Response:
        return await score(request, mlflow=False)

    @app.post(
        "/invocations",
        summary="MLflow scoring protocol: dataframe_split, dataframe_records, instances, inputs, or text/csv",
        openapi_extra={"requestBody": _request_schema(holder.bundle, mlflow=True, synthetic=token is not None)},
    )
    async def invocations(request: Request) -> Response:
        return await score(request, mlflow=True)

    return app


async def run_in_threadpool(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool as run

    return await run(fn, *args)


def _error(message: str, status: int, rid: str, mlflow: bool) -> JSONResponse:
    if mlflow:  # MLflow's scoring server answers errors this way
        return JSONResponse({"error_code": "BAD_REQUEST", "message": message, "request_id": rid}, status)
    return JSONResponse({"detail": message, "request_id": rid}, status)


def _token(cfg: ServeConfig) -> str | None:
    if not cfg.token_env:
        return None
    value = os.environ.get(cfg.token_env, "")
    if not value:
        raise ConfigError(
            f"serve.token_env: environment variable {cfg.token_env} is not set or empty; export it, or set serve.token_env=null"
        )
    return value


def _reloaded(metrics: Metrics, result: str, bundle: Bundle | None) -> None:
    if result != "initial":
        metrics.reloads.labels(result).inc()
    if bundle is not None:
        metrics.model_version.clear()
        metrics.model_version.labels(bundle.manifest.name).set(bundle.manifest.version or 0)


def _metadata(bundle: Bundle, ref: str, follows: bool) -> dict[str, Any]:
    manifest = bundle.manifest
    lineage = manifest.lineage
    return {
        "name": manifest.name,
        "version": manifest.version,
        "created_at": manifest.created_at,
        "served_from": ref,
        "follows_alias": follows,
        "task": manifest.task,
        "target": manifest.target,
        "classes": manifest.classes,
        "positive_class": manifest.positive_class,
        "decision_threshold": manifest.decision_threshold,
        "metrics": manifest.metrics.to_dict(),
        "model": {"engine": manifest.model.engine, "format": manifest.model.format, "family": manifest.model.family},
        "input_schema": manifest.input_schema,
        "blessing": None if manifest.blessing is None else manifest.blessing.to_dict(),
        "lineage": {
            "git_commit": lineage.git_commit,
            "data_hash": lineage.data_hash,
            "rows": lineage.rows,
            "search": {k: lineage.search.get(k) for k in ("engine", "study_name", "best_trial", "fit_id")},
        },
    }


def _request_schema(bundle: Bundle, mlflow: bool = False, synthetic: bool = False) -> dict[str, Any]:
    """The OpenAPI request body, generated from the bundle's input contract: a list of records for
    /predict, MLflow's envelopes around it for /invocations. Its example is the bundle's input example
    (real test rows), or with `synthetic` (a token is set: the docs stay open, the rows must not leak)
    one row built from the contract alone."""
    properties: dict[str, Any] = {}
    for spec in bundle.contract:
        kind: dict[str, Any] = {"type": "number"} if spec.kind == "numeric" else {"type": "string"}
        if spec.kind != "numeric" and 0 < len(spec.categories) <= 50:
            kind["examples"] = spec.categories[:5]
        properties[spec.name] = {"anyOf": [kind, {"type": "null"}]} if spec.nullable else kind
    row = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    rows = {"type": "array", "items": row, "minItems": 1}
    example_file = bundle.path / "input_example.json"
    example = (
        [synthetic_row(bundle.contract)]
        if synthetic
        else json.loads(example_file.read_text())
        if example_file.is_file()
        else []
    )
    schema: dict[str, Any] = rows
    if mlflow:
        split = {
            "type": "object",
            "required": ["columns", "data"],
            "properties": {
                "columns": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(properties)},
                    "uniqueItems": True,
                },
                "data": {"type": "array", "minItems": 1, "items": {"type": "array"}},
            },
        }
        envelopes = {"dataframe_split": split, "dataframe_records": rows, "instances": rows, "inputs": rows}
        schema = {
            "oneOf": [
                {"type": "object", "properties": {key: value}, "required": [key]} for key, value in envelopes.items()
            ]
        }
        example = {"dataframe_records": example}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema, "example": example},
            "text/csv": {"schema": {"type": "string"}},
        },
    }


def synthetic_row(contract: list[ColumnSpec]) -> dict[str, Any]:
    """A row no one sent: each number the middle of its training range to two significant digits (0
    without one), each category the first level seen in training. It fits the contract, so the docs'
    "Try it out" answers."""
    row: dict[str, Any] = {}
    for spec in contract:
        if spec.kind == NUMERIC:
            middle = (spec.min + spec.max) / 2 if spec.min is not None and spec.max is not None else 0.0
            row[spec.name] = float(f"{middle:.2g}") if math.isfinite(middle) else 0.0
        else:
            row[spec.name] = spec.categories[0] if spec.categories else "unknown"
    return row


def _records(frame: Any) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _sent(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON records as sent, a NaN (JSON's NaN literal) as null, as _records gives it."""
    return [{k: None if isinstance(v, float) and v != v else v for k, v in record.items()} for record in records]


def _plain(values: list[Any]) -> list[Any]:
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def app_from_environment() -> Any:
    """The app factory each `--workers N` process calls (uvicorn imports it by name)."""
    settings = json.loads(os.environ[ENV_SETTINGS])
    # a spawned worker starts with bare logging: without this its request lines (with their ids) are lost
    logging.basicConfig(level=settings["log_level"], format="%(message)s", stream=sys.stderr)
    raw = settings["config"]
    cfg = ServeConfig(**{**raw, "prediction_log": PredictionLogConfig(**raw["prediction_log"])})
    return create_app(settings["ref"], cfg, keys=trusted_keys(SigningConfig(public_keys=settings["public_keys"])))


def serve(ref: str, cfg: ServeConfig, keys: TrustedKeys = NO_KEYS) -> None:
    import uvicorn

    if cfg.workers > 1:
        os.environ[ENV_SETTINGS] = json.dumps(
            {
                "ref": ref,
                "config": asdict(cfg),
                "public_keys": list(keys.paths),
                "log_level": logging.getLogger().getEffectiveLevel(),
            }
        )
        create_app(ref, cfg, keys=keys)  # fail here, with one line, on a bad bundle or token, not in every worker
        uvicorn.run(
            "automlops.serve.app:app_from_environment",
            factory=True,
            host=cfg.host,
            port=cfg.port,
            workers=cfg.workers,
            log_level="warning",
            access_log=False,
        )
        return
    uvicorn.run(create_app(ref, cfg, keys=keys), host=cfg.host, port=cfg.port, log_level="warning", access_log=False)
