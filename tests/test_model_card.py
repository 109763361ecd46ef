"""The model card: every section carries the manifest's, the gate's and the slices' numbers, in
Markdown and in self-contained HTML, with every value escaped."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import champion

from automlops.config.schema import CardConfig
from automlops.deploy.card import write_model_card
from automlops.records import Blessing, Manifest

MANIFEST: dict[str, Any] = {
    "format_version": 1,
    "name": "penguins",
    "version": 3,
    "created_at": "2026-11-28T03:05:28+00:00",
    "task": "multiclass",
    "target": "species",
    "classes": ["Adelie", "Chinstrap", "Gentoo"],
    "decision_threshold": None,
    "input_schema": [
        {
            "name": "island",
            "kind": "categorical",
            "dtype": "object",
            "nullable": False,
            "categories": ["Biscoe", "Dream", "Torgersen"],
            "min": None,
            "max": None,
        },
        {
            "name": "bill_length_mm",
            "kind": "numeric",
            "dtype": "float64",
            "nullable": True,
            "categories": [],
            "min": 32.1,
            "max": 59.6,
        },
        {
            "name": "sex",
            "kind": "categorical",
            "dtype": "object",
            "nullable": True,
            "categories": ["female", "male|other"],
            "min": None,
            "max": None,
        },
    ],
    "metrics": {
        "validation": {"neg_log_loss": -0.0712345678},
        "test": {"accuracy": 0.971014, "f1_macro": 0.962963, "log_loss": 0.081234},
    },
    "model": {
        "engine": "optuna",
        "format": "sklearn",
        "family": "lightgbm",
        "params": {"n_estimators": 150, "learning_rate": 0.0523},
    },
    "lineage": {
        "data_hash": "sha256:ab12cd",
        "data_source": "builtin dataset penguins",
        "rows": {"train": 206, "valid": 69, "test": 69},
        "git_commit": "0123abcd-dirty",
        "python": "3.11.7",
        "packages": {"scikit-learn": "1.9.1", "lightgbm": "4.7.0"},
        "search": {"engine": "optuna", "study_name": "automlops-9f8e7d", "best_trial": 7, "trials_finished": 15},
    },
}
BLESSING: dict[str, Any] = {
    "passed": True,
    "checks": [
        {
            "metric": "log_loss",
            "kind": "max_worse",
            "value": 0.081234,
            "threshold": 0.0,
            "passed": True,
            "champion": 0.0934,
            "note": "",
            "summary": "log_loss 0.08123 vs champion 0.0934, may be worse by 0: ok",
        },
        {
            "metric": "accuracy",
            "kind": "min",
            "value": 0.971014,
            "threshold": 0.9,
            "passed": True,
            "champion": None,
            "note": "",
            "summary": "accuracy 0.971 >= 0.9: ok",
        },
    ],
    "infra": {
        "passed": True,
        "requests": 20,
        "rows_per_request": 5,
        "p50_ms": 4.21,
        "p95_ms": 7.83,
        "p95_limit_ms": 1000.0,
    },
    "champion": {"version": 2, "scored_on": "same test rows"},
}
SLICES = {
    "island": {
        "Biscoe": {"rows": 33, "accuracy": 0.969697, "log_loss": 0.0912},
        "Dream": {"rows": 25, "accuracy": 0.96, "log_loss": 0.1003},
        "Torgersen": {"rows": 8},
    }
}
CARD = CardConfig(
    intended_use="Sort penguins by species from field measurements.",
    out_of_scope="Other birds.",
    limitations="Three islands only.",
    owners=["ml-team@example.org", "Ada"],
)


def write(
    tmp_path: Path,
    manifest: dict = MANIFEST,
    blessing: dict | None = BLESSING,
    slices: dict | None = SLICES,
    card: CardConfig = CARD,
) -> tuple[str, str]:
    write_model_card(
        tmp_path, Manifest.from_dict(manifest), None if blessing is None else Blessing.from_dict(blessing), slices, card
    )
    return (tmp_path / "model_card.md").read_text(), (tmp_path / "model_card.html").read_text()


def section(markdown: str, title: str) -> str:
    return re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M).group(1)


def cells(markdown: str) -> list[list[str]]:
    """Table rows as lists of cells (escaped pipes stay inside their cell)."""
    return [
        [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_every_section_carries_its_numbers(tmp_path: Path) -> None:
    markdown, _ = write(tmp_path)
    assert markdown.startswith("# Model card: penguins v3\n")
    model = section(markdown, "Model")
    for line in (
        "- **Created:** 2026-11-28T03:05:28+00:00",
        "- **Task:** multiclass",
        "- **Target:** species",
        "- **Classes:** Adelie, Chinstrap, Gentoo",
        "- **Family:** lightgbm",
        "- **Parameters:** n_estimators=150, learning_rate=0.0523",
    ):
        assert line in model
    assert "Decision threshold" not in model  # none set
    use = section(markdown, "Intended use")
    assert "- **Out of scope:** Other birds." in use and "- **Owners:** ml-team@example.org, Ada" in use
    data = cells(section(markdown, "Data"))
    assert data[0] == ["feature", "kind", "dtype", "missing values", "values seen in training"]
    assert data[2:] == [
        ["island", "categorical", "object", "no", "Biscoe, Dream, Torgersen"],
        ["bill_length_mm", "numeric", "float64", "yes", "32.1 to 59.6"],
        ["sex", "categorical", "object", "yes", r"female, male\|other"],
    ]  # a pipe cannot split the row
    assert "- **Rows:** train 206, valid 69, test 69 (total 344)" in section(markdown, "Data")
    assert "- **Data hash:** sha256:ab12cd" in section(markdown, "Data")
    metrics = section(markdown, "Test metrics")
    assert cells(metrics)[2:] == [["accuracy", "0.971014"], ["f1_macro", "0.962963"], ["log_loss", "0.081234"]]
    assert "held-out test split (69 rows)" in metrics and "neg_log_loss=-0.0712346" in metrics
    assert cells(section(markdown, "Slices"))[2:] == [
        ["Biscoe", "33", "0.969697", "0.0912"],
        ["Dream", "25", "0.96", "0.1003"],
        ["Torgersen", "8", "–", "–"],
    ]
    gate = section(markdown, "Gate")
    assert "- **Verdict:** passed" in gate and "- **Compared with:** champion v2 (same test rows)" in gate
    assert cells(gate)[2:] == [
        ["log_loss", "max_worse", "0.081234", "0", "yes", "0.0934", "–"],
        ["accuracy", "min", "0.971014", "0.9", "yes", "–", "–"],
    ]
    assert "- **p95_ms:** 7.83" in gate and "- **requests:** 20" in gate
    lineage = section(markdown, "Lineage")
    for line in (
        "- **Git commit:** 0123abcd-dirty",
        "- **Search study name:** automlops-9f8e7d",
        "- **Search best trial:** 7",
        "- **Python:** 3.11.7",
    ):
        assert line in lineage
    assert ["lightgbm", "4.7.0"] in cells(lineage)


def test_html_holds_the_same_data_and_nothing_external(tmp_path: Path) -> None:
    _, html = write(tmp_path)
    page = parse(html)
    text = " ".join(page.text)
    for value in (
        "penguins v3",
        "0.971014",
        "Biscoe, Dream, Torgersen",
        "32.1 to 59.6",
        "champion v2 (same test rows)",
        "automlops-9f8e7d",
        "0123abcd-dirty",
        "Sort penguins by species from field measurements.",
        "7.83",
    ):
        assert value in text, value
    assert page.tags.count("section") == 7 and page.tags.count("table") == 5
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert not [value for _, value in page.attrs if value and re.search(r"https?:|//", value)]  # no external asset


def test_fields_are_escaped_in_html_and_markdown(tmp_path: Path) -> None:
    card = CardConfig(
        intended_use="<script>alert('x')</script> & more",
        limitations="**bold** [link](javascript:alert(1))",
        owners=["<img src=x onerror=alert(1)>"],
    )
    markdown, html = write(tmp_path, card=card)
    page = parse(html)
    assert "script" not in page.tags and "img" not in page.tags
    assert "<script>alert('x')</script> & more" in page.text  # shown as text, exactly as written
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert "<script" not in markdown and "<img" not in markdown
    assert r"\*\*bold\*\* \[link](javascript:alert(1))" in markdown  # no emphasis, no link


def test_missing_blessing_slices_and_fields(tmp_path: Path) -> None:
    manifest = copy.deepcopy(MANIFEST)
    del manifest["version"]
    manifest["lineage"]["git_commit"] = None
    markdown, html = write(tmp_path, manifest=manifest, blessing=None, slices=None, card=CardConfig())
    assert markdown.startswith("# Model card: penguins\n")
    assert "not gated" in section(markdown, "Gate") and "not gated" in " ".join(parse(html).text)
    assert "No slice metrics" in section(markdown, "Slices")
    use = section(markdown, "Intended use")
    assert use.count("not stated") == 4
    assert "- **Git commit:** not in a git repository" in markdown


def test_a_failed_check_and_no_infra_run(tmp_path: Path) -> None:
    blessing = {
        **BLESSING,
        "passed": False,
        "infra": None,
        "champion": None,
        "checks": [{**BLESSING["checks"][1], "value": 0.85, "passed": False}],
    }
    gate = section(write(tmp_path, blessing=blessing)[0], "Gate")
    assert "- **Verdict:** FAILED" in gate and "no champion (first version)" in gate
    assert ["accuracy", "min", "0.85", "0.9", "no", "–", "–"] in cells(gate)
    assert "Infra validation: not run" in gate


@pytest.mark.slow
def test_card_of_a_real_release(penguins_run: tuple[Path, Any], tmp_path: Path) -> None:
    """The card the deploy stage sealed into a real version, and one written again from its
    manifest and blessing, carry the manifest's own numbers."""
    root, _ = penguins_run
    bundle = champion(root, "penguins")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {"model_card.md", "model_card.html"} <= set(manifest["files"])  # sealed with the version
    blessing = json.loads((bundle / "blessing.json").read_text())
    markdown, html = write(tmp_path, manifest=manifest, blessing=blessing, slices=None, card=CardConfig())
    metrics = dict(row for row in cells(section(markdown, "Test metrics"))[2:])
    assert metrics == {name: f"{value:.6g}" for name, value in manifest["metrics"]["test"].items()}
    features = cells(section(markdown, "Data"))[2:]
    assert [row[0] for row in features] == [column["name"] for column in manifest["input_schema"]]
    assert f"- **Version:** {manifest['version']}" in markdown and "- **Verdict:** passed" in markdown
    assert f"- **Search study name:** {manifest['lineage']['search']['study_name']}" in markdown
    sealed = (bundle / "model_card.md").read_text()
    assert section(sealed, "Test metrics") == section(markdown, "Test metrics")


def test_an_ensemble_lists_its_members_and_why_it_was_chosen(tmp_path: Path) -> None:
    """search.ensemble_size: one line per member (weight, trial, family, params), and the scores that chose it."""
    manifest = copy.deepcopy(MANIFEST)
    members = [
        {"trial": 4, "weight": 0.75, "family": "lightgbm", "params": {"n_estimators": 150}},
        {"trial": 9, "weight": 0.25, "family": "linear", "params": {"alpha": 0.5, "preprocess.scaler": "standard"}},
    ]
    manifest["model"].update(family="ensemble", params={"members": members})
    manifest["lineage"]["search"]["ensemble"] = {
        "members": [{k: m[k] for k in ("trial", "family", "weight")} for m in members],
        "valid_score": -0.061,
        "best_single_valid_score": -0.0712345678,
        "rounds": 25,
    }
    markdown, _ = write(tmp_path, manifest)
    assert (
        "- **Members:** 0.75 x trial 4 lightgbm (n_estimators=150); "
        "0.25 x trial 9 linear (alpha=0.5, preprocess.scaler=standard)"
    ) in section(markdown, "Model")
    assert "Parameters" not in section(markdown, "Model")
    assert (
        "- **Search ensemble:** 2 members chosen in 25 rounds of greedy selection: validation score -0.061 against "
        "the best single trial's -0.0712346"
    ) in markdown
