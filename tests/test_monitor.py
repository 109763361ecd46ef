"""`automlops monitor`: drift of a batch against the training snapshot stored in the bundle, with a real
packaged penguins model (small reference: KS and chi-squared) and generated large references
(Wasserstein, Jensen-Shannon, PSI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import champion, cli
from palmerpenguins import load_penguins
from test_serve import running_server

from automlops.bundle import load_bundle
from automlops.config.schema import ColumnDriftConfig, MonitorConfig
from automlops.monitor.batches import read_batch
from automlops.monitor.drift import ColumnTest, column_drift
from automlops.monitor.report import monitor_batch, summary
from automlops.monitor.stats import table_statistics
from automlops.monitor.verdict import decide
from automlops.records import Manifest

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    """Every penguin, shuffled: a batch drawn from the distribution the model was trained on."""
    return load_penguins().sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def bundle(penguins_run) -> Path:
    root, _ = penguins_run
    return champion(root, "penguins")


def drifted(bundle: Path, batch: pd.DataFrame, **settings) -> list[str]:
    report = monitor_batch(load_bundle(bundle), batch, MonitorConfig(**settings), "batch")
    return report["dataset_drift"]["drifted_columns"]


def test_the_bundle_keeps_the_training_snapshot(bundle: Path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    statistics = json.loads((bundle / "statistics.json").read_text())
    assert "statistics.json" in manifest["files"]  # sealed like the model
    assert statistics["data_hash"] == manifest["lineage"]["data_hash"]
    assert set(statistics["columns"]) == set(FEATURES)
    rows = manifest["lineage"]["rows"]
    assert statistics["rows"] == rows["train"] + rows["valid"]
    assert set(statistics["columns"]["island"]["counts"]) == {"Biscoe", "Dream", "Torgersen"}
    assert set(statistics["prediction"]["counts"]) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_a_batch_from_the_training_distribution_shows_no_drift(bundle: Path, penguins: pd.DataFrame):
    report = monitor_batch(load_bundle(bundle), penguins, MonitorConfig(), "all penguins")
    assert report["dataset_drift"]["drifted_columns"] == []
    assert not report["drift"]
    methods = {name: result["method"] for name, result in report["columns"].items()}
    assert methods == {
        "island": "chisquare",
        "sex": "chisquare",
        "bill_length_mm": "ks",
        "bill_depth_mm": "ks",
        "flipper_length_mm": "ks",
        "body_mass_g": "ks",
    }  # a reference under 1000 rows: exact tests
    assert report["prediction_drift"]["drifted"] is False
    assert report["performance"]["drifted"] is False  # the batch has the species: labels are scored too


def test_a_shifted_numeric_column_is_the_only_one_flagged(bundle: Path, penguins: pd.DataFrame):
    batch = penguins.assign(body_mass_g=penguins["body_mass_g"] + 0.5 * penguins["body_mass_g"].std())
    assert drifted(bundle, batch) == ["body_mass_g"]


def test_a_new_category_is_the_only_one_flagged(bundle: Path, penguins: pd.DataFrame):
    batch = penguins.copy()
    batch.loc[batch.index[::3], "island"] = "Anvers"
    assert drifted(bundle, batch) == ["island"]


def test_a_changed_missing_rate_is_the_only_one_flagged(bundle: Path, penguins: pd.DataFrame):
    batch = penguins.copy()
    batch.loc[batch.index[::4], "flipper_length_mm"] = np.nan  # the values left are a fair sample: only the rate moved
    report = monitor_batch(load_bundle(bundle), batch, MonitorConfig(), "batch")
    assert report["dataset_drift"]["drifted_columns"] == ["flipper_length_mm"]
    result = report["columns"]["flipper_length_mm"]
    assert result["missing"]["drifted"] and not result["values_drifted"]
    assert report["prediction_drift"]["drifted"] is False  # the model still scores rows with values missing


def test_missing_values_where_training_had_none_still_get_a_prediction_check(bundle: Path, penguins: pd.DataFrame):
    batch = penguins.assign(
        island=penguins["island"].mask(penguins.index % 3 == 0)
    )  # island is never missing in training
    report = monitor_batch(load_bundle(bundle), batch, MonitorConfig(), "batch")
    assert report["dataset_drift"]["drifted_columns"] == ["island"]
    assert "skipped" not in report["prediction_drift"], report["prediction_drift"]


def test_dataset_drift_follows_the_declared_share(bundle: Path, penguins: pd.DataFrame):
    batch = penguins.assign(body_mass_g=penguins["body_mass_g"] * 1.3, bill_length_mm=penguins["bill_length_mm"] * 1.3)
    assert (
        summary(monitor_batch(load_bundle(bundle), batch, MonitorConfig(drift_share=0.5), "b"))["dataset_drift"][
            "drifted"
        ]
        is False
    )
    report = monitor_batch(load_bundle(bundle), batch, MonitorConfig(drift_share=0.3), "b")
    assert report["dataset_drift"]["drifted"] and report["drift"]


def test_per_column_settings_override_the_method_and_threshold(bundle: Path, penguins: pd.DataFrame):
    batch = penguins.assign(body_mass_g=penguins["body_mass_g"] + 0.5 * penguins["body_mass_g"].std())
    lenient = {"body_mass_g": ColumnDriftConfig(method="psi", threshold=5.0)}
    report = monitor_batch(load_bundle(bundle), batch, MonitorConfig(columns=lenient), "b")
    assert report["columns"]["body_mass_g"]["method"] == "psi"
    assert report["dataset_drift"]["drifted_columns"] == []


def test_wrong_labels_show_performance_drift(bundle: Path, penguins: pd.DataFrame):
    shuffled = penguins.assign(species=penguins["species"].sample(frac=1.0, random_state=1).to_numpy())
    performance = monitor_batch(load_bundle(bundle), shuffled, MonitorConfig(), "b")["performance"]
    assert performance["metric"] == "log_loss" and performance["drifted"]
    assert performance["current"] > performance["reference"] * 1.05


def test_a_worsening_under_the_noise_floor_is_not_performance_drift(bundle: Path, penguins: pd.DataFrame):
    flipped = penguins.copy()
    flipped.loc[flipped.index[:3], "species"] = flipped["species"].iloc[:3].map({"Adelie": "Gentoo"}).fillna("Adelie")
    model = load_bundle(bundle)
    default = monitor_batch(model, flipped, MonitorConfig(), "b")["performance"]
    worse = default["worse"]
    assert worse == pytest.approx(default["current"] - default["reference"]) and worse > 0
    floored = monitor_batch(model, flipped, MonitorConfig(max_metric_drop=0.0, min_metric_worse=worse * 1.5), "b")[
        "performance"
    ]
    assert floored["drop"] > 0 and not floored["drifted"]
    assert monitor_batch(model, flipped, MonitorConfig(max_metric_drop=0.0, min_metric_worse=worse / 2), "b")[
        "performance"
    ]["drifted"]


# ---------------------------------------------------------------- large references: distances
def reference_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(10.0, 2.0, rows), "c": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])})


@pytest.mark.parametrize("method, threshold", [("wasserstein", 0.1), ("psi", 0.1), ("jensenshannon", 0.1)])
def test_distances_on_large_references_flag_a_shift_and_pass_a_resample(method: str, threshold: float):
    reference = table_statistics(reference_frame(50_000, seed=0), {"x": "numeric", "c": "categorical"})
    assert "values" not in reference["columns"]["x"]  # a large reference keeps statistics, not rows
    same, moved = reference_frame(20_000, seed=1), reference_frame(20_000, seed=2)
    moved["x"] += 0.5 * 2.0
    moved["c"] = np.where(np.arange(len(moved)) % 5 == 0, "d", moved["c"])
    test = ColumnTest(method, threshold)
    for column, kind in (("x", "numeric"), ("c", "categorical")):
        if method == "wasserstein" and kind == "categorical":
            continue
        calm = column_drift(column, kind, reference["columns"][column], same[column], test, 0.05)
        shifted = column_drift(column, kind, reference["columns"][column], moved[column], test, 0.05)
        assert not calm["drifted"] and calm["statistic"] < threshold / 2, (column, calm["statistic"])
        assert shifted["drifted"] and shifted["statistic"] >= threshold, (column, shifted["statistic"])


def test_many_levels_are_compared_on_the_references_named_levels():
    """Over 100 levels, only the top 100 are named: a batch is counted on the reference's names, so two
    samples of one distribution agree, and a new level still shows."""
    rng = np.random.default_rng(0)
    levels = np.array([f"l{i}" for i in range(500)])
    reference = table_statistics(pd.DataFrame({"c": rng.choice(levels, 50_000)}), {"c": "categorical"})["columns"]["c"]
    same = pd.Series(rng.choice(levels, 50_000))
    calm = column_drift("c", "categorical", reference, same, ColumnTest("jensenshannon", 0.1), 0.05)
    assert calm["statistic"] < 0.05 and not calm["drifted"]
    moved = same.where(np.arange(len(same)) % 5 != 0, "brand-new")
    shifted = column_drift("c", "categorical", reference, moved, ColumnTest("jensenshannon", 0.1), 0.05)
    assert shifted["drifted"] and shifted["current"]["counts"]["brand-new"] == 10_000  # named in the report


def test_a_batch_beyond_the_training_range_lands_in_the_outer_bins():
    reference = table_statistics(reference_frame(5_000, seed=0), {"x": "numeric"})
    far = pd.Series(np.full(100, 1e6))
    result = column_drift("x", "numeric", reference["columns"]["x"], far, ColumnTest("psi", 0.1), 0.05)
    assert result["current"]["histogram"]["counts"][-1] == 100 and result["drifted"]


# ---------------------------------------------------------------- the command line
def test_monitor_command_writes_reports_and_exits_4_on_drift(bundle: Path, penguins: pd.DataFrame, tmp_path: Path):
    features = penguins[FEATURES]
    features.to_csv(tmp_path / "calm.csv", index=False)
    calm = cli(
        "monitor",
        "--model",
        str(bundle),
        "--data",
        str(tmp_path / "calm.csv"),
        "--out",
        str(tmp_path / "calm"),
        cwd=tmp_path,
    )
    assert calm.returncode == 0, calm.stderr
    assert "no drift" in calm.stderr
    report = json.loads((tmp_path / "calm" / "monitor.json").read_text())
    assert report["drift"] is False and set(report["columns"]) == set(FEATURES)
    assert (tmp_path / "calm" / "monitor.html").read_text().lstrip().lower().startswith("<!doctype html")

    features.assign(
        body_mass_g=features["body_mass_g"] * 2,
        bill_depth_mm=features["bill_depth_mm"] * 2,
        flipper_length_mm=features["flipper_length_mm"] * 2,
    ).to_parquet(tmp_path / "moved.parquet")
    moved = cli(
        "monitor",
        "--model",
        str(bundle),
        "--data",
        str(tmp_path / "moved.parquet"),
        "--out",
        str(tmp_path / "moved"),
        cwd=tmp_path,
    )
    assert moved.returncode == 4, moved.stderr
    lines = [line for line in moved.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "3 of 6 input columns drifted" in lines[0] and "body_mass_g" in lines[0]
    assert "Traceback" not in moved.stderr
    assert json.loads((tmp_path / "moved" / "monitor.json").read_text())["dataset_drift"]["drifted"] is True
    relaxed = cli(
        "monitor",
        "--model",
        str(bundle),
        "--data",
        str(tmp_path / "moved.parquet"),
        "--out",
        str(tmp_path / "moved"),
        "monitor.fail_on_drift=false",
        cwd=tmp_path,
    )
    assert relaxed.returncode == 0, relaxed.stderr


@pytest.mark.parametrize(
    "shifted, labels, dataset, code, share",
    [
        (
            ("body_mass_g", "bill_depth_mm", "flipper_length_mm"),
            None,
            True,
            4,
            "0.5 >=",
        ),  # 3 of 6: exactly at monitor.drift_share
        (("body_mass_g", "bill_depth_mm", "flipper_length_mm", "bill_length_mm"), None, True, 4, "0.67 >="),  # above
        (("body_mass_g", "bill_depth_mm"), None, False, 0, "0.33 <"),  # below
        (
            ("body_mass_g", "bill_depth_mm"),
            "shuffled",
            False,
            4,
            "0.33 <",
        ),  # below, but wrong labels: performance drift decides
    ],
    ids=["at-threshold", "above", "below", "below-with-performance-drift"],
)
def test_exit_code_line_json_and_html_render_one_verdict(
    bundle: Path,
    penguins: pd.DataFrame,
    tmp_path: Path,
    shifted: tuple[str, ...],
    labels: str | None,
    dataset: bool,
    code: int,
    share: str,
):
    from html import escape

    batch = penguins[FEATURES].assign(**{name: penguins[name] * 2 for name in shifted})
    if labels:
        batch["species"] = penguins["species"].sample(frac=1.0, random_state=1).to_numpy()
    batch.to_csv(tmp_path / "batch.csv", index=False)
    done = cli(
        "monitor",
        "--model",
        str(bundle),
        "--data",
        str(tmp_path / "batch.csv"),
        "--out",
        str(tmp_path / "out"),
        "monitor.drift_share=0.5",
        cwd=tmp_path,
    )
    report = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert done.returncode == code and report["drift"] is (code == 4), done.stderr
    assert report["dataset_drift"]["drifted"] is dataset
    assert report["dataset_drift"]["share"] == len(shifted) / 6 and len(
        report["dataset_drift"]["drifted_columns"]
    ) == len(shifted)
    assert (report["performance"] or {}).get("drifted", False) is bool(labels)
    printed = [
        line.removeprefix("error: ") for line in done.stderr.splitlines() if "monitor: " in line and "drift" in line
    ]
    assert len(printed) == 1, done.stderr
    assert (
        f"dataset {'drifted' if dataset else 'did not drift'} ({len(shifted)} of 6 input columns drifted" in printed[0]
    )
    assert f"share {share} monitor.drift_share=0.5" in printed[0]
    assert ("performance drifted" in printed[0]) is bool(labels)
    assert printed[0].startswith("monitor: drift: " if code == 4 else "monitor: no drift: ")
    verdict = report["verdict"]  # the one decision: the line, the exit code and the verdicts above come from it
    assert printed == [f"monitor: {verdict['line']}; report: {tmp_path / 'out' / 'monitor.html'}"]
    assert (verdict["exit_code"], verdict["drift"], verdict["dataset"], bool(verdict["performance"])) == (
        code,
        code == 4,
        dataset,
        bool(labels),
    )
    assert escape(verdict["line"]) in (tmp_path / "out" / "monitor.html").read_text()


def test_the_line_never_rounds_a_share_onto_an_unequal_threshold():
    below = decide(
        [f"c{i}" for i in range(999)], 2000, None, MonitorConfig(drift_share=0.5)
    )  # 0.4995: "0.50" would read as drift
    assert not below.dataset and "share 0.499 < monitor.drift_share=0.5" in below.line()
    at = decide(["a", "b"], 6, None, MonitorConfig(drift_share=2 / 6))
    assert at.dataset and at.exit_code == 4 and "share 0.333333 >= monitor.drift_share=0.333333" in at.line()
    quiet = decide(["a", "b"], 6, None, MonitorConfig(drift_share=0.3, fail_on_drift=False))
    assert (
        quiet.drift
        and quiet.exit_code == 0
        and quiet.line().startswith("drift (exit 0: monitor.fail_on_drift is false): ")
    )


def test_a_prediction_log_folder_is_monitored_with_the_answers_logged(
    bundle: Path, penguins: pd.DataFrame, tmp_path: Path
):
    from automlops.serve.telemetry import log_entry

    manifest = json.loads((bundle / "manifest.json").read_text())
    logs = tmp_path / "predictions"
    logs.mkdir()
    with (logs / "predictions-1.jsonl").open("w") as out:
        for start in range(0, len(penguins), 50):
            rows = penguins[FEATURES].iloc[start : start + 50]
            records = json.loads(rows.to_json(orient="records"))
            out.write(
                json.dumps(log_entry(f"r{start}", Manifest.from_dict(manifest), records, ["Gentoo"] * len(rows))) + "\n"
            )
    report = monitor_batch(load_bundle(bundle), read_batch(logs), MonitorConfig(), str(logs))
    assert report["batch"]["rows"] == len(penguins)
    assert report["dataset_drift"]["drifted_columns"] == []
    assert report["prediction_drift"]["drifted"]  # the logged answers (all Gentoo) are not the model's usual mix


def test_a_real_servers_prediction_log_is_monitored(bundle: Path, penguins: pd.DataFrame, tmp_path: Path):
    logs = tmp_path / "predictions"
    with running_server(
        bundle,
        "serve.prediction_log.enabled=true",
        f"serve.prediction_log.dir={logs}",
        cwd=tmp_path,
        log_file=tmp_path / "serve.log",
    ) as (client, _):
        for start in range(0, len(penguins), 50):
            records = json.loads(penguins[FEATURES].iloc[start : start + 50].to_json(orient="records"))
            assert client.post("/predict", json=records).status_code == 200
    done = cli("monitor", "--model", str(bundle), "--data", str(logs), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "monitor.json").read_text())
    assert report["batch"]["rows"] == len(penguins)  # every request logged (the log is flushed at shutdown)
    assert report["dataset_drift"]["drifted_columns"] == []
    assert report["prediction_drift"]["drifted"] is False


def test_late_labels_are_joined_by_id(bundle: Path, penguins: pd.DataFrame, tmp_path: Path):
    batch = penguins[FEATURES].assign(id=range(len(penguins)))
    batch.to_csv(tmp_path / "batch.csv", index=False)
    penguins[["species"]].assign(id=range(len(penguins))).sample(frac=1.0, random_state=3).to_csv(
        tmp_path / "labels.csv", index=False
    )
    done = cli(
        "monitor",
        "--model",
        str(bundle),
        "--data",
        str(tmp_path / "batch.csv"),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--out",
        str(tmp_path / "out"),
        "monitor.id_column=id",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    performance = json.loads((tmp_path / "out" / "monitor.json").read_text())["performance"]
    assert performance["rows"] == len(penguins) and performance["drifted"] is False


@pytest.mark.parametrize(
    "setup, args, code, message",
    [
        ("empty", [], 1, "the batch has no rows"),
        ("foreign", [], 1, "none of the model's 6 input columns"),
        ("old_bundle", [], 1, "holds no training statistics"),
        (
            "calm",
            ["monitor.columns={body_mas_g: {threshold: 0.2}}"],
            2,
            "monitor.columns.body_mas_g: not an input column of the model (did you mean 'body_mass_g'?)",
        ),
        ("calm", ["monitor.method=kl"], 2, "monitor.method: unknown value 'kl'"),
        ("calm", ["monitor.drift_share=0"], 2, "monitor.drift_share: must be in (0, 1]"),
        ("calm", ["monitor.retrain.when=sometimes"], 2, "monitor.retrain.when: unknown value 'sometimes'"),
        ("calm", ["monitor.thresholds.ks=5"], 2, "monitor.thresholds.ks: must be in (0, 1) (a p-value), got 5"),
        ("missing_file", [], 1, "--data: 'nowhere.csv' not found"),
        ("labels_without_id", ["--labels", "calm.csv"], 1, "set monitor.id_column"),
    ],
)
def test_bad_monitor_input_gets_one_line(
    bundle: Path, penguins: pd.DataFrame, tmp_path: Path, setup: str, args: list[str], code: int, message: str
):
    model = bundle
    data = tmp_path / "calm.csv"
    penguins[FEATURES].to_csv(data, index=False)
    if setup == "empty":
        data = tmp_path / "empty.csv"
        data.write_text(",".join(FEATURES) + "\n")
    elif setup == "foreign":
        data = tmp_path / "foreign.csv"
        pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(data, index=False)
    elif setup == "old_bundle":  # a bundle packaged before statistics existed: no file, no manifest entry
        model = tmp_path / "old"
        shutil.copytree(bundle, model)
        (model / "statistics.json").unlink()
        manifest = json.loads((model / "manifest.json").read_text())
        del manifest["files"]["statistics.json"]
        (model / "manifest.json").write_text(json.dumps(manifest))
    elif setup == "missing_file":
        data = Path("nowhere.csv")
    done = cli(
        "monitor", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "out"), *args, cwd=tmp_path
    )
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "monitor.json").exists()  # no half-written report


# ---------------------------------------------------------------- the retrain policy
@pytest.mark.slow
def test_the_retrain_policy_runs_the_pipeline_on_a_drifted_labelled_batch(
    penguins_run, tmp_path: Path, penguins: pd.DataFrame
):
    root = tmp_path / "project"
    shutil.copytree(penguins_run[0], root, symlinks=True)  # the session's trained project, changed here: a copy
    heavier = penguins.assign(
        body_mass_g=penguins["body_mass_g"] * 1.5,
        flipper_length_mm=penguins["flipper_length_mm"] * 1.2,
        bill_length_mm=penguins["bill_length_mm"] * 1.2,
    )
    heavier.to_csv(
        root / "new.csv", index=False
    )  # every column of the training data, year too: the retrain reads them all
    done = cli(
        "monitor",
        "--model",
        "models/penguins",
        "--data",
        "new.csv",
        "+experiment=penguins",
        "monitor.retrain.when=dataset_drift",
        "monitor.fail_on_drift=false",
        'monitor.retrain.overrides=["search.n_trials=1"]',
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((root / "metrics" / "monitor" / "monitor.json").read_text())
    assert report["dataset_drift"]["drifted"]
    retrain = report["retrain"]
    assert retrain["triggered"] and retrain["exit_code"] == 0, retrain
    meta = json.loads((root / "data" / "prepared" / "meta.json").read_text())
    assert meta["source"].endswith("batch.parquet") and meta["rows"]["train"] > 100  # the pipeline ran on the batch
    assert json.loads((root / "metrics" / "blessing.json").read_text())["passed"] in (
        True,
        False,
    )  # and the gate decided
