"""The model card: one page per released version that says what the model is, what it was trained
and tested on, how it scored (overall and per slice), what the gate checked, where it came from and
what it is for (deploy.card). Written as model_card.md and model_card.html, both rendered from the
same sections; the HTML is self-contained (inline style, no script, no external asset) and every
value is escaped in both.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automlops.config.schema import CardConfig
from automlops.io import write_text_atomic
from automlops.records import ENSEMBLE, Blessing, Manifest

NOT_STATED = "not stated"
EMPTY = "–"
MAX_CATEGORIES = 12  # categories listed per feature before "… (+n more)"


@dataclass
class Text:
    text: str


@dataclass
class Fields:
    items: list[tuple[str, Any]]  # label -> value, rendered as a definition list


@dataclass
class Table:
    header: list[str]
    rows: list[list[Any]]
    caption: str = ""


Block = Text | Fields | Table


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def write_model_card(
    folder: Path, manifest: Manifest, blessing: Blessing | None, slices: dict[str, Any] | None, card: CardConfig
) -> None:
    """Write model_card.md and model_card.html into `folder` (the release, before it is sealed)."""
    title, sections = card_sections(manifest, blessing, slices, card)
    write_text_atomic(Path(folder) / "model_card.md", render_markdown(title, sections))
    write_text_atomic(Path(folder) / "model_card.html", render_html(title, sections))


def card_sections(
    manifest: Manifest, blessing: Blessing | None, slices: dict[str, Any] | None, card: CardConfig
) -> tuple[str, list[Section]]:
    version = manifest.version
    title = f"Model card: {manifest.name}" + (f" v{version}" if version is not None else "")
    return title, [
        _model(manifest),
        _intended_use(card),
        _data(manifest),
        _metrics(manifest),
        _slices(slices),
        _gate(blessing),
        _lineage(manifest),
    ]


# ---- sections -----------------------------------------------------------------------------------


def _model(manifest: Manifest) -> Section:
    model = manifest.model
    items: list[tuple[str, Any]] = [
        ("Name", manifest.name),
        ("Version", manifest.version),
        ("Created", manifest.created_at),
        ("Task", manifest.task),
        ("Target", manifest.target),
    ]
    if manifest.classes:
        items.append(("Classes", manifest.classes))
    if manifest.positive_class is not None:
        items.append(("Positive class", manifest.positive_class))
    if manifest.decision_threshold is not None:
        items.append(("Decision threshold", manifest.decision_threshold))
    items += [
        ("Engine", model.engine),
        ("Family", model.family),
        ("Format", model.format),
    ]
    if model.family == ENSEMBLE:  # search.ensemble_size: each member on its own line of one field
        items.append(("Members", "; ".join(_member(m) for m in model.params.get("members", [])) or EMPTY))
    else:
        items.append(("Parameters", model.params or EMPTY))
    if manifest.refit is not None:
        refit = manifest.refit
        items.append(("Refit", f"on all {refit.rows} labelled rows ({' + '.join(refit.splits)}) after the gate"))
    return Section("Model", [Fields(items)])


def _intended_use(card: CardConfig) -> Section:
    return Section(
        "Intended use",
        [
            Fields(
                [
                    ("Intended use", card.intended_use.strip() or NOT_STATED),
                    ("Out of scope", card.out_of_scope.strip() or NOT_STATED),
                    ("Limitations", card.limitations.strip() or NOT_STATED),
                    ("Owners", list(card.owners) or NOT_STATED),
                ]
            )
        ],
    )


def _data(manifest: Manifest) -> Section:
    lineage = manifest.lineage
    rows = lineage.rows
    items: list[tuple[str, Any]] = [("Source", lineage.data_source), ("Data hash", lineage.data_hash)]
    if rows:
        items.append(
            ("Rows", ", ".join(f"{split} {count}" for split, count in rows.items()) + f" (total {sum(rows.values())})")
        )
    features = [
        [c.get("name"), c.get("kind"), c.get("dtype"), "yes" if c.get("nullable") else "no", _values(c)]
        for c in manifest.input_schema
    ]
    blocks: list[Block] = [
        Fields(items),
        Table(
            ["feature", "kind", "dtype", "missing values", "values seen in training"],
            features,
            f"{len(features)} input feature(s)",
        ),
    ]
    dropped = [[item.get("column"), item.get("reason")] for item in manifest.dropped_columns or []]
    if dropped:  # prepare's column rules: what the model was not given, and why
        blocks.append(Table(["column", "reason"], dropped, f"{len(dropped)} column(s) dropped by prepare"))
    return Section("Data", blocks)


def _values(column: dict[str, Any]) -> str:
    categories = column.get("categories") or []
    if categories:
        more = f" … (+{len(categories) - MAX_CATEGORIES} more)" if len(categories) > MAX_CATEGORIES else ""
        return ", ".join(_format(c) for c in categories[:MAX_CATEGORIES]) + more
    if column.get("min") is not None or column.get("max") is not None:
        return f"{_format(column.get('min'))} to {_format(column.get('max'))}"
    return EMPTY


def _metrics(manifest: Manifest) -> Section:
    metrics = manifest.metrics
    blocks: list[Block] = [
        Table(
            ["metric", "value"],
            [[name, value] for name, value in metrics.test.items()],
            f"held-out test split ({manifest.lineage.rows.get('test', '?')} rows)",
        )
    ]
    if metrics.estimate_from:  # deploy.refit_all_rows: the served model has no held-out score of its own
        blocks.insert(0, Text(f"Estimated from {metrics.estimate_from}."))
    if metrics.validation:
        blocks.append(Fields([("Search validation", metrics.validation)]))
    return Section("Test metrics", blocks)


def _slices(slices: dict[str, Any] | None) -> Section:
    if not slices:
        return Section("Slices", [Text("No slice metrics (evaluate.slices lists no column).")])
    blocks: list[Block] = []
    for column, per_slice in slices.items():
        names = list(dict.fromkeys(metric for values in per_slice.values() for metric in values if metric != "rows"))
        rows = [
            [label, values.get("rows"), *[values.get(metric) for metric in names]]
            for label, values in per_slice.items()
        ]
        blocks.append(Table(["slice", "rows", *names], rows, f"by {column}"))
    if any(set(values) == {"rows"} for per_slice in slices.values() for values in per_slice.values()):
        blocks.append(
            Text(f"{EMPTY}: a slice too small for metrics (evaluate.min_slice_rows); only its size is given.")
        )
    return Section("Slices", blocks)


def _gate(blessing: Blessing | None) -> Section:
    if blessing is None:
        return Section("Gate", [Text("not gated: no gate record came with this version.")])
    champion = blessing.champion
    items: list[tuple[str, Any]] = [("Verdict", "passed" if blessing.passed else "FAILED")]
    comparison = blessing.comparison
    if comparison:  # the gate's decision: the rows both models were scored on, or what gate.incomparable chose
        items += [
            ("Compared with", f"champion v{champion.version if champion else None}"),
            ("Compared on", comparison["summary"]),
        ]
    else:
        items.append(
            (
                "Compared with",
                f"champion v{champion.version} ({champion.scored_on})"
                if champion and champion.version
                else "no champion (first version)",
            )
        )
    blocks: list[Block] = [Fields(items)]
    checks = blessing.checks
    if checks:
        header = list(dict.fromkeys(key for check in checks for key in check if key != "summary"))
        blocks.append(Table(header, [[check.get(key) for key in header] for check in checks], "checks"))
    else:
        blocks.append(Text("No metric checks configured (gate.checks is empty)."))
    infra = blessing.infra
    if infra:
        blocks += [
            Text("Infra validation: the bundle was served and queried before promotion."),
            Fields(list(infra.items())),
        ]
    else:
        blocks.append(Text("Infra validation: not run (gate.infra.enabled is false)."))
    return Section("Gate", blocks)


def _lineage(manifest: Manifest) -> Section:
    lineage = manifest.lineage
    items: list[tuple[str, Any]] = [
        ("Git commit", lineage.git_commit or "not in a git repository"),
        ("Python", lineage.python),
    ]
    items += [
        (f"Search {key.replace('_', ' ')}", _ensemble_lineage(value) if key == ENSEMBLE and value else value)
        for key, value in lineage.search.items()
    ]
    rows = manifest.training_rows
    items.append(
        (
            "Training rows",
            f"{rows.rows} rows of {'+'.join(rows.splits)}, their hashes in {rows.file} (the gate never "
            "scores the model on them)"
            if rows
            else "not recorded (packaged before automlops recorded them)",
        )
    )
    packages = [[name, version] for name, version in lineage.packages.items()]
    return Section("Lineage", [Fields(items), Table(["package", "version"], packages, "libraries that trained it")])


# ---- rendering ----------------------------------------------------------------------------------


def _member(member: dict[str, Any]) -> str:
    return f"{_format(member.get('weight'))} x trial {member.get('trial')} {member.get('family')} ({_format(member.get('params'))})"


def _ensemble_lineage(ensemble: dict[str, Any]) -> str:
    return (
        f"{len(ensemble.get('members', []))} members chosen in {ensemble.get('rounds')} rounds of greedy selection: "
        f"validation score {_format(ensemble.get('valid_score'))} against the best single trial's "
        f"{_format(ensemble.get('best_single_valid_score'))}"
    )


def _format(value: Any) -> str:
    """One value as text: numbers to 6 significant digits, lists joined, mappings as key=value."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value) or EMPTY
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format(v)}" for k, v in value.items()) or EMPTY
    return str(value)


def _md(value: Any) -> str:
    """A value for Markdown: HTML-escaped (no raw HTML reaches a renderer), then the characters that
    would start code, emphasis, a link or a table cell backslash-escaped."""
    text = html.escape(_format(value), quote=False)
    return re.sub(r"([\\`*\[|])", r"\\\1", text).replace("\n", "<br>")


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {_md(title)}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                lines += [_md(block.text), ""]
            elif isinstance(block, Fields):
                lines += [f"- **{label}:** {_md(value)}" for label, value in block.items] + [""]
            else:
                if block.caption:
                    lines += [f"*{_md(block.caption)}*", ""]
                lines += ["| " + " | ".join(_md(h) for h in block.header) + " |", "|" + "---|" * len(block.header)]
                lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in block.rows] + [""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}caption{text-align:left;font-style:italic;padding:.2rem 0}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0;white-space:pre-line}"""


def _h(value: Any) -> str:
    return html.escape(_format(value), quote=True)


def render_html(title: str, sections: list[Section]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # no script or remote resource can run or load, even from a value that escaped escaping
        """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">""",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_h(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{_h(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(f"<p>{_h(block.text)}</p>")
            elif isinstance(block, Fields):
                parts.append(
                    "<dl>"
                    + "".join(f"<dt>{_h(label)}</dt><dd>{_h(value)}</dd>" for label, value in block.items)
                    + "</dl>"
                )
            else:
                caption = f"<caption>{_h(block.caption)}</caption>" if block.caption else ""
                head = "".join(f"<th>{_h(h)}</th>" for h in block.header)
                body = "".join("<tr>" + "".join(f"<td>{_h(cell)}</td>" for cell in row) + "</tr>" for row in block.rows)
                parts.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
