"""The ordered stages, each reading its inputs from files and writing its outputs atomically.

`dvc repro` runs them one by one through `automlops stage <name>`; `automlops run` runs them all in
one process. Both call these same functions with the same paths, so both give the same model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from automlops.config.resolvers import mask_env
from automlops.config.schema import Config
from automlops.data.contract import ColumnSpec, contract_from_dicts, to_model_frame
from automlops.errors import AutomlopsError, ConfigError, DeployError, GateError
from automlops.io import atomic_dir, write_json_atomic, write_text_atomic
from automlops.monitor.stats import prediction_statistics, training_statistics
from automlops.records import (
    Blessing,
    BlessingSummary,
    CandidateRef,
    DeployRecord,
    Manifest,
    PreparedMeta,
    Refit,
    SearchBest,
)
from automlops.search.auto import resolve_auto
from automlops.search.engines import SearchData
from automlops.stages import (
    ANSWER_STATISTICS,
    BLESSING,
    CANDIDATE_DIR,
    DEPLOY_RECORD,
    LEADERBOARD,
    PLOTS_DIR,
    PREPARED_DIR,
    SEARCH_DIR,
    SEARCH_METRICS,
    SLICE_METRICS,
    STAGES,
    STATE_DIR,
    TEST_METRICS,
    VALIDATION_REPORT,
)

if TYPE_CHECKING:
    from automlops.bundle import Bundle
    from automlops.gate import CheckResult, Comparison
    from automlops.signing import Signer, TrustedKeys

log = logging.getLogger(__name__)

LEADERBOARD_HISTORY = STATE_DIR / "leaderboard.csv"  # every candidate of every run, across engines
RELEASE_DIR = STATE_DIR / "release"  # the blessed bundle with its version, card and blessing, as published
REFIT_DIR = STATE_DIR / "refit"  # deploy.refit_all_rows: deploy's refit of the blessed candidate, which it publishes
STAGE_SECONDS = (
    STATE_DIR / "stage_seconds.json"
)  # written by `automlops run`: wall seconds per stage (benchmarks read it)
RUN_LOCK = STATE_DIR / "run.lock"  # held by `automlops run` and `automlops stage`: one run at a time per project
SPLITS = ("train", "valid", "test")
SCHEMA_FILE = "schema.yaml"  # prepare's inferred schema, under data/prepared/: copy it to conf/schema/ to curate it
STATISTICS_FILE = "statistics.json"  # prepare's per-column statistics of train + valid: the drift reference


@contextmanager
def workspace_lock() -> Iterator[None]:
    """Runs in one project hand their results on through the same files (data/prepared/, artifacts/,
    metrics/): two at once would mix them (one run's evaluate scoring the other's model, its package
    sealing the other's metrics). So `automlops run` and `automlops stage` take turns; a second run
    waits here and says so. Runs in other checkouts that share deploy.dir meet at the registry lock."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            log.warning(
                "waiting for another automlops run in this project (%s) to finish: runs in one project share "
                "data/prepared/, artifacts/ and metrics/, so they take turns",
                handle.read().strip() or "pid unknown",
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def run_prepare(config: Config) -> None:
    from automlops.data.prepare import prepare
    from automlops.data.quality_gate import BatchRejected
    from automlops.data.schema import schema_to_yaml

    try:
        prepared = prepare(config.data, config.run.seed)
    except BatchRejected as failed:  # the report is written; data/prepared/ stays as the last good run left it
        write_json_atomic(VALIDATION_REPORT, failed.report)
        raise
    write_json_atomic(VALIDATION_REPORT, prepared.validation)
    data_config = asdict(config.data)
    data_config["url"] = mask_env(data_config["url"]) if data_config["url"] else None
    prepared.meta = replace(prepared.meta, config=data_config)
    with atomic_dir(PREPARED_DIR) as staging:
        for split in SPLITS:
            getattr(prepared, split).to_parquet(staging / f"{split}.parquet", index=False)
        write_json_atomic(staging / "meta.json", prepared.meta.to_dict())
        if prepared.schema is not None:  # inferred, for an analyst to curate (see its header)
            write_text_atomic(staging / SCHEMA_FILE, schema_to_yaml(prepared.schema, prepared.meta.source))
        write_json_atomic(
            staging / STATISTICS_FILE, training_statistics(pd.concat([prepared.train, prepared.valid]), prepared.meta)
        )
    log.info("prepared %s: %s rows, task %s", prepared.meta.source, prepared.meta.rows, prepared.meta.task)


def load_prepared(
    splits: tuple[str, ...] = SPLITS, folder: Path = PREPARED_DIR
) -> tuple[dict[str, pd.DataFrame], PreparedMeta]:
    """The prepared splits with their feature columns in the model-input form (to_model_frame), the
    form predict and serve hand the model: Parquet gives missing text back as None, which scikit-learn's
    imputers and encoders treat otherwise than the NaN of a served row, so a model trained and
    evaluated on the files as read would answer differently once served."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise AutomlopsError(f"{folder}/ has no prepared data; run `automlops stage prepare` (or `dvc repro`) first")
    meta = PreparedMeta.read(meta_file)
    contract = contract_from_dicts(meta.contract)
    return {split: _typed_features(pd.read_parquet(folder / f"{split}.parquet"), contract) for split in splits}, meta


def _typed_features(split: pd.DataFrame, contract: list[ColumnSpec]) -> pd.DataFrame:
    """`split` with its contract columns as to_model_frame types them; the target and split columns as read."""
    typed = to_model_frame(split, contract)
    rest = split.drop(columns=list(typed.columns))
    return pd.concat([typed, rest], axis=1)[list(split.columns)]


def search_data(config: Config) -> SearchData:
    """The prepared splits as a search sees them (also what an `automlops worker` loads)."""
    frames, meta = load_prepared(("train", "valid"))
    features, target, split = meta.features, meta.target, config.data.split
    fold_column = {"group": split.group_column, "time": split.time_column}.get(split.strategy)
    both = (
        pd.concat([frames["train"][[fold_column]], frames["valid"][[fold_column]]], ignore_index=True)
        if fold_column
        else None
    )
    return SearchData(
        x_train=frames["train"][features],
        y_train=frames["train"][target],
        x_valid=frames["valid"][features],
        y_valid=frames["valid"][target],
        contract=contract_from_dicts(meta.contract),
        task=meta.task,
        positive_class=meta.positive_class,
        data_hash=f"{meta.data_hash}/split:{_split_fingerprint(frames)}",  # studies and leaderboards never mix splits
        split_strategy=split.strategy,
        groups=both[fold_column] if split.strategy == "group" and both is not None else None,
        time=both[fold_column] if split.strategy == "time" and both is not None else None,
    )


def _split_fingerprint(frames: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256(str(len(frames["train"])).encode())
    digest.update(pd.util.hash_pandas_object(frames["valid"], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:12]


def run_search(config: Config) -> None:
    from automlops.artifacts import save_model
    from automlops.search.engines import ENGINES
    from automlops.search.leaderboard import print_leaderboard, update_leaderboard

    config = resolve_auto(config, log_choice=True)
    data = search_data(config)
    result = ENGINES.get(config.search.engine).run(config.search, data, config.run.seed, STATE_DIR)
    winner = result.winner
    with atomic_dir(SEARCH_DIR) as staging:
        save_model(result.model, result.model_format, staging / "model")
        write_json_atomic(
            staging / "best.json",
            SearchBest(
                engine=winner.engine,
                format=result.model_format,
                family=winner.family,
                params=winner.params,
                metric=result.metric,
                valid_score=winner.score,
                lineage=result.lineage,
                trained_on=list(result.trained_on),
                config={**asdict(config.search), "storage": mask_env(config.search.storage or "") or None},
            ).to_dict(),
        )
    table = update_leaderboard(LEADERBOARD_HISTORY, result.candidates, winner, result.metric, data.data_hash)
    write_text_atomic(LEADERBOARD, table.to_csv(index=False))
    write_json_atomic(
        SEARCH_METRICS,
        {
            "best_valid_score": winner.score,
            "metric": result.metric,
            "engine": winner.engine,
            "candidates": len(result.candidates),
            "trials": sum(c.state in ("COMPLETE", "FAIL", "PRUNED") for c in result.candidates),
        },
    )
    print_leaderboard(table)


def run_evaluate(config: Config) -> None:
    from automlops.artifacts import load_model
    from automlops.evaluate.evaluation import evaluate
    from automlops.evaluate.slices import check_slice_columns

    frames, meta = load_prepared(("test",))
    test = frames["test"]
    check_slice_columns(config.evaluate.slices, [str(c) for c in test.columns])  # before loading the model
    if config.evaluate.threshold is not None and meta.task != "binary":
        log.warning(
            "evaluate.threshold=%s ignored: it applies to binary tasks, this one is %s",
            config.evaluate.threshold,
            meta.task,
        )
    model = load_model(SearchBest.read(SEARCH_DIR / "best.json").format, SEARCH_DIR / "model")
    result = evaluate(
        model, test, meta.features, meta.target, meta.task, config.evaluate, config.run.seed, meta.positive_class
    )
    with atomic_dir(PLOTS_DIR) as staging:
        for name, table in result.plots.items():
            table.to_csv(staging / name, index=False)
    write_json_atomic(SLICE_METRICS, result.slices)
    write_json_atomic(ANSWER_STATISTICS, prediction_statistics(result.answers, meta.task))
    write_json_atomic(TEST_METRICS, result.metrics)
    log.info("test metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))


def run_package(config: Config) -> Path:
    """The candidate bundle, complete and sealed (and signed, with a deploy.signing key), waiting for the gate."""
    from automlops.deploy.package import PackageInput, write_bundle
    from automlops.signing import check_signing

    signing = check_signing(config.deploy.signing)  # before any work: a key problem is a one-line config error

    frames, meta = load_prepared()
    example = frames["test"][meta.features].head(config.deploy.example_rows)
    threshold = config.evaluate.threshold if meta.task == "binary" else None
    best = SearchBest.read(SEARCH_DIR / "best.json")
    trained_on = tuple(
        best.trained_on if best.trained_on is not None else ("train", "valid")
    )  # a search from before the record: all it may have seen
    statistics = json.loads((PREPARED_DIR / STATISTICS_FILE).read_text())
    statistics["prediction"] = json.loads(ANSWER_STATISTICS.read_text())  # evaluate's, so the model is not loaded again
    inputs = PackageInput(
        name=config.run.name,
        model_dir=SEARCH_DIR / "model",
        prepared=meta,
        search=best,
        metrics=json.loads(TEST_METRICS.read_text()),
        example=example,
        decision_threshold=threshold,
        statistics=statistics,
        training_rows=_training_rows(frames, meta, trained_on),
        trained_on=trained_on,
    )
    path = write_bundle(inputs, config.deploy, CANDIDATE_DIR, signing)
    log.info("packaged the candidate at %s%s", path, f" (signed by key {signing.key_id})" if signing else "")
    return path


def _training_rows(frames: dict[str, pd.DataFrame], meta: PreparedMeta, splits: tuple[str, ...]) -> np.ndarray:
    """The hashes of the rows the model was fit on, which the gate will never score it on."""
    from automlops.data.row_hashes import row_hashes

    rows = pd.concat([frames[split] for split in splits], ignore_index=True)
    return row_hashes(rows[meta.features], rows[meta.target], contract_from_dicts(meta.contract))


def run_gate(config: Config) -> dict[str, Any]:
    """Check the candidate against the gate's thresholds and the champion (both scored on the test
    rows neither trained on), then serve it for real; write the blessing, and stop a required gate
    that failed."""
    from automlops.bundle import verify_bundle
    from automlops.gate import check_metric_names, failure_summary
    from automlops.model_registry import champion
    from automlops.serving_check import check_serving
    from automlops.signing import trusted_keys

    keys = trusted_keys(config.deploy.signing)  # the candidate and the champion are both checked against them
    manifest = verify_bundle(CANDIDATE_DIR, keys=keys)
    check_metric_names(config.gate, manifest.task)
    registry = Path(config.deploy.dir) / config.run.name
    judged = judge(config, manifest, champion(registry, config.deploy.alias), "gate", keys)
    infra = check_serving(CANDIDATE_DIR, config.gate.infra, keys=keys) if config.gate.infra.enabled else None
    record = blessing_record(judged, infra, manifest)
    write_json_atomic(BLESSING, record.to_dict())
    for check in record.checks:
        log.info("gate: %s", check["summary"])
    if infra:
        log.info(
            "gate: infra validation %s (p95 %s ms)", "passed" if infra["passed"] else "FAILED", infra.get("p95_ms")
        )
    if not record.passed:
        champion_version = judged.champion_version
        kept = f"champion v{champion_version} stays" if champion_version else "nothing is published"
        message = f"gate: the candidate was not blessed ({failure_summary(record)}); {kept}; the candidate is in {CANDIDATE_DIR}/"
        if config.gate.required:
            raise GateError(message)
        log.warning("%s (gate.required=false: exit 0)", message)
    return record.to_dict()


class Judged(NamedTuple):
    checks: list[CheckResult]
    comparison: Comparison | None  # None: no champion, or no change checks
    champion_version: int | None


def judge(config: Config, manifest: Manifest, champion_dir: Path | None, stage: str, keys: TrustedKeys) -> Judged:
    """The gate's checks of the candidate (CANDIDATE_DIR, whose verified manifest is `manifest`) against
    the champion in `champion_dir` (None: no champion yet). The gate runs it, and the deploy stage runs
    it again under the registry lock when the champion changed in between: one function, one decision."""
    from automlops.bundle import load_bundle, read_manifest
    from automlops.gate import has_change_checks, run_checks

    comparison, champion_version = None, None
    if champion_dir is not None:
        champion_version = read_manifest(champion_dir).version
    if champion_dir is not None and has_change_checks(config.gate):
        comparison = _compare_with_champion(
            load_bundle(CANDIDATE_DIR, keys=keys), load_bundle(champion_dir, keys=keys), config
        )
        log.info(
            "%s: champion v%s comparison (%s): %s", stage, champion_version, comparison.basis, comparison.sentence()
        )
    return Judged(
        run_checks(config.gate, manifest.task, manifest.metrics.test, comparison), comparison, champion_version
    )


def blessing_record(judged: Judged, infra: dict[str, Any] | None, manifest: Manifest) -> Blessing:
    """The gate's record (automlops.gate.blessing) plus which candidate it judged: the sha256 of its
    manifest (which lists every file's sha256), so the deploy stage publishes only that bundle."""
    from automlops.bundle import MANIFEST
    from automlops.deploy.package import content_digest
    from automlops.gate import blessing
    from automlops.io import sha256_file

    record = blessing(judged.checks, infra, judged.champion_version, judged.comparison)
    return replace(
        record,
        candidate=CandidateRef(sha256=sha256_file(CANDIDATE_DIR / MANIFEST), content_digest=content_digest(manifest)),
        rechecked=False,
    )  # rechecked: the deploy stage judged it again against a newer champion


def _compare_with_champion(candidate: Bundle, champion_bundle: Bundle, config: Config) -> Comparison:
    """Both models' metrics on the test rows neither trained on (TFX scores the baseline on the same
    data, and a new split puts the champion's training rows in the test set); gate.incomparable decides
    when the champion cannot be scored here, gate.min_rows when too few rows are left."""
    from automlops.data.contract import enforce_contract
    from automlops.data.row_hashes import row_hashes
    from automlops.errors import InputError
    from automlops.gate import UNSEEN_ROWS, Comparison, incomparable, too_few_rows, unseen_rows

    frames, meta = load_prepared(("test",))
    test, target = frames["test"], frames["test"][meta.target]
    recorded = candidate.manifest.metrics.test, champion_bundle.manifest.metrics.test
    if champion_bundle.training_rows is None:
        return incomparable(
            config.gate.incomparable,
            "its bundle does not record which rows it trained on (packaged before automlops recorded them)",
            *recorded,
        )
    columns = [spec.name for spec in champion_bundle.contract]
    try:
        champion_x = enforce_contract(
            test.reindex(columns=[c for c in columns if c in test.columns]), champion_bundle.contract
        )
    except InputError as error:
        return incomparable(config.gate.incomparable, f"it cannot score this test split ({error})", *recorded)
    keep, rows = unseen_rows(
        row_hashes(test, target, champion_bundle.contract),
        champion_bundle.training_rows,
        row_hashes(test, target, candidate.contract),
        _trained_rows(candidate),
    )
    failed = too_few_rows(rows, config.gate.min_rows)
    if failed is not None and champion_bundle.manifest.refit is not None:  # it trained on every row it was given
        return incomparable(
            config.gate.incomparable,
            f"it was refit on every labelled row (deploy.refit_all_rows), so only {rows['used']} of {rows['test']} "
            f"test rows are unseen by both (gate.min_rows={config.gate.min_rows}); rows labelled since can score it",
            *recorded,
        )
    if failed is not None:
        return failed
    candidate_x = enforce_contract(test[[spec.name for spec in candidate.contract]], candidate.contract)
    positive = champion_bundle.manifest.positive_class
    if positive != meta.positive_class:  # each model is scored on its own positive class, as it was evaluated
        log.warning(
            "the champion's positive class is %r, the candidate's %r: f1, pr_auc and brier measure different classes",
            positive,
            meta.positive_class,
        )
    return Comparison(
        UNSEEN_ROWS,
        rows=rows,
        challenger=_metrics_on(candidate, candidate_x[keep], target[keep], meta.task),
        champion=_metrics_on(champion_bundle, champion_x[keep], target[keep], meta.task),
    )


def _trained_rows(bundle: Bundle) -> np.ndarray:
    """The candidate is packaged by this automlops, so it records its training rows."""
    if bundle.training_rows is None:
        raise AutomlopsError(f"{CANDIDATE_DIR}/ records no training rows; repackage it with `automlops stage package`")
    return bundle.training_rows


def _metrics_on(bundle: Bundle, x: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    from automlops.evaluate.metrics import test_metrics

    return test_metrics(bundle.model, x, y, task, bundle.manifest.decision_threshold, bundle.manifest.positive_class)


def run_deploy(config: Config) -> DeployRecord:
    """Publish the blessed candidate to every target in deploy.targets as the next version.

    One critical section under the model's registry lock, from the champion check to the last target:
    a champion that changed since the gate (another run published meanwhile) is judged against again,
    and a worse candidate is refused; a candidate with the champion's content digest publishes nothing.
    metrics/deploy.json says "in progress" until the final record replaces it, so a killed deploy
    never leaves it naming an older release."""
    from automlops.bundle import MANIFEST, read_manifest, verify_bundle
    from automlops.deploy.package import content_digest
    from automlops.io import sha256_file
    from automlops.model_registry import champion, locked
    from automlops.signing import check_signing, trusted_keys

    record = Blessing.read(BLESSING) if BLESSING.is_file() else None
    if record is None or not record.passed:
        skipped = DeployRecord(published=False, reason="not blessed by the gate" if record else "the gate has not run")
        write_json_atomic(DEPLOY_RECORD, skipped.to_dict())
        log.warning("deploy: nothing published (%s)", skipped.reason)
        return skipped
    write_json_atomic(DEPLOY_RECORD, DeployRecord(published=None, state="in progress", started_at=_now()).to_dict())
    try:
        signing = check_signing(config.deploy.signing)
        keys = trusted_keys(config.deploy.signing)
        manifest = verify_bundle(CANDIDATE_DIR, keys=keys)
        if (record.candidate.sha256 if record.candidate else None) != sha256_file(CANDIDATE_DIR / MANIFEST):
            raise DeployError(
                f"deploy: {CANDIDATE_DIR}/ is not the bundle the gate blessed (its {MANIFEST} does not match "
                f"candidate.sha256 in {BLESSING}); run the gate again: `automlops stage gate` or `dvc repro -s gate`"
            )
        served, source = manifest, CANDIDATE_DIR
        if config.deploy.refit_all_rows:  # before the registry lock: a refit takes as long as a fit
            served, source = (
                refit_candidate(config, manifest, sha256_file(CANDIDATE_DIR / MANIFEST), signing),
                REFIT_DIR,
            )
        registry = Path(config.deploy.dir) / config.run.name
        with locked(registry):
            current_dir = champion(registry, config.deploy.alias)
            current = read_manifest(current_dir).version if current_dir is not None else None
            if current_dir is not None and content_digest(read_manifest(current_dir)) == content_digest(served):
                return _finish_deploy(
                    DeployRecord(
                        published=False,
                        unchanged=True,
                        version=current,
                        alias=config.deploy.alias,
                        reason=f"the {'refit ' if served.refit else ''}candidate equals {config.deploy.alias} v{current} "
                        "(same content digest); no new version",
                        refit=served.refit.to_dict() if served.refit else None,
                    )
                )
            record = _recheck(config, record, manifest, current_dir, current, keys)  # the candidate, as the gate did
            if not record.passed:
                return _refuse(config, record, current)
            return _finish_deploy(_publish(config, record, served, source, registry, current, signing))
    except BaseException as error:
        if DeployRecord.read(DEPLOY_RECORD).state == "in progress":
            failed = DeployRecord(published=None, state="failed", error=str(error) or type(error).__name__)
            write_json_atomic(DEPLOY_RECORD, failed.to_dict())
        raise


def refit_candidate(config: Config, candidate: Manifest, candidate_sha256: str, signing: Signer | None) -> Manifest:
    """deploy.refit_all_rows: the blessed candidate's family and settings (search's best.json) fit on
    train+valid+test into REFIT_DIR, sealed; with gate.infra on, served for real like the candidate was."""
    from automlops.deploy.checks import refit_unsupported
    from automlops.deploy.refit import write_refit_bundle
    from automlops.search.engines import ENGINES, AllRows
    from automlops.serving_check import check_serving
    from automlops.signing import trusted_keys

    best = SearchBest.read(SEARCH_DIR / "best.json")
    refit = ENGINES.get(best.engine).refit_all
    if refit is None:
        raise ConfigError(refit_unsupported(best.engine))
    if (best.family, best.params) != (candidate.model.family, candidate.model.params):
        raise DeployError(
            f"deploy: {SEARCH_DIR}/best.json is not the search that made the blessed candidate ({best.family} vs "
            f"{candidate.model.family}); run package and the gate again: `dvc repro` or `automlops run`"
        )
    frames, meta = load_prepared()
    rows = pd.concat([frames[split] for split in SPLITS], ignore_index=True)
    started = time.perf_counter()
    model = refit(
        AllRows(best, rows[meta.features], rows[meta.target], contract_from_dicts(meta.contract), meta.task),
        config.run.seed,
    )
    record = Refit(
        rows=len(rows),
        splits=list(SPLITS),
        candidate_sha256=candidate_sha256,
        seconds=round(time.perf_counter() - started, 2),
    )
    manifest = write_refit_bundle(
        CANDIDATE_DIR, REFIT_DIR, model, _training_rows(frames, meta, SPLITS), record, signing
    )
    log.info("deploy: refit the blessed %s on all %d labelled rows in %.1f s", best.family, len(rows), record.seconds)
    if config.gate.infra.enabled:
        served = check_serving(REFIT_DIR, config.gate.infra, keys=trusted_keys(config.deploy.signing))
        if not served["passed"]:
            raise DeployError(
                f"deploy: the refit model failed the serving check ({served.get('error') or served}); nothing is "
                f"published, the champion stays; the refit bundle is in {REFIT_DIR}/"
            )
    return manifest


def _recheck(
    config: Config,
    record: Blessing,
    manifest: Manifest,
    current_dir: Path | None,
    current: int | None,
    keys: TrustedKeys,
) -> Blessing:
    """The blessing as it holds now: the gate's when the champion is the one it judged against,
    otherwise judged again against the current champion."""
    gated = record.champion.version if record.champion else None
    if current == gated:
        return record
    log.warning(
        "deploy: the champion is %s now, the gate judged against %s (published meanwhile): judging the candidate again",
        f"v{current}" if current else "none",
        f"v{gated}" if gated else "none",
    )
    return replace(
        blessing_record(judge(config, manifest, current_dir, "deploy", keys), record.infra, manifest), rechecked=True
    )


def _refuse(config: Config, record: Blessing, current: int | None) -> DeployRecord:
    """The rechecked candidate fails against the new champion: nothing is published, as at the gate."""
    from automlops.gate import failure_summary

    reason = (
        f"the champion changed to v{current} after the gate, and the candidate does not pass against it "
        f"({failure_summary(record)}); champion v{current} stays"
    )
    result = _finish_deploy(DeployRecord(published=False, reason=reason, rechecked=True, compared_with=current))
    if config.gate.required:
        raise GateError(f"deploy: {reason}; the candidate is in {CANDIDATE_DIR}/")
    log.warning("deploy: %s (gate.required=false: exit 0)", reason)
    return result


def _publish(
    config: Config,
    record: Blessing,
    manifest: Manifest,
    source: Path,
    registry: Path,
    current: int | None,
    signing: Signer | None,
) -> DeployRecord:
    """Under the registry lock: seal the release (the bundle in `source`, whose manifest is `manifest`: the
    candidate, or its refit) with its version, blessing and card; hand it to every target."""
    from automlops.deploy.card import write_model_card
    from automlops.deploy.package import seal
    from automlops.deploy.targets import TARGETS, Release
    from automlops.model_registry import next_version

    version = next_version(registry)
    slices = json.loads(SLICE_METRICS.read_text()) if SLICE_METRICS.is_file() else None
    with atomic_dir(RELEASE_DIR) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        write_json_atomic(staging / "blessing.json", record.to_dict())
        manifest = replace(
            manifest,
            version=version,
            blessing=BlessingSummary(passed=True, checks=[c["summary"] for c in record.checks]),
        )
        write_model_card(staging, manifest, record, slices, config.deploy.card)
        manifest = seal(staging, manifest, signing)  # the version and the card change the manifest: signed again
    release = Release(name=config.run.name, bundle=RELEASE_DIR, manifest=manifest, alias=config.deploy.alias)
    targets: dict[str, dict[str, Any]] = {}
    for name in config.deploy.targets:
        targets[name] = TARGETS.get(name)(release, config.deploy)
        log.info("deploy: %s -> %s", name, targets[name])
    return DeployRecord(
        published=True,
        version=version,
        alias=config.deploy.alias,
        targets=targets,
        compared_with=current,
        rechecked=record.rechecked,
        candidate_sha256=record.candidate.sha256 if record.candidate else None,
        refit=manifest.refit.to_dict() if manifest.refit else None,
    )


def _finish_deploy(result: DeployRecord) -> DeployRecord:
    result = replace(result, finished_at=_now())
    write_json_atomic(DEPLOY_RECORD, result.to_dict())
    if result.unchanged:
        log.info("deploy: %s", result.reason)
    return result


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_monitor(config: Config) -> dict[str, Any]:
    """The champion (deploy.dir/run.name@deploy.alias) against the batch in monitor.data; not part of
    `automlops run`, which trains: monitoring runs on its own schedule (`dvc repro monitor`)."""
    from automlops.model_registry import champion
    from automlops.monitor.runner import check_drift, monitor, write_nothing_to_judge
    from automlops.signing import trusted_keys

    registry = Path(config.deploy.dir) / config.run.name
    if champion(registry, config.deploy.alias) is None:  # e.g. the gate refused the first model: nothing is serving
        report = write_nothing_to_judge(
            Path(config.monitor.out),
            config.monitor.data,
            f"no model at {registry}@{config.deploy.alias} yet; nothing to monitor",
            config.monitor,
        )
    else:
        report = monitor(
            f"{registry}@{config.deploy.alias}",
            Path(config.monitor.data),
            config.monitor,
            keys=trusted_keys(config.deploy.signing),
        )
    check_drift(report, config.monitor)
    return report


def stage_function(name: str) -> Callable[[Config], Any]:
    """The function of the stage automlops.stages declares as `name` (every stage but check_conf has one)."""
    function: Callable[[Config], Any] = globals()[f"run_{name}"]
    return function


def run_all(config: Config) -> DeployRecord:
    """Every stage in order, one run at a time per project; returns the deploy record (what was published where)."""
    with workspace_lock():
        return _run_all(config)


def _run_all(config: Config) -> DeployRecord:
    from automlops.evaluate.slices import check_slice_columns
    from automlops.gate import check_metric_names
    from automlops.signing import check_signing

    seconds: dict[str, float] = {}

    def timed(name: str, stage: Callable[[Config], Any]) -> Any:
        started = time.perf_counter()
        result = stage(config)
        seconds[name] = round(time.perf_counter() - started, 2)
        return result

    timed("prepare", run_prepare)
    meta = load_prepared(())[1]
    check_metric_names(config.gate, meta.task)  # a misnamed gate metric or slice column fails before the search
    check_slice_columns(config.evaluate.slices, [*meta.features, meta.target, *meta.split_columns])
    check_signing(config.deploy.signing)  # a missing or untrusted signing key fails before the search, not at package
    for stage in STAGES:
        if stage.in_run and stage.name != "prepare":  # prepare ran first, then the checks above
            timed(stage.name, stage_function(stage.name))
    record = DeployRecord.read(DEPLOY_RECORD)  # the deploy stage's, the last
    write_json_atomic(STAGE_SECONDS, seconds)  # only for a run that finished: a failed one leaves .automlops/ as it was
    log.info("stage seconds: %s", ", ".join(f"{name} {s:.1f}" for name, s in seconds.items()))
    return record
