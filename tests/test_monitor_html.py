"""The HTML drift report: one self-contained file with a chart per column, escaped, drawn by a real browser."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import champion

from automlops.config.schema import MonitorConfig
from automlops.monitor.drift import ColumnTest, column_drift
from automlops.monitor.html import CURRENT_COLOUR, HEIGHT, REFERENCE_COLOUR, render_html
from automlops.monitor.stats import CATEGORICAL, NUMERIC, categorical_statistics, table_statistics
from automlops.monitor.verdict import decide

ODD = "<b>x</b>&"  # a column name that breaks the page unless escaped
KINDS = {"age": NUMERIC, ODD: CATEGORICAL}
TESTS = {"age": ColumnTest("wasserstein", 0.1), ODD: ColumnTest("jensenshannon", 0.1)}


def frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, rows).round(1),
            ODD: rng.choice(["a", "b", "<i>c&d</i>"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


def build_report(batch: pd.DataFrame | None = None, source: str = "data/<incoming>&.csv") -> dict[str, Any]:
    """A report in monitor_batch's shape, from the real statistics and drift tests (no bundle needed)."""
    reference_frame = frame(400, seed=0, shift=0)
    batch = frame(300, seed=1, shift=15) if batch is None else batch
    reference = table_statistics(reference_frame, KINDS)
    columns = {
        name: column_drift(name, kind, reference["columns"][name], batch[name], TESTS[name], 0.05)
        for name, kind in KINDS.items()
    }
    predictions = (batch["age"] > 45).map({True: "old", False: "young"})
    ref_predictions = categorical_statistics((reference_frame["age"] > 45).map({True: "old", False: "young"}))
    prediction = column_drift(
        "prediction", CATEGORICAL, {**ref_predictions, "rows": 400}, predictions, ColumnTest("chisquare", 0.05), 0.05
    )
    drifted = [name for name, entry in columns.items() if entry["drifted"]]
    performance = {
        "metric": "accuracy",
        "reference": 0.91,
        "current": 0.78,
        "rows": 120,
        "drop": 0.143,
        "threshold": 0.05,
        "worse": 0.13,
    }
    verdict = decide(drifted, 2, performance, MonitorConfig())
    return {
        "created_at": "2024-05-01T12:00:00+00:00",
        "model": {"name": "people", "version": 3, "task": "binary", "target": "label"},
        "reference": {"rows": len(reference_frame), "data_hash": "abc123def4567890"},
        "batch": {"source": source, "rows": len(batch)},
        "dataset_drift": {
            "drifted": verdict.dataset,
            "share": verdict.share,
            "threshold": verdict.threshold,
            "drifted_columns": drifted,
            "missing_columns": [],
            "columns": 2,
        },
        "columns": columns,
        "prediction_drift": prediction,
        "performance": performance | {"drifted": verdict.performance},
        "drift": verdict.drift,
        "verdict": verdict,
    }


class Svgs(HTMLParser):
    """The attributes of every <svg> (unescaped, as a browser reads them)."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.svgs.append(dict(attrs))


def plots(page: str) -> list[str]:
    parser = Svgs()
    parser.feed(page)
    return [str(svg["data-column"]) for svg in parser.svgs if svg.get("class") == "plot"]


def section(page: str, name: str) -> str:
    """The HTML of one column's section, found through its chart."""
    start = page.index(f'data-column="{name}"')
    return page[page.rindex("<section", 0, start) : page.index("</section>", start)]


def test_one_chart_per_column_and_one_for_the_predictions() -> None:
    report = build_report()
    page = render_html(report)
    assert sorted(plots(page)) == sorted([*KINDS, "prediction"])
    for name, entry in report["columns"].items():  # every bin or level drawn: two bars each, each with a tooltip
        bars = section(page, name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")).count("<rect")
        levels = len(entry["reference"]["histogram"]["counts"]) if entry["kind"] == NUMERIC else 3
        assert bars == 2 * levels + 2  # + the legend's two swatches
    assert page.count("<title>") >= 2 * (20 + 3)


def test_drifted_columns_come_first_and_are_marked_in_words() -> None:
    report = build_report()
    assert report["columns"]["age"]["drifted"] and not report["columns"][ODD]["drifted"]
    page = render_html(report)
    summary = page[page.index("<table>") : page.index("</table>")]
    assert summary.index(">age<") < summary.index("&lt;b&gt;x")
    drifted, steady = section(page, "age"), section(page, "&lt;b&gt;x&lt;/b&gt;&amp;")
    assert 'class="drifted"' in drifted and "DRIFTED" in drifted
    assert "drifted" not in steady.split(">")[0] and "DRIFTED" not in steady and "no drift" in steady
    assert "DRIFT DETECTED" in page and "distance" in page and "p-value" in page
    assert "accuracy" in page and "0.78" in page  # the performance verdict


def test_user_strings_are_escaped() -> None:
    page = render_html(build_report())
    for raw in (ODD, "<i>c&d</i>", "data/<incoming>&.csv"):
        assert raw not in page
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in page and "&lt;i&gt;c&amp;d&lt;/i&gt;" in page
    assert "data/&lt;incoming&gt;&amp;.csv" in page
    assert ODD in plots(page)  # the attribute reads back as the real name


def test_the_page_is_self_contained() -> None:
    page = render_html(build_report()).lower()
    for reference in ("http://", "https://", "src=", "<script", "<link", "url(", "@import", "<img"):
        assert reference not in page, reference


def test_edge_cases_render() -> None:
    """No values on a side (statistic None), an infinite distance, many levels, a skipped prediction test."""
    batch = frame(300, seed=1, shift=0)
    batch["age"] = np.nan
    batch[ODD] = [f"level {i % 40}" for i in range(300)]
    report = build_report(batch) | {"prediction_drift": {"skipped": "the bundle holds no <reference> predictions"}}
    report["columns"]["age"]["statistic"] = None
    report["columns"][ODD]["statistic"] = math.inf
    page = render_html(report)
    assert "n/a (no values to compare)" in page and "∞" in page
    assert "Skipped: the bundle holds no &lt;reference&gt; predictions" in page
    # 40 new levels in the batch: its 10 most frequent are named beside the reference's 3, the others pooled on one bar
    assert sum(f">level {i}<" in page for i in range(40)) == 10 and "rare levels" in page
    assert sorted(plots(page)) == sorted(KINDS)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    message = "chromium not installed (make setup-test installs it with apt-get when run as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def near(pixels: np.ndarray, colour: str, tolerance: int = 8) -> np.ndarray:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(pixels.astype(int) - rgb) <= tolerance, axis=-1)


@pytest.mark.timeout(90)
def test_headless_chromium_draws_the_bars(tmp_path: Path) -> None:
    """The page opens offline in a real browser and its first chart shows both bar colours (not just its legend)."""
    from PIL import Image

    browser = chromium()
    page, png = tmp_path / "monitor.html", tmp_path / "monitor.png"
    page.write_text(render_html(build_report()), encoding="utf-8")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,1600",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert png.exists(), done.stderr[-2000:]
    with Image.open(png) as image:
        assert image.size == (1200, 1600)
        pixels = np.asarray(image.convert("RGB"))
    reference = near(pixels, REFERENCE_COLOUR)
    rows = np.flatnonzero(reference.any(axis=1))
    assert len(rows), "no reference-coloured pixel in the screenshot: the charts were not drawn"
    top = rows[0]  # the first chart's legend: the first bar colour from the top of the page
    region = pixels[top + 20 : top + HEIGHT]  # the plot area under the legend
    assert near(region, REFERENCE_COLOUR).sum() > 500 and near(region, CURRENT_COLOUR).sum() > 500


@pytest.mark.slow
def test_a_real_bundles_report_renders(penguins_run: tuple[Path, Any]) -> None:
    """monitor_batch on a packaged bundle and a shifted batch: a chart for every input column and the predictions."""
    from automlops.bundle import load_bundle
    from automlops.monitor.report import monitor_batch

    root, _ = penguins_run
    bundle = load_bundle(champion(root, "penguins"))
    batch = pd.read_csv(root / "data" / "raw" / "penguins.csv")
    batch["bill_length_mm"] += 15
    report = monitor_batch(bundle, batch, MonitorConfig(), "data/<raw>/penguins.csv")
    page = render_html(report)
    names = [spec.name for spec in bundle.contract]
    assert sorted(plots(page)) == sorted([*names, "prediction"])
    assert 'class="drifted"' in section(page, "bill_length_mm")
    assert "data/&lt;raw&gt;/penguins.csv" in page and "http" not in page
