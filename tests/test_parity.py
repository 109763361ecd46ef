"""Training/serving parity: the model a run evaluated answers every row as `automlops predict` (CSV,
Parquet, JSON) and a real `automlops serve` (/predict, /invocations) answer it, for the Optuna engine
with each installed model family and for the AutoGluon engine; and the test metrics a bundle records
are the ones its predictions give.

Each model is trained once (one family, one trial; or a blend of trials, search.ensemble_size) on a CSV with the usual traps: blank cells in a
number column, in a text column and in a boolean column, whole numbers, unicode categories, and codes
that look like numbers ("007", "12"). Hypothesis then draws batches of rows from the bundle's input
contract (seen and unseen categories, missing values) and writes each batch as each path receives it:
missing as a blank CSV cell, JSON null or NaN, Python None, NaN or pd.NA; whole numbers as 3 or 3.0;
booleans as true, TRUE or True; text columns as object or string dtype. The reference is what
evaluate computed: the rows typed as prepare types them, written to and read back from the prepared
Parquet split (pipeline.load_prepared), and scored by the search stage's model with evaluate's call.
Probabilities must agree to 1e-9 and labels exactly.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import champion, cli, new_project, run_env
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_serve import running_server

from automlops.artifacts import load_model
from automlops.bundle import Bundle, load_bundle
from automlops.config.schema import MonitorConfig
from automlops.data.contract import CATEGORICAL, NUMERIC, ColumnSpec, to_model_frame
from automlops.evaluate.metrics import Predictions, predict, scores
from automlops.pipeline import load_prepared
from automlops.predict import predict_file
from automlops.scoring import predict_frame
from automlops.search.families import FAMILIES
from automlops.tables import NA_TOKENS

pytestmark = pytest.mark.slow

NAME, TARGET = "parity", "y"
DEFAULT_SPACE = ("lightgbm", "random_forest", "linear")  # conf/search/optuna.yaml
OPTIONAL = {"xgboost": "xgboost"}  # family -> the package it needs
INSTALLED = [f for f in FAMILIES.names() if f not in OPTIONAL or importlib.util.find_spec(OPTIONAL[f]) is not None]
MODELS = [*INSTALLED, "ensemble", "autogluon"]  # ensemble: a greedy blend of the default space's trials
COMMON = [
    "data=penguins_csv",
    "data.path=data/raw/parity.csv",
    f"data.target={TARGET}",
    "data.features.exclude=[]",
    f"run.name={NAME}",
    "gate.infra.enabled=false",
    "evaluate.plots=false",
    "search.progress=false",
]
PROCESS_EXAMPLES, SERVER_EXAMPLES, IN_PROCESS_EXAMPLES = 1, 12, 12  # hypothesis batches per path kind, per model
MAX_ROWS = 40  # rows per batch


def overrides(model: str) -> list[str]:
    """One family in the space and one trial (or AutoGluon with a small budget, or a blend of trials)."""
    if model == "autogluon":
        return ["search=autogluon", "search.timeout=20", "search.autogluon.hyperparameters={GBM: {}, LR: {}}"]
    if model == "ensemble":
        return ["search.n_trials=8", "search.validation.method=holdout", "search.ensemble_size=20"]
    space = [f"search.space.{other}=null" for other in DEFAULT_SPACE if other != model]
    added = [] if model in DEFAULT_SPACE else [f"+search.space.{model}={{}}"]
    return ["search.n_trials=1", "search.validation.method=holdout", *space, *added]


def training_table(rows: int = 500, seed: int = 0) -> pd.DataFrame:
    """The traps of a real CSV, with a target that depends on every column (missing region included)."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "Zürich", "東京", "São Paulo"], rows).astype(object)
    region[rng.random(rows) < 0.25] = None
    flag = rng.random(rows) < 0.5
    flag_column = np.where(rng.random(rows) < 0.1, None, flag).astype(object)
    x1 = np.round(rng.normal(size=rows), 4)
    x1[rng.random(rows) < 0.1] = np.nan
    count = rng.integers(0, 10, rows)
    code = rng.choice(["7", "12", "007", "x"], rows)
    logit = (
        np.nan_to_num(x1)
        + 1.5 * pd.isna(region)
        + 0.8 * flag
        + 0.2 * count
        - 1.5 * (code == "007")
        + rng.normal(scale=0.8, size=rows)
        - 1.0
    )
    return pd.DataFrame(
        {
            "x1": x1,
            "count": count,
            "flag": flag_column,
            "region": region,
            "code": code,
            TARGET: np.where(logit > 0, "churned", "stayed"),
        }
    )  # text labels, which every family takes


@dataclass
class Trained:
    """One trained model: its project, its bundle, the model its evaluate stage scored, and a server."""

    name: str
    root: Path
    bundle: Bundle
    evaluated: Any  # artifacts/search/model, loaded as run_evaluate loads it
    meta: dict[str, Any]  # data/prepared/meta.json
    scratch: Path  # files the tests write
    client: httpx.Client

    @property
    def contract(self) -> list[ColumnSpec]:
        return self.bundle.contract

    @property
    def proba_columns(self) -> list[str]:
        return [f"proba_{label}" for label in self.bundle.model.classes_]


@pytest.fixture(scope="module")
def projects(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Each model the selected tests use (`-k lightgbm`: one) trained once, two `automlops run` at a
    time, each in its own copy of one project: (project root, the run)."""
    wanted = {item.callspec.params.get("trained") for item in request.session.items if hasattr(item, "callspec")}
    models = [model for model in MODELS if model in wanted]
    base = new_project(tmp_path_factory.mktemp("parity") / "base")
    training_table().to_csv(base / "data" / "raw" / "parity.csv", index=False)
    roots = {model: Path(shutil.copytree(base, base.parent / model, symlinks=True)) for model in models}

    def train(model: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        return roots[model], cli("run", *COMMON, *overrides(model), cwd=roots[model], timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(models, pool.map(train, models)))


@pytest.fixture(scope="module", params=MODELS)
def trained(
    request: pytest.FixtureRequest, projects: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]
) -> Iterator[Trained]:
    model = request.param
    root, run = projects[model]
    assert run.returncode == 0, f"{model}: {run.stderr[-3000:]}"
    best = json.loads((root / "artifacts" / "search" / "best.json").read_text())
    assert best["engine"] == ("autogluon" if model == "autogluon" else "optuna")
    assert model == "autogluon" or best["family"] == model
    path = champion(root, NAME)
    scratch = root / "parity_scratch"
    (scratch / "data" / "prepared").mkdir(parents=True)
    shutil.copy(root / "data" / "prepared" / "meta.json", scratch / "data" / "prepared" / "meta.json")
    with running_server(path, cwd=root, log_file=scratch / "serve.log") as (client, _):
        yield Trained(
            model,
            root,
            load_bundle(path),
            load_model(best["format"], root / "artifacts" / "search" / "model"),
            json.loads((root / "data" / "prepared" / "meta.json").read_text()),
            scratch,
            client,
        )


# ---- rows drawn from the contract, and the ways each path receives them ----

MISSING = None


def _is_boolean(spec: ColumnSpec) -> bool:
    return spec.kind == CATEGORICAL and bool(spec.categories) and set(spec.categories) <= {"False", "True"}


def _unseen(spec: ColumnSpec) -> st.SearchStrategy[str]:
    """Unicode text not seen in training. Not a CSV missing-value token (a CSV's "NA" is missing, as
    in training's reader) nor, in a boolean column, a spelling of true or false (CSV booleans)."""
    banned = set(NA_TOKENS) | set(spec.categories)
    text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8)
    return text.filter(
        lambda s: (
            s not in banned
            and s.strip() == s
            and s.strip() != ""
            and not (_is_boolean(spec) and s.lower() in ("true", "false"))
        )
    )


def _value(spec: ColumnSpec) -> st.SearchStrategy[Any]:
    if spec.kind == NUMERIC:
        whole = st.integers(-1000, 1000).map(float)
        value = (
            whole
            if spec.dtype.startswith("int")
            else st.one_of(whole, st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
        )
    else:
        value = st.one_of(st.sampled_from(spec.categories), _unseen(spec)) if spec.categories else _unseen(spec)
    return st.one_of(st.just(MISSING), value) if spec.nullable else value


def batches(contract: list[ColumnSpec]) -> st.SearchStrategy[Batch]:
    """A batch of rows (each cell a logical value and a variant: which spelling each format uses)."""
    cell = {spec.name: st.tuples(_value(spec), st.integers(0, 2)) for spec in contract}
    return st.builds(
        Batch, st.just(contract), st.lists(st.fixed_dictionaries(cell), min_size=1, max_size=MAX_ROWS), st.booleans()
    )


@dataclass
class Batch:
    contract: list[ColumnSpec]
    rows: list[dict[str, tuple[Any, int]]]
    nullable_dtypes: bool  # Parquet and in-memory frames: pandas' string/Float64 dtypes (pd.NA), else object/float64

    def logical(self) -> pd.DataFrame:
        """The values as prepare would have held them: text, numbers, None for missing."""
        return pd.DataFrame(
            {spec.name: pd.Series([row[spec.name][0] for row in self.rows], dtype=object) for spec in self.contract}
        )

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([spec.name for spec in self.contract])
        for row in self.rows:
            writer.writerow([_csv_cell(spec, *row[spec.name]) for spec in self.contract])
        return out.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [{spec.name: _json_cell(spec, *row[spec.name]) for spec in self.contract} for row in self.rows]

    def frame(self) -> pd.DataFrame:
        """In memory, as a Python caller of predict_frame (or a Parquet writer) holds it."""
        return pd.DataFrame({spec.name: self._column(spec) for spec in self.contract})

    def _column(self, spec: ColumnSpec) -> pd.Series:
        cells = [row[spec.name] for row in self.rows]
        gaps = [None, np.nan, pd.NA]
        if spec.kind == NUMERIC:
            values = [gaps[variant] if value is MISSING else value for value, variant in cells]
            return pd.Series(values, dtype="Float64" if self.nullable_dtypes else object)
        present = [value for value, _ in cells if value is not MISSING]
        booleans = _is_boolean(spec) and set(present) <= {"True", "False"}
        values = [
            gaps[variant] if value is MISSING else (value == "True" if booleans else value) for value, variant in cells
        ]
        if self.nullable_dtypes:
            return pd.Series(values, dtype="boolean" if booleans else "string")
        return pd.Series(values, dtype=object)


def _csv_cell(spec: ColumnSpec, value: Any, variant: int) -> str:
    if value is MISSING:
        return ""
    if spec.kind == NUMERIC:
        return str(int(value)) if value.is_integer() and variant else repr(value)
    if _is_boolean(spec) and value in ("True", "False"):
        return [value, value.lower(), value.upper()][variant]
    return str(value)


def _json_cell(spec: ColumnSpec, value: Any, variant: int) -> Any:
    if value is MISSING:
        return None if variant else math.nan  # JSON null, or the NaN literal Python's json writes
    if spec.kind == NUMERIC:
        return int(value) if value.is_integer() and variant else value
    if _is_boolean(spec) and value in ("True", "False") and variant:
        return value == "True"
    if value.isdigit() and str(int(value)) == value and variant == 2:
        return int(value)  # a code "12" sent as the number 12
    return value


# ---- the paths ----


def evaluated_answers(model: Trained, batch: Batch) -> Predictions:
    """What evaluate computed for these rows: typed as prepare types them, written as the prepared test
    split and read back as the evaluate stage reads it, then scored with evaluate's own call."""
    typed = to_model_frame(batch.logical(), model.contract)
    typed[TARGET] = model.meta["classes"][0]
    typed.to_parquet(model.scratch / "data" / "prepared" / "test.parquet", index=False)
    with contextlib.chdir(model.scratch):
        test = load_prepared(("test",))[0]["test"]
    return predict(model.evaluated, test[model.meta["features"]], test[TARGET], model.meta["task"])


def assert_same(model: Trained, expected: Predictions, labels: Any, proba: Any, path: str) -> None:
    labels = np.asarray(labels)
    assert labels.tolist() == expected.predicted.tolist(), (
        f"{model.name} {path}: labels differ from the evaluated model's"
    )
    if proba is not None:
        np.testing.assert_allclose(
            np.asarray(proba, dtype=float),
            expected.proba,
            rtol=0,
            atol=1e-9,
            err_msg=f"{model.name} {path}: probabilities differ from the evaluated model's",
        )


def write_inputs(model: Trained, batch: Batch) -> dict[str, Path]:
    files = {
        "csv": model.scratch / "rows.csv",
        "parquet": model.scratch / "rows.parquet",
        "json": model.scratch / "rows.json",
    }
    files["csv"].write_text(batch.csv_text(), encoding="utf-8")
    batch.frame().to_parquet(files["parquet"], index=False)
    files["json"].write_text(json.dumps(batch.records(), ensure_ascii=False), encoding="utf-8")
    return files


def check_outputs(model: Trained, expected: Predictions, outputs: dict[str, Path], how: str) -> None:
    for kind, path in outputs.items():
        out = pd.read_parquet(path)
        assert_same(model, expected, out["prediction"], out[model.proba_columns], f"{how} {kind}")


# no shrinking: each step would rerun processes or requests; a failure reports its batch as drawn
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_automlops_predict_answers_as_the_evaluated_model(trained: Trained) -> None:
    """The real command line, one process per format, the three at once."""

    @settings(max_examples=PROCESS_EXAMPLES, **SETTINGS)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        batch = data.draw(batches(trained.contract))
        expected = evaluated_answers(trained, batch)
        files = write_inputs(trained, batch)
        outputs = {kind: trained.scratch / f"out_{kind}.parquet" for kind in files}
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "automlops",
                    "predict",
                    "--model",
                    str(trained.bundle.path),
                    "--input",
                    str(files[kind]),
                    "--output",
                    str(outputs[kind]),
                ],
                cwd=trained.root,
                env=run_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for kind in files
        ]
        for kind, process in zip(files, processes):
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, f"{trained.name} predict {kind}: {stderr[-2000:]}"
        check_outputs(trained, expected, outputs, "automlops predict")

    check()


def test_predict_in_process_answers_as_the_evaluated_model(trained: Trained) -> None:
    """What the command line runs (predict_file, each format), and predict_frame on a Python frame."""

    @settings(max_examples=IN_PROCESS_EXAMPLES, **SETTINGS)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        batch = data.draw(batches(trained.contract))
        expected = evaluated_answers(trained, batch)
        files = write_inputs(trained, batch)
        outputs = {kind: trained.scratch / f"in_process_{kind}.parquet" for kind in files}
        for kind in files:
            predict_file(trained.bundle, files[kind], outputs[kind])
        check_outputs(trained, expected, outputs, "predict_file")
        out = predict_frame(trained.bundle, batch.frame())
        assert_same(trained, expected, out["prediction"], out[trained.proba_columns], "predict_frame")

    check()


def test_both_endpoints_answer_as_the_evaluated_model(trained: Trained) -> None:
    """/predict (JSON records, CSV) with probabilities, /invocations (MLflow's dataframe_split, CSV) its labels."""

    @settings(max_examples=SERVER_EXAMPLES, **SETTINGS)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        batch = data.draw(batches(trained.contract))
        expected = evaluated_answers(trained, batch)
        records, text = batch.records(), batch.csv_text().encode()
        json_body = json.dumps(records, ensure_ascii=False).encode()
        names = [spec.name for spec in trained.contract]
        split = json.dumps(
            {"dataframe_split": {"columns": names, "data": [[r[n] for n in names] for r in records]}}
        ).encode()
        classes = [str(label) for label in trained.bundle.model.classes_]
        for path, body, kind in (
            ("/predict?proba=1", json_body, "application/json"),
            ("/predict?proba=1", text, "text/csv"),
            ("/invocations", split, "application/json"),
            ("/invocations", text, "text/csv"),
        ):
            answer = trained.client.post(path, content=body, headers={"Content-Type": kind})
            assert answer.status_code == 200, f"{trained.name} {path} {kind}: {answer.text[:500]}"
            got = answer.json()
            proba = [[row[c] for c in classes] for row in got["probabilities"]] if "probabilities" in got else None
            assert_same(trained, expected, got["predictions"], proba, f"{path} {kind}")

    check()


def test_the_input_example_is_answered_as_evaluated(trained: Trained) -> None:
    """The bundle's input example holds the first test rows; served, they get their evaluated answers."""
    with contextlib.chdir(trained.root):
        test = load_prepared(("test",))[0]["test"]
    example = json.loads((trained.bundle.path / "input_example.json").read_text())
    head = test.head(len(example))
    expected = predict(trained.evaluated, head[trained.meta["features"]], head[TARGET], trained.meta["task"])
    got = trained.client.post("/predict?proba=1", json=example).json()
    classes = [str(label) for label in trained.bundle.model.classes_]
    assert_same(
        trained,
        expected,
        got["predictions"],
        [[row[c] for c in classes] for row in got["probabilities"]],
        "input example",
    )


def test_the_recorded_test_metrics_are_those_of_automlops_predict(trained: Trained) -> None:
    """metrics/test.json and the manifest hold what `automlops predict` on the test split gives (to
    the 6 digits recorded), and monitor, given the labelled test split as Parquet or CSV, measures the same."""
    test_split = trained.root / "data" / "prepared" / "test.parquet"
    out = trained.scratch / "test_predictions.parquet"
    done = cli(
        "predict",
        "--model",
        str(trained.bundle.path),
        "--input",
        str(test_split),
        "--keep",
        TARGET,
        "--output",
        str(out),
        cwd=trained.root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    predicted = pd.read_parquet(out)
    task = trained.meta["task"]
    recomputed = scores(
        Predictions(
            predicted[TARGET].to_numpy(),
            predicted["prediction"].to_numpy(),
            predicted[trained.proba_columns].to_numpy(),
            np.asarray(trained.bundle.model.classes_),
        ),
        task,
    )
    recorded = json.loads((trained.root / "metrics" / "test.json").read_text())
    assert recorded == trained.bundle.manifest.metrics.test
    assert recomputed == recorded, (
        f"{trained.name}: predict on the test split gives {recomputed}, the bundle records {recorded}"
    )

    from automlops.monitor.runner import monitor

    def measured(batch: Path) -> dict[str, Any]:
        return monitor(str(trained.bundle.path), batch, MonitorConfig(out=str(trained.scratch / "monitor")))[
            "performance"
        ]

    performance = measured(test_split)
    assert performance["current"] == performance["reference"], f"{trained.name}: monitor measures {performance}"
    codes = pd.read_parquet(test_split).query("code != 'x'")  # a text column of digits only: "007", "12", "7"
    codes.to_parquet(trained.scratch / "codes.parquet", index=False)
    codes.to_csv(trained.scratch / "codes.csv", index=False)
    assert measured(trained.scratch / "codes.csv")["current"] == measured(trained.scratch / "codes.parquet")["current"]
