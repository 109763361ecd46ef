"""The HTTP prediction service: one bundle loaded once, answers over FastAPI/uvicorn."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request  # module level: the endpoints' string annotations (PEP 563) resolve in these globals
from fastapi.responses import JSONResponse

from automlops.deploy.bundle import Bundle
from automlops.errors import InputError
from automlops.predict import predict_frame, records_from_json


def create_app(bundle: Bundle) -> Any:
    from fastapi import FastAPI
    from starlette.concurrency import run_in_threadpool

    manifest = bundle.manifest
    app = FastAPI(title=f"automlops model {manifest['name']}", version=str(manifest.get("created_at")))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": manifest["name"], "task": manifest["task"]}

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return JSONResponse({"detail": f"body: not valid JSON ({error.__class__.__name__}); send a list of records"}, 400)
        try:
            frame = records_from_json(body)
            out = await run_in_threadpool(predict_frame, bundle, frame, request.query_params.get("proba", "").lower() in ("1", "true", "yes"))
        except InputError as error:
            return JSONResponse({"detail": str(error)}, 422)
        response: dict[str, Any] = {"predictions": _plain(out["prediction"].tolist())}
        probabilities = [c for c in out.columns if c.startswith("proba_")]
        if probabilities:
            response["probabilities"] = out[probabilities].rename(columns=lambda c: c[len("proba_"):]).to_dict("records")
        return JSONResponse(response)

    return app


def _plain(values: list[Any]) -> list[Any]:
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def serve(bundle: Bundle, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(bundle), host=host, port=port, log_level="info")
