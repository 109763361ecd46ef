"""`automlops monitor` and the `monitor` stage: read the batch, build the report, write it, and apply
the retrain policy. The I/O edge around the pure report."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from automlops import children
from automlops.bundle import load_bundle
from automlops.config.schema import MonitorConfig
from automlops.errors import DriftDetected
from automlops.io import atomic_file, write_json_atomic, write_text_atomic
from automlops.monitor.batches import join_labels, read_batch
from automlops.monitor.html import render_html
from automlops.monitor.report import bundle_statistics, monitor_batch, summary
from automlops.monitor.verdict import Verdict, nothing_to_judge
from automlops.signing import NO_KEYS, TrustedKeys
from automlops.stages import STATE_DIR

log = logging.getLogger(__name__)

REPORT_JSON, REPORT_HTML = "monitor.json", "monitor.html"
RETRAIN_DIR = STATE_DIR / "retrain"


def monitor(
    model: str,
    data: Path,
    cfg: MonitorConfig,
    labels: Path | None = None,
    overrides: tuple[str, ...] = (),
    keys: TrustedKeys = NO_KEYS,
) -> dict[str, Any]:
    """The report for one batch, written to cfg.out; a folder with no batch yet gives a short report.
    `overrides`: the command line's, which a retrain run composes conf/ with again (monitor.* left out).
    `keys`: deploy.signing.public_keys, which the model must be signed by."""
    bundle = load_bundle(model, keys=keys)
    bundle_statistics(bundle)  # an old bundle is refused before the batch is read
    batch = read_batch(data, contract=bundle.contract)  # typed as `automlops predict` reads files
    out = Path(cfg.out)
    if batch is None:
        return write_nothing_to_judge(
            out, str(data), f"no batch in {data} yet: drop .csv, .parquet, .json or prediction-log files there", cfg
        )
    labels = labels or (Path(cfg.labels) if cfg.labels else None)
    if labels is not None:
        batch = join_labels(batch, labels, cfg.id_column, bundle.manifest.target)
    report = monitor_batch(bundle, batch, cfg, str(data))
    report["retrain"] = retrain(
        report, batch, cfg, bundle.manifest.name, [o for o in overrides if not o.startswith("monitor.")]
    )
    write_text_atomic(out / REPORT_HTML, render_html(report))
    write_json_atomic(out / REPORT_JSON, summary(report))  # last: its presence means the report is complete
    return report


def write_nothing_to_judge(out: Path, source: str, note: str, cfg: MonitorConfig) -> dict[str, Any]:
    """The short report for a run with nothing to judge (no batch, no model yet): it passes."""
    from automlops.monitor.report import summary

    report = {
        "batch": {"source": source, "rows": 0},
        "drift": False,
        "note": note,
        "verdict": nothing_to_judge(note, cfg),
    }
    write_json_atomic(out / REPORT_JSON, summary(report))
    return report


def check_drift(report: dict[str, Any], cfg: MonitorConfig) -> None:
    """Log the verdict's line; its exit code (4 on drift with monitor.fail_on_drift) ends the command."""
    verdict: Verdict = report["verdict"]
    if verdict.note is not None:
        log.info("monitor: %s", verdict.line())
        return
    text = f"monitor: {verdict.line()}; report: {Path(cfg.out) / REPORT_HTML}"
    if verdict.exit_code:
        raise DriftDetected(text)
    (log.warning if verdict.drift else log.info)("%s", text)


def retrain_due(report: dict[str, Any], when: str) -> bool:
    verdict: Verdict = report["verdict"]
    return {
        "never": False,
        "dataset_drift": verdict.dataset,
        "performance_drift": bool(verdict.performance),
        "any_drift": verdict.drift,
    }[when]


def retrain(report: dict[str, Any], batch: Any, cfg: MonitorConfig, name: str, overrides: list[str]) -> dict[str, Any]:
    """The retrain policy: on the declared drift, run the whole pipeline on the batch (it must carry
    labels) and let the gate decide whether the new model replaces the champion. The run composes
    conf/ with `overrides`, then points the data at the batch, then applies monitor.retrain.overrides."""
    if not retrain_due(report, cfg.retrain.when):
        return {"triggered": False, "when": cfg.retrain.when}
    target = report["model"]["target"]
    if target not in batch.columns or batch[target].isna().all():
        log.warning(
            "retrain: the batch has no labels ('%s'), so it cannot train a model; join them with --labels", target
        )
        return {"triggered": False, "when": cfg.retrain.when, "reason": f"the batch has no '{target}' labels"}
    data_file = RETRAIN_DIR / "batch.parquet"
    with atomic_file(data_file) as staging:
        batch[batch[target].notna()].to_parquet(staging, index=False)
    command = [
        sys.executable,
        "-m",
        "automlops",
        "run",
        *overrides,
        "data.source=parquet",
        f"data.path={data_file}",
        f"run.name={name}",
        *cfg.retrain.overrides,
    ]
    log.info("retrain: %s drift found, running %s", cfg.retrain.when, " ".join(command[2:]))
    finished = children.run(command, check=False)
    return {"triggered": True, "when": cfg.retrain.when, "command": command[2:], "exit_code": finished.returncode}
