"""What every request goes through: a request id (echoed in X-Request-ID), the bearer token, Prometheus
metrics, one log line, and a 500 with the id instead of a traceback. Plain ASGI: Starlette's
`@app.middleware("http")` (BaseHTTPMiddleware) runs each request through extra tasks and streams,
which cost more than all of this on a one-row request."""

from __future__ import annotations

import hmac
import logging
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from automlops.serve.telemetry import Metrics, request_id

log = logging.getLogger("automlops.serve")
OPEN_PATHS = {"/health", "/ready", "/metrics", "/docs", "/openapi.json", "/docs/oauth2-redirect"}  # no token needed
KNOWN_PATHS = {
    "/health",
    "/ready",
    "/metadata",
    "/metrics",
    "/predict",
    "/invocations",
}  # metric labels; others: "other"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics, token: str | None, token_env: str | None) -> None:
        self.app, self.metrics, self.token, self.token_env = app, metrics, token, token_env

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(_header(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = rid  # request.state.request_id in the endpoints
        started, path = time.perf_counter(), scope["path"]
        status: int | None = None  # set when the answer starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        if self.token and path not in OPEN_PATHS and not _authorized(_header(scope, b"authorization"), self.token):
            await self._refuse(rid)(scope, receive, send_with_id)
        else:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:  # a bug: the client gets an id to quote, the log gets the traceback
                log.exception("request %s %s %s failed", rid, scope["method"], path)
                if status is not None:  # the answer has started: too late to replace it
                    raise
                await JSONResponse(
                    {"detail": f"internal error; quote request id {rid} to the operator", "request_id": rid}, 500
                )(scope, receive, send_with_id)
        elapsed = time.perf_counter() - started
        endpoint = path if path in KNOWN_PATHS else "other"
        code = status or 500
        self.metrics.requests.labels(endpoint, str(code)).inc()
        self.metrics.latency.labels(endpoint).observe(elapsed)
        log.info("%s %s %s %d %.1f ms", rid, scope["method"], path, code, elapsed * 1000)

    def _refuse(self, rid: str) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "authorization: send the header 'Authorization: Bearer <token>' "
                f"(the value of ${self.token_env} on the server)",
                "request_id": rid,
            },
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header (ASGI gives names in lower case)."""
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
