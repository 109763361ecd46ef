"""`automlops serve`: the HTTP prediction service (app.py), the model it holds and reloads
(holder.py), request bodies (bodies.py) and what it reports (telemetry.py)."""

from automlops.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
