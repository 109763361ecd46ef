"""The model a server answers with. Loaded and warmed before the port opens; when the server was
given an alias (models/<name> or models/<name>@<alias>) it follows it: a promotion or rollback
loads the new version in the background and swaps it in with one assignment, so requests in flight
finish on the version they started with, and a version that fails to load leaves the old one serving."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from automlops.bundle import EXAMPLE_FILE, Bundle, load_bundle
from automlops.data.contract import enforce_contract
from automlops.model_registry import ALIASES, resolve
from automlops.scoring import predict_frame
from automlops.serve.direct import direct_pipeline
from automlops.signing import NO_KEYS, TrustedKeys
from automlops.tables import records_from_json

log = logging.getLogger("automlops.serve")


def follows_alias(ref: str) -> bool:
    """True when `ref` names a registered model by alias (not a fixed version or a bundle folder)."""
    base, _, alias = ref.rpartition("@") if "@" in Path(ref).name else (ref, "", "")
    return (Path(base) / ALIASES).is_file() and not alias.removeprefix("v").isdigit()


def load_warm(ref: str | Path, keys: TrustedKeys = NO_KEYS) -> Bundle:
    """Load (signature with `keys`, and sha256, checked) and predict the bundle's own input example once, so the first real
    request does not pay for lazy initialisation. A scikit-learn pipeline is then served step by
    step (serve/direct.py) when that answers the example exactly as the pipeline does."""
    bundle = load_bundle(ref, keys=keys)
    _one_thread_per_request(bundle.model)
    example = bundle.path / EXAMPLE_FILE
    if not example.is_file():
        return bundle
    frame = records_from_json(json.loads(example.read_text()))
    direct = direct_pipeline(bundle.model, enforce_contract(frame, bundle.contract, "model"), bundle.contract)
    if direct is not None:
        bundle = replace(bundle, model=direct)
    predict_frame(bundle, frame)
    return bundle


def _one_thread_per_request(model: object) -> None:
    """A server runs requests concurrently, so each prediction gets one thread: with two, LightGBM's
    thread start-up made a one-row prediction three times slower. Predictions do not change."""
    for _, step in getattr(model, "steps", []):
        if "n_jobs" in getattr(step, "get_params", dict)():
            step.set_params(n_jobs=1)


class ModelHolder:
    def __init__(
        self,
        ref: str,
        reload_interval: float,
        on_reload: Callable[[str, Bundle | None], None] | None = None,
        keys: TrustedKeys = NO_KEYS,
    ) -> None:
        self.ref = ref
        self.keys = keys  # deploy.signing.public_keys: every version the alias moves to must be signed by one
        self.bundle = load_warm(ref, keys=keys)  # the one shared reference; replaced, never mutated
        self._interval = reload_interval if follows_alias(ref) else 0.0
        self._on_reload = on_reload or (lambda result, bundle: None)
        self._failed: Path | None = None  # a version that failed to load is not retried until the alias moves again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def follows(self) -> bool:
        return self._interval > 0

    def start(self) -> None:
        if self.follows and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="automlops-reload", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check_now(self) -> None:
        """Load the version the alias names now, if it is not the one served."""
        try:
            target = resolve(self.ref)
        except Exception as error:  # an alias file mid-edit or removed: keep serving, say so once
            if self._failed != Path("<unresolvable>"):
                log.warning("reload: cannot resolve %s (%s); still serving %s", self.ref, error, self.bundle.path)
                self._failed = Path("<unresolvable>")
            return
        if target.resolve() == self.bundle.path.resolve() or target == self._failed:
            return
        try:
            fresh = load_warm(target, keys=self.keys)
        except Exception as error:
            self._failed = target
            log.error("reload: %s failed to load (%s); still serving %s", target, error, self.bundle.path)
            self._on_reload("failed", None)
            return
        old, self.bundle, self._failed = self.bundle, fresh, None
        log.info("reload: now serving %s v%s (was v%s)", self.ref, fresh.manifest.version, old.manifest.version)
        self._on_reload("ok", fresh)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_now()
