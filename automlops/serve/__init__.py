"""`automlops serve`: the HTTP prediction service (app.py), the model it holds and reloads
(holder.py), request bodies (bodies.py) and what it reports (telemetry.py). The package itself
imports nothing, so that its config checks (checks.py) load without FastAPI."""
