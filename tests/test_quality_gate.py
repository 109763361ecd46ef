"""The data schema (inferred, curated, as YAML) and the validation gate of the prepare stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import cli, dvc, new_project, snapshot

from automlops.checks import check_config
from automlops.config.schema import Config, DataConfig, DataValidationConfig
from automlops.data.contract import CATEGORICAL, NUMERIC, infer_contract
from automlops.data.prepare import prepare
from automlops.data.quality_gate import Anomaly, BatchRejected, check_batch
from automlops.data.schema import DataSchema, merge_contract, read_schema, schema_to_yaml, target_spec
from automlops.errors import ConfigError

FEATURES = ["length", "count", "color"]


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "length": rng.uniform(0, 10, n).round(3),
            "count": rng.integers(1, 50, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "label": np.where(np.arange(n) % 4 == 0, "yes", "no"),
        }
    )
    frame.loc[::20, "length"] = np.nan  # 5 % missing: the schema says nullable, missing_rate 0.05
    return frame


def schema_of(frame: pd.DataFrame, task: str = "binary", target: str = "label") -> DataSchema:
    return DataSchema(
        infer_contract(frame[[c for c in frame.columns if c != target]]), target_spec(frame[target], target, task)
    )


def flagged(anomalies: list[Anomaly]) -> set[tuple[str, str]]:
    return {(a.column, a.kind) for a in anomalies}


# --- the schema as YAML ------------------------------------------------------------------------


def test_schema_yaml_round_trip(tmp_path: Path) -> None:
    schema = schema_of(table())
    text = schema_to_yaml(schema, "csv file x.csv")
    assert text.startswith("# Data schema inferred") and "conf/schema/<name>.yaml" in text and "data.schema=" in text
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    read = read_schema(path)
    assert read == DataSchema(schema.columns, schema.target, str(path))
    specs = {spec.name: spec for spec in read.columns}
    assert specs["length"].nullable and specs["length"].missing_rate == 0.05 and specs["length"].kind == NUMERIC
    assert specs["color"].categories == ["blue", "green", "red"] and specs["color"].kind == CATEGORICAL
    assert read.target is not None and read.target.classes == {"no": 0.75, "yes": 0.25}
    assert yaml.safe_load(text)["columns"]["color"]["categories"] == ["blue", "green", "red"]


def test_regression_target_keeps_mean_and_std(tmp_path: Path) -> None:
    frame = table().assign(label=np.arange(400, dtype=float))
    path = tmp_path / "schema.yaml"
    path.write_text(schema_to_yaml(schema_of(frame, "regression"), "x"))
    target = read_schema(path).target
    assert (
        target is not None
        and target.task == "regression"
        and target.mean == pytest.approx(199.5)
        and not target.classes
    )


def test_older_contracts_without_missing_rate_still_load() -> None:
    from automlops.data.contract import contract_from_dicts

    old = {
        "name": "x",
        "kind": "numeric",
        "dtype": "float64",
        "nullable": False,
        "categories": [],
        "min": 0.0,
        "max": 1.0,
    }
    assert contract_from_dicts([old])[0].missing_rate is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("columns: [oops", r"is not valid YAML"),
        ("- a\n- b\n", r"expected a mapping with keys columns and target"),
        ("colums: {x: {kind: numeric}}\n", r"colums: unknown key \(did you mean 'columns'\?\)"),
        (
            "columns: {x: {kind: numerc}}\n",
            r"columns\.x\.kind: unknown value 'numerc' \(did you mean 'numeric'\?\); choose one of: categorical, numeric",
        ),
        (
            "columns: {x: {kind: numeric, min: 5, max: 3}}\n",
            r"columns\.x: min \(5\) must be <= max \(3\); swap or fix them",
        ),
        (
            "columns: {x: {kind: numeric, categories: [a]}}\n",
            r"columns\.x\.categories: only categorical columns take categories",
        ),
        (
            "columns: {x: {kind: categorical, categoris: [a]}}\n",
            r"columns\.x\.categoris: unknown key \(did you mean 'categories'\?\)",
        ),
        ("columns: {x: {kind: numeric, min: low}}\n", r"columns\.x\.min: must be a number or null; got 'low'"),
        (
            "columns: {x: {kind: numeric}}\ntarget: {name: y, task: regresion}\n",
            r"target\.task: unknown value 'regresion'",
        ),
        ("columns: {x: {nullable: false}}\n", r"columns\.x\.kind: required"),
    ],
)
def test_bad_curated_schema_is_one_line_naming_file_and_key(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "curated.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match) as caught:
        read_schema(path)
    message = str(caught.value)
    assert message.startswith(f"data.schema: {path}") and "\n" not in message


def test_every_problem_of_a_curated_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "curated.yaml"
    path.write_text("columns:\n  a: {kind: numerc}\n  b: {kind: numeric, min: 2, max: 1}\n")
    with pytest.raises(ConfigError, match=r"columns\.a\.kind.*; columns\.b: min"):
        read_schema(path)


def test_curated_schema_overrides_the_inferred_contract() -> None:
    inferred = infer_contract(table()[FEATURES])
    curated = DataSchema(infer_contract(pd.DataFrame({"color": ["red", "green"]})))
    merged = {spec.name: spec for spec in merge_contract(inferred, curated)}
    assert merged["color"].categories == ["green", "red"]  # curated: blue removed
    assert merged["color"].missing_rate == 0.0
    assert merged["length"] == {spec.name: spec for spec in inferred}["length"]  # not listed: inferred


# --- the checks on crafted batches -------------------------------------------------------------


def test_a_batch_like_the_training_data_passes() -> None:
    assert check_batch(table(seed=1), FEATURES, "label", schema_of(table()), DataValidationConfig()) == []


def test_missing_and_new_columns() -> None:
    batch = table().drop(columns=["count"]).assign(extra=1.0)
    found = check_batch(batch, ["length", "color", "extra"], "label", schema_of(table()), DataValidationConfig())
    assert flagged(found) == {("count", "missing_column"), ("extra", "new_column")}
    assert {a.kind: a.severity for a in found} == {"missing_column": "error", "new_column": "warn"}


def test_new_category_is_flagged_on_its_column_only() -> None:
    batch = table()
    batch.loc[:9, "color"] = "purple"
    found = check_batch(batch, FEATURES, "label", schema_of(table()), DataValidationConfig())
    assert flagged(found) == {("color", "new_category")}
    assert found[0].value == pytest.approx(10 / 400) and "'purple'" in found[0].message


def test_type_change_is_flagged_and_its_values_not_checked_further() -> None:
    batch = table()
    batch["count"] = batch["count"].astype(str).where(batch.index > 5, "many")
    found = check_batch(batch, FEATURES, "label", schema_of(table()), DataValidationConfig())
    assert flagged(found) == {("count", "type_change")}
    assert found[0].severity == "error" and "'many'" in found[0].message


def test_numbers_written_as_text_are_no_type_change() -> None:
    batch = table()
    batch["count"] = batch["count"].astype(str).astype(object)
    assert check_batch(batch, FEATURES, "label", schema_of(table()), DataValidationConfig()) == []


def test_missing_rate_jump_and_unexpected_missing() -> None:
    batch = table()
    batch.loc[:99, "length"] = np.nan  # 5 % -> 25 %+ missing: a jump; the schema allows missing values
    batch.loc[:3, "count"] = np.nan  # never missing in training: nullable false
    found = check_batch(batch, FEATURES, "label", schema_of(table()), DataValidationConfig())
    assert flagged(found) == {("length", "missing_rate_jump"), ("count", "unexpected_missing")}
    jump = next(a for a in found if a.kind == "missing_rate_jump")
    assert jump.value is not None and jump.value > 0.1


def test_label_shift_of_class_shares() -> None:
    batch = table()
    batch["label"] = np.where(np.arange(400) % 4 == 0, "no", "yes")  # 25 % yes -> 75 % yes
    found = check_batch(batch, FEATURES, "label", schema_of(table()), DataValidationConfig())
    assert flagged(found) == {("label", "label_shift")}
    assert found[0].value is not None and found[0].value > 0.1 and "Jensen-Shannon" in found[0].message


def test_label_shift_of_a_regression_target() -> None:
    train = table().assign(label=np.random.default_rng(0).normal(10, 2, 400))
    batch = train.assign(label=train["label"] + 1.0)  # half a std
    found = check_batch(batch, FEATURES, "label", schema_of(train, "regression"), DataValidationConfig())
    assert flagged(found) == {("label", "label_shift")} and found[0].value == pytest.approx(0.5, abs=0.05)
    assert (
        check_batch(batch, FEATURES, "label", schema_of(train, "regression"), DataValidationConfig(max_label_shift=1.0))
        == []
    )


def test_out_of_range_counts_only_above_its_share() -> None:
    schema = schema_of(table())
    batch = table()
    batch.loc[:1, "length"] = 99.0  # 2 of 400 rows: 0.5 %, within out_of_range_share
    assert check_batch(batch, FEATURES, "label", schema, DataValidationConfig()) == []
    batch.loc[:11, "length"] = 99.0  # 12 rows: 3 %
    found = check_batch(batch, FEATURES, "label", schema, DataValidationConfig())
    assert [(a.column, a.kind, a.severity) for a in found] == [("length", "out_of_range", "warn")]
    assert found[0].value == pytest.approx(0.03)
    stop = check_batch(batch, FEATURES, "label", schema, DataValidationConfig(out_of_range="error"))
    assert stop[0].severity == "error"
    assert check_batch(batch, FEATURES, "label", schema, DataValidationConfig(out_of_range="ignore")) == []


def test_target_name_must_match_the_schema() -> None:
    schema = schema_of(table())
    with pytest.raises(ConfigError, match=r"target\.name 'label' is not data\.target 'color'"):
        check_batch(table(), ["length", "count"], "color", schema, DataValidationConfig())


def test_prepare_stops_before_the_split_with_the_report(tmp_path: Path) -> None:
    schema_file = tmp_path / "curated.yaml"
    schema_file.write_text(schema_to_yaml(schema_of(table()), "x"))
    data = tmp_path / "batch.csv"
    table().drop(columns=["count"]).to_csv(data, index=False)
    with pytest.raises(
        BatchRejected,
        match=r"1 error\(s\) against .*curated\.yaml: 'count' missing_column; see metrics/validation\.json.*data\.validation\.missing_column=warn",
    ) as caught:
        prepare(DataConfig(source="csv", path=str(data), target="label", schema=str(schema_file)), seed=0)
    report = caught.value.report
    assert report["passed"] is False and report["errors"] == 1 and report["anomalies"][0]["column"] == "count"


def test_prepare_without_a_schema_reports_nothing_validated(tmp_path: Path) -> None:
    data = tmp_path / "batch.csv"
    table().to_csv(data, index=False)
    prepared = prepare(DataConfig(source="csv", path=str(data), target="label"), seed=0)
    assert prepared.validation["schema"] is None and prepared.validation["anomalies"] == []
    assert "curated schema" in prepared.validation["note"]
    assert prepared.schema is not None and [c.name for c in prepared.schema.columns] == FEATURES


# --- config ------------------------------------------------------------------------------------


def test_bad_severity_is_named_with_a_suggestion() -> None:
    config = Config(
        data=DataConfig(
            source="builtin",
            name="iris",
            target="target",
            validation=DataValidationConfig(new_category="wran", out_of_range_share=2.0),
        )
    )
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    message = str(caught.value)
    assert (
        "data.validation.new_category: unknown value 'wran' (did you mean 'warn'?); choose one of: error, ignore, warn"
        in message
    )
    assert "data.validation.out_of_range_share: must be in [0, 1] (a share), got 2.0" in message


def test_missing_curated_schema_names_data_schema(tmp_path: Path) -> None:
    config = Config(data=DataConfig(source="builtin", name="iris", target="target", schema=str(tmp_path / "nope.yaml")))
    with pytest.raises(ConfigError, match=r"data\.schema: .*nope\.yaml not found; copy data/prepared/schema\.yaml"):
        check_config(config)


# --- the real pipeline -------------------------------------------------------------------------

RUN = (
    "run",
    "data=penguins_csv",
    "data.schema=conf/schema/curated.yaml",
    "search.n_trials=2",
    "gate.infra.enabled=false",
    "evaluate.importance_repeats=0",
)


def penguins_csv(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "data" / "raw" / "penguins.csv")


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project whose curated schema drops the island Torgersen and narrows body_mass_g, and one good
    run on a batch where 2 % of the masses fall outside that range (out_of_range: warn)."""
    root = new_project(tmp_path_factory.mktemp("validated") / "project")
    curated = yaml.safe_load((root / "conf" / "schema" / "penguins.yaml").read_text())
    curated["columns"]["island"]["categories"] = ["Biscoe", "Dream"]
    (root / "conf" / "schema" / "curated.yaml").write_text(yaml.safe_dump(curated, sort_keys=False))
    batch = penguins_csv(root)
    batch.loc[:6, "body_mass_g"] = 9000.0  # 7 of 344 rows: 2 % > out_of_range_share 1 %
    batch.to_csv(root / "data" / "raw" / "penguins.csv", index=False)
    result = cli(*RUN, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result.stderr


@pytest.mark.slow
def test_small_range_violation_warns_and_the_run_goes_on(validated: tuple[Path, str]) -> None:
    root, stderr = validated
    assert "data validation (out_of_range): column 'body_mass_g': 2.0% of rows (7)" in stderr
    assert "data validation (new_category): column 'island'" in stderr  # Torgersen, removed by the curator
    report = json.loads((root / "metrics" / "validation.json").read_text())
    assert report["passed"] is True and report["schema"] == "conf/schema/curated.yaml"
    assert {(a["column"], a["kind"], a["severity"]) for a in report["anomalies"]} == {
        ("island", "new_category", "warn"),
        ("body_mass_g", "out_of_range", "warn"),
    }
    assert (root / "models" / "penguins" / "versions" / "1").is_dir()
    inferred = yaml.safe_load((root / "data" / "prepared" / "schema.yaml").read_text())
    assert inferred["columns"]["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]  # the data's, for review


@pytest.mark.slow
def test_curated_schema_is_the_served_contract(validated: tuple[Path, str]) -> None:
    from fastapi.testclient import TestClient

    from automlops.bundle import load_bundle
    from automlops.config.schema import ServeConfig
    from automlops.errors import InputError
    from automlops.scoring import predict_frame
    from automlops.serve.app import create_app

    root, _ = validated
    bundle_dir = root / "models" / "penguins" / "versions" / "1"
    bundle = load_bundle(bundle_dir)
    specs = {spec.name: spec for spec in bundle.contract}
    assert specs["island"].categories == ["Biscoe", "Dream"]
    assert (specs["body_mass_g"].min, specs["body_mass_g"].max) == (2500.0, 6500.0)  # curated, not the data's 9000
    assert specs["sex"].missing_rate is not None
    rows = json.loads((bundle_dir / "input_example.json").read_text())[:1]
    rows[0]["island"] = "Torgersen"
    with pytest.raises(InputError, match=r"column 'island' row 0: category 'Torgersen' was not seen in training"):
        predict_frame(bundle, pd.DataFrame(rows), unknown_categories="error")
    with TestClient(create_app(str(bundle_dir), ServeConfig(unknown_categories="error"))) as client:
        answer = client.post("/predict", json=rows)
    assert answer.status_code == 422 and "island" in answer.json()["detail"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "overrides", "named"),
    [
        ("drop bill_depth_mm", (), "'bill_depth_mm' missing_column"),
        ("range", ("data.validation.out_of_range=error",), "'body_mass_g' out_of_range"),
    ],
)
def test_gate_stops_the_run_and_keeps_the_last_good_data(
    validated: tuple[Path, str], change: str, overrides: tuple[str, ...], named: str
) -> None:
    root, _ = validated
    batch = penguins_csv(root)
    if change.startswith("drop"):
        batch = batch.drop(columns=["bill_depth_mm"])
    name = change.split()[-1]
    batch.to_csv(root / "data" / "raw" / f"{name}.csv", index=False)
    before = snapshot(root, ("data/prepared", "models"))
    result = cli(*RUN, f"data.path=data/raw/{name}.csv", *overrides, cwd=root)
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data validation:") and named in last and "metrics/validation.json" in last
    assert snapshot(root, ("data/prepared", "models")) == before
    report = json.loads((root / "metrics" / "validation.json").read_text())
    assert report["passed"] is False and any(named.split()[0].strip("'") == a["column"] for a in report["anomalies"])


def test_bad_curated_file_exits_2_with_one_line(project: Path) -> None:
    (project / "conf" / "schema" / "bad.yaml").write_text("columns:\n  island: {kind: categorial}\n")
    before = snapshot(project, ("data", "params.yaml"))
    result = cli("run", "data=penguins_csv", "data.schema=conf/schema/bad.yaml", cwd=project)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "conf/schema/bad.yaml: columns.island.kind: unknown value 'categorial' (did you mean 'categorical'?)"
        in lines[0]
    )
    assert snapshot(project, ("data", "params.yaml")) == before


@pytest.mark.slow
def test_editing_the_curated_schema_reruns_prepare_under_dvc(project: Path) -> None:
    overrides = ("data=penguins_csv", "data.schema=conf/schema/penguins.yaml")
    assert cli("compose", *overrides, cwd=project).returncode == 0
    first = dvc("repro", "prepare", cwd=project)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads((project / "metrics" / "validation.json").read_text())["passed"] is True
    assert "prepare:" not in dvc("status", "prepare", cwd=project).stdout  # up to date
    schema_file = project / "conf" / "schema" / "penguins.yaml"
    schema_file.write_text(schema_file.read_text().replace("max: 6500.0", "max: 6000.0"))
    assert cli("compose", *overrides, cwd=project).returncode == 0
    status = dvc("status", "prepare", cwd=project).stdout
    assert "prepare:" in status and "conf/schema" in status  # `dvc repro` reruns prepare (and what follows it)
