"""Typed hand-offs between stages: the records one stage writes as JSON and later stages read.

Each record is a frozen dataclass with `from_dict`/`to_dict` (and `read`/`write` for its file), so a
renamed key is a mypy error at every reader instead of a KeyError in serve. The JSON on disk is
unchanged: `to_dict` writes the keys in the order the stages always wrote them, keys a record does
not know (a newer writer's) are kept in `extra` and written back, and optional keys an older writer
left out read as their defaults. Checked with `mypy --strict` (pyproject.toml).

    PreparedMeta  data/prepared/meta.json: prepare writes it; search, evaluate, package and the gate read it
    SearchBest    artifacts/search/best.json: search writes it; evaluate and package read it
    Manifest      the bundle's manifest.json: package writes it, deploy re-seals it with the version;
                  gate, deploy, predict, serve, monitor, the registry, the card, docker and mlflow read it
    Blessing      metrics/blessing.json (and blessing.json in a published version): the gate writes it,
                  deploy reads it (and may judge again), the model card shows it
    DeployRecord  metrics/deploy.json: the deploy stage writes it (in progress, then its outcome);
                  `automlops run` prints it, monitor's stage depends on it
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Blessing",
    "BlessingSummary",
    "CandidateRef",
    "ChampionRef",
    "DeployRecord",
    "Lineage",
    "Manifest",
    "ManifestMetrics",
    "ModelInfo",
    "PreparedMeta",
    "Refit",
    "SearchBest",
    "TrainingRows",
]


def _extra(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The keys of `data` a record does not declare, in their order: written back unchanged."""
    return {key: value for key, value in data.items() if key not in known}


ENSEMBLE = "ensemble"  # the family of a greedy blend of trials (search.ensemble_size); params.members lists them


@dataclass(frozen=True)
class PreparedMeta:
    """data/prepared/meta.json: what prepare found (automlops.data.prepare) and every later stage uses."""

    target: str
    task: str  # binary, multiclass or regression
    features: list[str]  # the model's input columns, in order
    contract: list[dict[str, Any]]  # automlops.data.contract.ColumnSpec as dicts (contract_from_dicts)
    data_hash: str
    source: str  # the data source, described for people
    rows: dict[str, int]  # split -> rows
    classes: list[Any] = field(default_factory=list)  # sorted; empty for regression
    positive_class: Any = None  # binary: what f1, pr_auc, brier and the threshold are about; else None
    split_columns: list[str] = field(default_factory=list)  # kept for splitting only, never given to the model
    schema: str | None = None  # the curated schema the contract follows; None: inferred only
    dropped_columns: list[dict[str, Any]] = field(
        default_factory=list
    )  # [{column, reason}]: predict and serve ignore them
    data_warnings: list[str] = field(default_factory=list)  # every column warning prepare logged
    config: dict[str, Any] | None = (
        None  # the data config (url masked), added by the prepare stage as it writes the file
    )
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = (
        "target",
        "task",
        "classes",
        "positive_class",
        "features",
        "split_columns",
        "contract",
        "data_hash",
        "source",
        "rows",
        "schema",
        "dropped_columns",
        "data_warnings",
        "config",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreparedMeta:
        return cls(
            target=str(data.get("target")),
            task=str(data.get("task")),
            features=list(data.get("features") or []),
            contract=list(data.get("contract") or []),
            data_hash=str(data.get("data_hash")),
            source=str(data.get("source")),
            rows=dict(data.get("rows") or {}),
            classes=list(data.get("classes") or []),
            positive_class=data.get("positive_class"),
            split_columns=list(data.get("split_columns") or []),
            schema=data.get("schema"),
            dropped_columns=list(data.get("dropped_columns") or []),
            data_warnings=list(data.get("data_warnings") or []),
            config=data.get("config"),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "task": self.task,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "features": self.features,
            "split_columns": self.split_columns,
            "contract": self.contract,
            "data_hash": self.data_hash,
            "source": self.source,
            "rows": self.rows,
            "schema": self.schema,
            "dropped_columns": self.dropped_columns,
            "data_warnings": self.data_warnings,
        }
        if self.config is not None:
            data["config"] = self.config
        return {**data, **self.extra}

    @classmethod
    def read(cls, path: Path) -> PreparedMeta:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass(frozen=True)
class SearchBest:
    """artifacts/search/best.json: the search's winner, beside the fitted model it saved."""

    engine: str
    format: str  # how automlops.artifacts.load_model reads artifacts/search/model
    family: str
    params: dict[str, Any]
    metric: str  # the validation metric the search ranked by
    valid_score: float | None  # None: not finite (written as null)
    lineage: dict[str, Any] = field(default_factory=dict)  # the engine's (study name, trials, fit id ...)
    trained_on: list[str] | None = None  # the splits the winner was fit on; None: written before they were recorded
    config: dict[str, Any] = field(default_factory=dict)  # the search config (storage masked)
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("engine", "format", "family", "params", "metric", "valid_score", "lineage", "trained_on", "config")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchBest:
        trained_on = data.get("trained_on")
        return cls(
            engine=str(data.get("engine")),
            format=str(data.get("format")),
            family=str(data.get("family")),
            params=dict(data.get("params") or {}),
            metric=str(data.get("metric")),
            valid_score=data.get("valid_score"),
            lineage=dict(data.get("lineage") or {}),
            trained_on=None if trained_on is None else list(trained_on),
            config=dict(data.get("config") or {}),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "engine": self.engine,
            "format": self.format,
            "family": self.family,
            "params": self.params,
            "metric": self.metric,
            "valid_score": self.valid_score,
            "lineage": self.lineage,
        }
        if self.trained_on is not None:
            data["trained_on"] = self.trained_on
        return {**data, "config": self.config, **self.extra}

    @classmethod
    def read(cls, path: Path) -> SearchBest:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass(frozen=True)
class ModelInfo:
    """manifest["model"]: which engine fit which family, saved in which format, with which settings."""

    engine: str
    format: str  # how automlops.artifacts.load_model reads the model folder: sklearn or autogluon
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("engine", "format", "family", "params")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        return cls(
            engine=str(data.get("engine")),
            format=str(data.get("format")),
            family=str(data.get("family")),
            params=dict(data.get("params") or {}),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "format": self.format,
            "family": self.family,
            "params": self.params,
            **self.extra,
        }


@dataclass(frozen=True)
class ManifestMetrics:
    """manifest["metrics"]: the search's validation score and evaluate's test metrics."""

    validation: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    # which model `test` measured when it is not the one in the bundle (deploy.refit_all_rows); not written when None
    estimate_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("validation", "test", "estimate_from")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ManifestMetrics:
        data = data or {}
        return cls(
            validation=dict(data.get("validation") or {}),
            test=dict(data.get("test") or {}),
            estimate_from=data.get("estimate_from"),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"validation": self.validation, "test": self.test}
        if self.estimate_from is not None:
            data["estimate_from"] = self.estimate_from
        return {**data, **self.extra}


@dataclass(frozen=True)
class Lineage:
    """manifest["lineage"]: where the model came from (data, code, libraries, search)."""

    data_hash: str | None = None
    data_source: Any = None
    rows: dict[str, int] = field(default_factory=dict)  # split -> rows
    git_commit: str | None = None  # None: not in a git repository
    python: str | None = None
    packages: dict[str, str] = field(default_factory=dict)  # library -> version that trained the model
    search: dict[str, Any] = field(default_factory=dict)  # the engine's lineage (study name, trials, fit id ...)
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("data_hash", "data_source", "rows", "git_commit", "python", "packages", "search")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Lineage:
        data = data or {}
        return cls(
            data_hash=data.get("data_hash"),
            data_source=data.get("data_source"),
            rows=dict(data.get("rows") or {}),
            git_commit=data.get("git_commit"),
            python=data.get("python"),
            packages=dict(data.get("packages") or {}),
            search=dict(data.get("search") or {}),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_hash": self.data_hash,
            "data_source": self.data_source,
            "rows": self.rows,
            "git_commit": self.git_commit,
            "python": self.python,
            "packages": self.packages,
            "search": self.search,
            **self.extra,
        }


@dataclass(frozen=True)
class TrainingRows:
    """manifest["training_rows"]: the file holding the hashes of every row the model was fit on."""

    file: str
    rows: int
    distinct: int | None = None
    splits: list[str] = field(default_factory=list)
    hash: str | None = None  # automlops.data.row_hashes.HASH_METHOD
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("file", "rows", "distinct", "splits", "hash")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingRows:
        return cls(
            file=str(data.get("file")),
            rows=int(data.get("rows") or 0),
            distinct=data.get("distinct"),
            splits=list(data.get("splits") or []),
            hash=data.get("hash"),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "distinct": self.distinct,
            "splits": self.splits,
            "hash": self.hash,
            **self.extra,
        }


@dataclass(frozen=True)
class Refit:
    """manifest["refit"] (and metrics/deploy.json's "refit"): the blessed candidate refit on every labelled
    row by the deploy stage (deploy.refit_all_rows). The gate judged the candidate; this names it."""

    rows: int  # the rows the served model was fit on
    splits: list[str]  # the splits they came from
    candidate_sha256: str  # the blessed candidate's manifest.json sha256 (blessing.json's candidate.sha256)
    candidate_rows: int | None = None  # the rows the candidate (whose test metrics are recorded) was fit on
    seconds: float | None = None  # the refit's wall time
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("rows", "splits", "candidate_sha256", "candidate_rows", "seconds")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Refit:
        return cls(
            rows=int(data.get("rows") or 0),
            splits=list(data.get("splits") or []),
            candidate_sha256=str(data.get("candidate_sha256")),
            candidate_rows=data.get("candidate_rows"),
            seconds=data.get("seconds"),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "splits": self.splits,
            "candidate_sha256": self.candidate_sha256,
            "candidate_rows": self.candidate_rows,
            "seconds": self.seconds,
            **self.extra,
        }


@dataclass(frozen=True)
class BlessingSummary:
    """manifest["blessing"]: the gate's verdict, added when deploy publishes the version."""

    passed: bool
    checks: list[str] = field(default_factory=list)  # each check's one-line summary
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("passed", "checks")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlessingSummary:
        return cls(passed=bool(data.get("passed")), checks=list(data.get("checks") or []), extra=_extra(data, cls.KEYS))

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks, **self.extra}


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest.json (automlops.bundle reads it, automlops.deploy.package writes it): what the model is, how to check and trace it."""

    format_version: int
    name: str
    task: str  # binary, multiclass or regression
    target: str
    input_schema: list[dict[str, Any]]  # automlops.data.contract.ColumnSpec as dicts (contract_from_dicts)
    model: ModelInfo
    version: int | None = None  # set when the local registry takes the bundle in
    created_at: str | None = None
    classes: list[Any] | None = None
    positive_class: Any = None  # binary: what f1, pr_auc, brier and decision_threshold are about
    decision_threshold: float | None = None
    dropped_columns: list[dict[str, Any]] | None = None  # [{column, reason}]; None: packaged before they were recorded
    metrics: ManifestMetrics = field(default_factory=ManifestMetrics)
    lineage: Lineage = field(default_factory=Lineage)
    config: dict[str, Any] = field(default_factory=dict)  # the data, search and deploy config that made it
    training_rows: TrainingRows | None = None  # None: packaged before automlops recorded them
    files: dict[str, str] = field(default_factory=dict)  # every other file's sha256, written by seal
    blessing: BlessingSummary | None = None  # only in a published version (not written when None)
    refit: Refit | None = None  # the model was refit on every labelled row after the gate (not written when None)
    extra: dict[str, Any] = field(default_factory=dict)  # keys this automlops does not know, kept as they were

    KEYS = (
        "format_version",
        "name",
        "version",
        "created_at",
        "task",
        "target",
        "classes",
        "positive_class",
        "decision_threshold",
        "input_schema",
        "dropped_columns",
        "metrics",
        "model",
        "lineage",
        "config",
        "training_rows",
        "files",
        "blessing",
        "refit",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        training_rows = data.get("training_rows")
        blessing = data.get("blessing")
        refit = data.get("refit")
        return cls(
            format_version=int(data.get("format_version") or 0),  # read_manifest checks it first
            name=str(data.get("name")),
            task=str(data.get("task")),
            target=str(data.get("target")),
            input_schema=list(data.get("input_schema") or []),
            model=ModelInfo.from_dict(data.get("model") or {}),
            version=data.get("version"),
            created_at=data.get("created_at"),
            classes=data.get("classes"),
            positive_class=data.get("positive_class"),
            decision_threshold=data.get("decision_threshold"),
            dropped_columns=data.get("dropped_columns"),
            metrics=ManifestMetrics.from_dict(data.get("metrics")),
            lineage=Lineage.from_dict(data.get("lineage")),
            config=dict(data.get("config") or {}),
            training_rows=TrainingRows.from_dict(training_rows) if training_rows else None,
            files=dict(data.get("files") or {}),
            blessing=BlessingSummary.from_dict(blessing) if blessing else None,
            refit=Refit.from_dict(refit) if refit else None,
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written to manifest.json, keys in the order package has always written them."""
        data: dict[str, Any] = {
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at,
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "decision_threshold": self.decision_threshold,
            "input_schema": self.input_schema,
            "dropped_columns": self.dropped_columns,
            "metrics": self.metrics.to_dict(),
            "model": self.model.to_dict(),
            "lineage": self.lineage.to_dict(),
            "config": self.config,
            "training_rows": None if self.training_rows is None else self.training_rows.to_dict(),
            "files": self.files,
        }
        if self.blessing is not None:
            data["blessing"] = self.blessing.to_dict()
        if self.refit is not None:
            data["refit"] = self.refit.to_dict()
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls.from_json(path.read_bytes())


@dataclass(frozen=True)
class ChampionRef:
    """blessing["champion"]: the champion the gate judged the candidate against."""

    version: int | None
    scored_on: str | None = None  # how the two were compared, as a sentence
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("version", "scored_on")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChampionRef:
        return cls(version=data.get("version"), scored_on=data.get("scored_on"), extra=_extra(data, cls.KEYS))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "scored_on": self.scored_on, **self.extra}


@dataclass(frozen=True)
class CandidateRef:
    """blessing["candidate"]: which bundle the gate judged, so deploy publishes only that one."""

    sha256: str | None  # of the candidate's manifest.json (which lists every file's sha256)
    content_digest: str | None = None  # automlops.deploy.package.content_digest
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("sha256", "content_digest")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateRef:
        return cls(sha256=data.get("sha256"), content_digest=data.get("content_digest"), extra=_extra(data, cls.KEYS))

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "content_digest": self.content_digest, **self.extra}


@dataclass(frozen=True)
class Blessing:
    """The gate's verdict (automlops.gate.blessing), with which candidate it judged (the gate stage adds it)."""

    passed: bool
    checks: list[dict[str, Any]]  # each automlops.gate.CheckResult as a dict, with its one-line summary
    infra: dict[str, Any] | None = None  # the serving check's record; None: gate.infra.enabled is false
    champion: ChampionRef | None = None  # None: no champion (the first version)
    comparison: dict[str, Any] | None = None  # automlops.gate.Comparison as a dict; None: not compared
    candidate: CandidateRef | None = None  # added by the gate stage; not written when None
    rechecked: bool | None = None  # the deploy stage judged it again against a newer champion; not written when None
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("passed", "checks", "infra", "champion", "comparison", "candidate", "rechecked")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Blessing:
        champion, candidate = data.get("champion"), data.get("candidate")
        return cls(
            passed=bool(data.get("passed")),
            checks=list(data.get("checks") or []),
            infra=data.get("infra"),
            champion=ChampionRef.from_dict(champion) if champion else None,
            comparison=data.get("comparison"),
            candidate=CandidateRef.from_dict(candidate) if candidate else None,
            rechecked=data.get("rechecked"),
            extra=_extra(data, cls.KEYS),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "passed": self.passed,
            "checks": self.checks,
            "infra": self.infra,
            "champion": None if self.champion is None else self.champion.to_dict(),
            "comparison": self.comparison,
        }
        if self.candidate is not None:
            data["candidate"] = self.candidate.to_dict()
        if self.rechecked is not None:
            data["rechecked"] = self.rechecked
        return {**data, **self.extra}

    @classmethod
    def read(cls, path: Path) -> Blessing:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass(frozen=True)
class DeployRecord:
    """What the deploy stage did: published (a new version, with every target's record), not published
    (with the reason), unchanged (the champion has the same content), or still in progress / failed."""

    published: bool | None  # None: in progress or failed (see state)
    state: str | None = None  # "in progress" while deploying, "failed" after an error; None once finished
    reason: str | None = None  # why nothing was published
    version: int | None = None  # the version published, or the champion an unchanged candidate equals
    alias: str | None = None
    targets: dict[str, dict[str, Any]] | None = None  # each deploy target's own record
    compared_with: int | None = None  # the champion version the candidate was judged against
    rechecked: bool | None = None  # judged again at deploy time against a newer champion
    unchanged: bool | None = None  # the candidate's content equals the champion's: no new version
    candidate_sha256: str | None = None  # the blessed candidate's manifest.json sha256
    refit: dict[str, Any] | None = None  # deploy.refit_all_rows: what was refit on which rows (records.Refit as a dict)
    error: str | None = None  # a failed deploy's error
    started_at: str | None = None  # in progress: when
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = (
        "published",
        "state",
        "reason",
        "version",
        "alias",
        "targets",
        "compared_with",
        "rechecked",
        "unchanged",
        "candidate_sha256",
        "refit",
        "error",
        "started_at",
        "finished_at",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployRecord:
        return cls(**{key: data.get(key) for key in cls.KEYS}, extra=_extra(data, cls.KEYS))

    def to_dict(self) -> dict[str, Any]:
        """Only the keys set (the file says what happened, not every field it could hold)."""
        data = {key: getattr(self, key) for key in self.KEYS}
        return {key: value for key, value in data.items() if value is not None or key == "published"} | self.extra

    @classmethod
    def read(cls, path: Path) -> DeployRecord:
        return cls.from_dict(json.loads(path.read_text()))
