"""The evaluate stage: test metrics checked against scikit-learn on real models and data, the
decision threshold (in evaluation and when serving), per-slice metrics, the DVC plot tables, the
config errors, and `dvc plots show` rendering a real pipeline's plots."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, cli, dvc, snapshot
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from automlops.bundle import Bundle
from automlops.checks import to_typed
from automlops.config.compose import compose
from automlops.config.schema import EvaluateConfig
from automlops.data.contract import infer_contract
from automlops.errors import ConfigError
from automlops.evaluate.evaluation import evaluate
from automlops.evaluate.metrics import calibration_table, predict, test_metrics
from automlops.evaluate.names import HIGHER_IS_BETTER, metric_names, primary_metric
from automlops.evaluate.plots import PLOT_FILES
from automlops.evaluate.slices import check_slice_columns
from automlops.records import Manifest
from automlops.scoring import predict_frame

NO_PLOTS = EvaluateConfig(plots=False)


def _split(x: pd.DataFrame, y: pd.Series, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[: len(x) // 2], order[len(x) // 2 :]
    return x.iloc[train], y.iloc[train], x.iloc[test].reset_index(drop=True), y.iloc[test].reset_index(drop=True)


@pytest.fixture(scope="module")
def binary() -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    """A weak-ish logistic regression on 4 breast_cancer features, so that errors and thresholds matter."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x[["mean radius", "mean texture", "mean smoothness", "mean symmetry"]]
    x_train, y_train, x_test, y_test = _split(x, y)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train), x_test, y_test


@pytest.fixture(scope="module")
def multiclass() -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    x, y = load_iris(return_X_y=True, as_frame=True)
    y = y.map({0: "setosa", 1: "versicolor", 2: "virginica"})
    x_train, y_train, x_test, y_test = _split(x[["sepal length (cm)", "sepal width (cm)"]], y)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train), x_test, y_test


@pytest.fixture(scope="module")
def regression() -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    x = x.assign(noise=np.random.default_rng(1).normal(size=len(x)))  # a feature that carries nothing
    x_train, y_train, x_test, y_test = _split(x, y)
    return make_pipeline(Ridge(alpha=0.1)).fit(x_train, y_train), x_test, y_test


def test_binary_metrics_match_scikit_learn(binary) -> None:
    model, x, y = binary
    metrics = test_metrics(model, x, y, "binary")
    assert (
        list(metrics)
        == metric_names("binary")
        == ["accuracy", "balanced_accuracy", "f1", "f1_macro", "log_loss", "roc_auc", "pr_auc", "brier", "ece"]
    )
    predicted, positive = model.predict(x), model.predict_proba(x)[:, 1]
    expected = {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "f1_macro": skm.f1_score(y, predicted, average="macro"),
        "log_loss": skm.log_loss(y, model.predict_proba(x)),
        "roc_auc": skm.roc_auc_score(y, positive),
        "pr_auc": skm.average_precision_score(y, positive),
        "brier": skm.brier_score_loss(y, positive),
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-6), name
    assert 0.8 < metrics["roc_auc"] < 1 and metrics["accuracy"] < 1  # a model that learned, but not perfectly

    # ECE: the row-weighted gap of sklearn's own calibration curve (10 uniform bins)
    observed, mean_predicted = calibration_curve(y, positive, n_bins=10)
    table = calibration_table(predict(model, x, y, "binary"), "binary")
    assert table["predicted"].to_numpy() == pytest.approx(mean_predicted)
    assert table["observed"].to_numpy() == pytest.approx(observed)
    assert table["rows"].sum() == len(y)
    gap = np.abs(mean_predicted - observed)
    assert metrics["ece"] == pytest.approx(np.average(gap, weights=table["rows"]), abs=1e-6)
    assert metrics["ece"] > 0


def test_multiclass_metrics_match_scikit_learn(multiclass) -> None:
    model, x, y = multiclass
    metrics = test_metrics(model, x, y, "multiclass")
    assert (
        list(metrics)
        == metric_names("multiclass")
        == ["accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr", "ece"]
    )
    proba, predicted = model.predict_proba(x), model.predict(x)
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-6)
    assert metrics["f1_macro"] == pytest.approx(skm.f1_score(y, predicted, average="macro"), abs=1e-6)
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=1e-6)
    assert metrics["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-6)
    # top-label ECE, bin by bin: bin 0 is [0, 0.1], bin i is (i/10, (i+1)/10]
    confidence, right = proba.max(axis=1), (model.classes_[proba.argmax(axis=1)] == y).to_numpy()
    edges, ece = np.linspace(0, 1, 11), 0.0
    for i in range(10):
        inside = (confidence <= edges[i + 1]) & ((confidence > edges[i]) if i else True)
        if inside.any():
            ece += inside.sum() / len(y) * abs(confidence[inside].mean() - right[inside].mean())
    assert metrics["ece"] == pytest.approx(ece, abs=1e-6) and ece > 0


def test_regression_metrics_match_scikit_learn(regression) -> None:
    model, x, y = regression
    metrics = test_metrics(model, x, y, "regression")
    predicted = model.predict(x)
    assert metrics == pytest.approx(
        {
            "rmse": skm.root_mean_squared_error(y, predicted),
            "mae": skm.mean_absolute_error(y, predicted),
            "r2": skm.r2_score(y, predicted),
            "mape": skm.mean_absolute_percentage_error(y, predicted),
        },
        abs=1e-6,
    )
    assert list(metrics) == metric_names("regression")


def test_metric_directions_and_primary_metrics() -> None:
    names = {name for task in ("binary", "multiclass", "regression") for name in metric_names(task)}
    assert set(HIGHER_IS_BETTER) == names
    assert [primary_metric(t) for t in ("binary", "multiclass", "regression")] == ["roc_auc", "log_loss", "rmse"]
    assert not HIGHER_IS_BETTER["log_loss"] and not HIGHER_IS_BETTER["ece"] and HIGHER_IS_BETTER["pr_auc"]
    with pytest.raises(ValueError, match="task must be one of"):
        metric_names("ranking")


def test_a_class_missing_from_the_rows_drops_the_metrics_that_need_both(binary) -> None:
    model, x, y = binary
    negatives = (y == 0).to_numpy()
    metrics = test_metrics(model, x[negatives], y[negatives], "binary")
    assert set(metrics) == {"accuracy", "balanced_accuracy", "f1_macro", "log_loss", "brier", "ece"}
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y[negatives], model.predict(x[negatives])), abs=1e-6)


def test_threshold_moves_the_decision_not_the_probabilities(binary, multiclass) -> None:
    model, x, y = binary
    default = test_metrics(model, x, y, "binary")
    strict = test_metrics(model, x, y, "binary", threshold=0.9)
    predicted = np.where(model.predict_proba(x)[:, 1] >= 0.9, 1, 0)
    assert (predicted != model.predict(x)).sum() > 10  # the threshold really changes decisions
    assert strict["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted), abs=1e-6)
    assert strict["f1"] == pytest.approx(skm.f1_score(y, predicted), abs=1e-6)
    assert strict["accuracy"] != default["accuracy"]
    for name in ("log_loss", "roc_auc", "pr_auc", "brier", "ece"):
        assert strict[name] == default[name], name
    # a threshold means nothing for other tasks: ignored
    model3, x3, y3 = multiclass
    assert test_metrics(model3, x3, y3, "multiclass", threshold=0.9) == test_metrics(model3, x3, y3, "multiclass")


def _bundle(model: Pipeline, x: pd.DataFrame, task: str, threshold: float | None) -> Bundle:
    schema = [spec.to_dict() for spec in infer_contract(x)]
    return Bundle(
        Path("unused"),
        Manifest.from_dict({"task": task, "decision_threshold": threshold, "input_schema": schema}),
        model,
    )


def test_serving_applies_the_bundles_decision_threshold(binary, multiclass) -> None:
    model, x, y = binary
    strict = predict_frame(_bundle(model, x, "binary", 0.9), x)
    assert strict["prediction"].tolist() == np.where(model.predict_proba(x)[:, 1] >= 0.9, 1, 0).tolist()
    assert (strict["prediction"].to_numpy() != model.predict(x)).sum() > 10
    assert strict["proba_1"].to_numpy() == pytest.approx(model.predict_proba(x)[:, 1])
    # without probabilities in the output, the threshold still decides
    assert (
        predict_frame(_bundle(model, x, "binary", 0.9), x, probabilities=False)["prediction"].tolist()
        == strict["prediction"].tolist()
    )
    # what serving predicts is what evaluation measured
    p = predict(model, x, y, "binary", threshold=0.9)
    assert strict["prediction"].tolist() == p.predicted.tolist()
    # no threshold: the model's own decision
    assert predict_frame(_bundle(model, x, "binary", None), x)["prediction"].tolist() == model.predict(x).tolist()
    # a multiclass bundle ignores a threshold
    model3, x3, _ = multiclass
    assert (
        predict_frame(_bundle(model3, x3, "multiclass", 0.9), x3)["prediction"].tolist() == model3.predict(x3).tolist()
    )


def test_slices_by_category_and_by_quantile_bin(binary) -> None:
    model, x, y = binary
    # a column the model never sees (as a split column would be), with an empty value and a tiny slice
    site = np.where(x["mean texture"] > x["mean texture"].median(), "north", "south").astype(object)
    site[:3], site[3] = None, "island"
    test = x.assign(target=y, site=site)
    cfg = EvaluateConfig(slices=["site", "mean radius", "target"], slice_bins=3, min_slice_rows=5, plots=False)
    slices = evaluate(model, test, list(x.columns), "target", "binary", cfg, seed=0).slices

    assert list(slices["site"]) == ["island", "north", "south", "missing"]
    assert slices["site"]["island"] == {"rows": 1} and slices["site"]["missing"] == {
        "rows": 3
    }  # < min_slice_rows: size only
    north = (test["site"] == "north").to_numpy()
    assert slices["site"]["north"] == {"rows": int(north.sum()), **test_metrics(model, x[north], y[north], "binary")}

    bins = slices["mean radius"]
    assert len(bins) == 3 and sum(s["rows"] for s in bins.values()) == len(test)
    expected_rows = pd.qcut(x["mean radius"], 3).value_counts(sort=False).tolist()
    assert [s["rows"] for s in bins.values()] == expected_rows
    first = next(iter(bins))
    assert re.fullmatch(r"\[[\d.]+, [\d.]+\]", first), first
    assert float(first[1:].split(",")[0]) == pytest.approx(x["mean radius"].min())

    # slicing by the target: one class per slice, so no metric that needs both classes
    assert set(slices["target"]) == {"0", "1"}
    assert {"roc_auc", "pr_auc", "f1"}.isdisjoint(slices["target"]["0"]) and "accuracy" in slices["target"]["0"]


def test_unknown_slice_column_is_a_config_error_with_a_suggestion(binary) -> None:
    model, x, y = binary
    with pytest.raises(
        ConfigError,
        match=r"^evaluate\.slices: unknown value 'mean radus' \(did you mean 'mean radius'\?\); choose one of: ",
    ):
        evaluate(
            model, x.assign(target=y), list(x.columns), "target", "binary", EvaluateConfig(slices=["mean radus"]), 0
        )
    with pytest.raises(
        ConfigError, match=r"data/prepared/test\.parquet holds the features, the target and any split column"
    ):
        check_slice_columns(["year"], ["island", "species"])


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (
            ["evaluate.threshold=1.5"],
            [r"evaluate\.threshold: must be in \(0, 1\) \(a probability\), got 1\.5; or null"],
        ),
        (
            ["evaluate.slice_bins=1", "evaluate.importance_repeats=-1", "evaluate.min_slice_rows=0"],
            [
                r"evaluate\.slice_bins: must be >= 2",
                r"evaluate\.importance_repeats: must be >= 0",
                r"evaluate\.min_slice_rows: must be >= 1",
            ],
        ),
        (
            ["data=diabetes", "evaluate.threshold=0.3"],
            [r"evaluate\.threshold: applies to binary tasks only, but data\.task=regression"],
        ),
        (["evaluate.slices=[a,b,a]"], [r"evaluate\.slices: column\(s\) a listed more than once"]),
    ],
)
def test_evaluate_config_checks(overrides: list[str], messages: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        to_typed(compose(overrides, conf_dir=REPO / "conf"))
    for message in messages:
        assert re.search(message, str(caught.value)), str(caught.value)


def test_binary_plot_tables(binary) -> None:
    model, x, y = binary
    cfg = EvaluateConfig(threshold=0.7, importance_repeats=2)
    plots = evaluate(model, x.assign(target=y), list(x.columns), "target", "binary", cfg, seed=0).plots
    assert {name: list(table.columns) for name, table in plots.items()} == PLOT_FILES

    predicted = np.where(model.predict_proba(x)[:, 1] >= 0.7, 1, 0)
    confusion = plots["confusion.csv"]
    assert confusion.values.tolist() == [[str(a), str(p)] for a, p in zip(y, predicted)]  # the thresholded decisions
    fpr, tpr, _ = skm.roc_curve(y, model.predict_proba(x)[:, 1])
    assert plots["roc.csv"]["fpr"].to_numpy() == pytest.approx(fpr, abs=1e-6)
    assert plots["roc.csv"]["tpr"].to_numpy() == pytest.approx(tpr, abs=1e-6)
    # each point's threshold, used as evaluate.threshold, gives that point's true positive rate
    positive = model.predict_proba(x)[:, 1][(y == 1).to_numpy()]
    for _, point in plots["roc.csv"].iloc[1:].iterrows():
        assert (positive >= point["threshold"] - 1e-6).mean() == pytest.approx(point["tpr"], abs=1e-6)
    precision, recall, _ = skm.precision_recall_curve(y, model.predict_proba(x)[:, 1])
    assert plots["precision_recall.csv"]["precision"].to_numpy() == pytest.approx(precision, abs=1e-6)
    assert plots["calibration.csv"]["rows"].sum() == len(y)
    assert plots["residuals.csv"].empty

    importance = plots["importance.csv"]
    assert sorted(importance["feature"]) == sorted(x.columns)
    assert importance["importance"].is_monotonic_decreasing
    assert importance["importance"].iloc[0] > 0.01  # shuffling the best feature costs real roc_auc


def test_regression_plot_tables(regression) -> None:
    model, x, y = regression
    plots = evaluate(
        model, x.assign(target=y), list(x.columns), "target", "regression", EvaluateConfig(importance_repeats=3), seed=0
    ).plots
    residuals = plots["residuals.csv"]
    assert residuals["predicted"].to_numpy() == pytest.approx(model.predict(x), abs=1e-5)
    assert residuals["residual"].to_numpy() == pytest.approx(y - model.predict(x), abs=1e-5)
    for name in ("confusion.csv", "roc.csv", "precision_recall.csv", "calibration.csv"):
        assert plots[name].empty, name
    importance = plots["importance.csv"].set_index("feature")["importance"]
    assert importance.index[0] in ("bmi", "s5")  # diabetes' strongest predictors
    assert importance["bmi"] > 5  # rmse points lost when bmi is shuffled
    assert abs(importance["noise"]) < importance["bmi"] / 10

    none = evaluate(
        model, x.assign(target=y), list(x.columns), "target", "regression", EvaluateConfig(importance_repeats=0), seed=0
    )
    assert none.plots["importance.csv"].empty and not none.plots["residuals.csv"].empty
    off = evaluate(
        model, x.assign(target=y), list(x.columns), "target", "regression", replace(NO_PLOTS, slices=["sex"]), seed=0
    )
    assert all(table.empty for table in off.plots.values()) and off.metrics == test_metrics(model, x, y, "regression")
    assert sum(s["rows"] for s in off.slices["sex"].values()) == len(x)


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_dvc_plots_show_renders_the_evaluate_plots(project: Path) -> None:
    """A real pipeline up to evaluate (`dvc repro evaluate`), then `dvc plots show`: the HTML holds
    every plot that fits a binary task; a typo in evaluate.slices then fails the stage in one line."""
    _ok(cli("compose", "search.n_trials=2", "evaluate.threshold=0.4", "evaluate.slices=[mean radius]", cwd=project))
    _ok(dvc("repro", "evaluate", cwd=project))
    metrics = json.loads((project / "metrics" / "test.json").read_text())
    assert list(metrics) == metric_names("binary") and metrics["roc_auc"] > 0.9
    slices = json.loads((project / "metrics" / "slices.json").read_text())["mean radius"]
    test_rows = json.loads((project / "data" / "prepared" / "meta.json").read_text())["rows"]["test"]
    assert len(slices) == 4 and sum(s["rows"] for s in slices.values()) == test_rows
    assert "mean radius" in _ok(dvc("metrics", "show", cwd=project)).stdout  # slices.json is a DVC metric

    shown = _ok(dvc("plots", "show", cwd=project))
    assert "failed" not in shown.stdout + shown.stderr
    html = (project / "dvc_plots" / "index.html").read_text()
    specs = dict(
        re.findall(
            r'<div id = "metrics_plots_(\w+)_csv">\s*<script type = "text/javascript">\s*var spec = (.*?);\n', html
        )
    )
    assert set(specs) == {name.removesuffix(".csv") for name in PLOT_FILES}
    drawn = {name: json.loads(spec) for name, spec in specs.items() if spec != "{}"}
    assert set(drawn) == {"confusion", "roc", "precision_recall", "calibration", "importance"}  # residuals: header only
    assert len(drawn["confusion"]["data"]["values"]) == test_rows
    assert {row["feature"] for row in drawn["importance"]["data"]["values"]} >= {"mean radius", "worst area"}
    assert drawn["roc"]["data"]["values"][-1] | {"threshold": None} == {
        "fpr": "1.0",
        "tpr": "1.0",
        "threshold": None,
        "rev": "workspace",
    }

    _ok(cli("compose", "search.n_trials=2", "evaluate.slices=[mean radus]", cwd=project))
    before = snapshot(project, ("metrics",))
    failed = cli("stage", "evaluate", cwd=project)
    assert failed.returncode == 2
    assert (
        failed.stderr.strip()
        .splitlines()[-1]
        .startswith("error: evaluate.slices: unknown value 'mean radus' (did you mean 'mean radius'?)")
    )
    assert snapshot(project, ("metrics",)) == before
