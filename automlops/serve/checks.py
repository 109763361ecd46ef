"""The serve section's checks and allowed names (serve.*), run by automlops.checks before any work and by
`automlops serve` outside a project. Imports nothing of the server itself (FastAPI stays unloaded)."""

from __future__ import annotations

from automlops.config.schema import ServeConfig
from automlops.constraints import Constraints, Interval, Options, violations
from automlops.data.contract import UNKNOWN_CATEGORY_POLICIES

CONSTRAINTS: Constraints = {
    "unknown_categories": Options(UNKNOWN_CATEGORY_POLICIES),
    "workers": Interval(1, None),
    "max_rows": Interval(1, None),
    "max_body_mb": Interval(0, None, closed="neither", note="MiB"),
    "port": Interval(1, 65535, closed="both", note="(a TCP port)"),
    "inline_ms": Interval(0, None, note="ms (0: always score in a worker thread)"),
    "reload_interval": Interval(0, None, note="seconds (0: never reload)"),
    "prediction_log.max_rows_per_file": Interval(1, None),
    "prediction_log.queue_size": Interval(1, None),
}


def check_serve(serve: ServeConfig) -> list[str]:
    return violations("serve", serve, CONSTRAINTS)
