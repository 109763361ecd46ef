"""The monitoring report as one self-contained HTML file: a person opens it offline in any browser.

Inline CSS and inline SVG drawn here from the report's numbers (no scripts, fonts, images or links), so
the file can be mailed, archived beside `monitor.json` or opened from a CI artifact as it is. Every
string that comes from data (column names, categories, paths) is escaped."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from automlops.monitor.drift import P_VALUE_METHODS
from automlops.monitor.stats import NUMERIC, OTHER
from automlops.monitor.verdict import Verdict

REFERENCE_COLOUR, CURRENT_COLOUR = "#4c78a8", "#f58518"  # the bars; the screenshot test looks for them
TOP_LEVELS = 20  # categories drawn one bar each; rarer ones share one bar
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 760, 280, 48, 30, 70  # chart size and margins, in px
CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px} h3{font-size:15px;margin:0 0 6px}
table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums} .meta{color:#555}
.badge{display:inline-block;padding:1px 8px;border-radius:3px;font-weight:600;color:#fff}
.bad{background:#b3261e} .ok{background:#2e7d32} .skip{background:#777}
.verdict{border-left:6px solid #2e7d32;padding:8px 12px;background:#f3f8f3;margin:12px 0}
.verdict.bad{border-color:#b3261e;background:#fbf1f0;color:#222}
section{border-left:4px solid #ccc;padding:4px 0 4px 12px;margin:18px 0} section.drifted{border-color:#b3261e}
svg text{font:11px system-ui,sans-serif;fill:#333}"""


def render_html(report: dict[str, Any]) -> str:
    columns = sorted(report["columns"].values(), key=lambda entry: not entry["drifted"])  # drifted first, stable
    prediction = report.get("prediction_drift")
    model = report["model"]
    title = f"Drift report: {model.get('name')} v{model.get('version')}"
    body = [f"<h1>{escape(title)}</h1>", _header(report), "<h2>Columns</h2>", _summary(report, columns)]
    body += ["<h2>Per column</h2>", *(_section(entry, report) for entry in columns)]
    if prediction is not None:
        body.append("<h2>Predictions</h2>")
        body.append(
            f"<p>Skipped: {escape(prediction['skipped'])}</p>"
            if "skipped" in prediction
            else _section(prediction, report, "reference: test-split predictions at packaging")
        )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _header(report: dict[str, Any]) -> str:
    model, batch, reference, dataset = report["model"], report["batch"], report["reference"], report["dataset_drift"]
    verdict: Verdict = report["verdict"]
    lines = [
        f"model <b>{escape(str(model.get('name')))}</b> v{escape(str(model.get('version')))} "
        f"({escape(str(model.get('task')))}, target {escape(str(model.get('target')))})",
        f"batch <code>{escape(str(batch['source']))}</code>: {batch['rows']:,} rows; "
        f"training reference: {reference['rows']:,} rows (data {escape(str(reference.get('data_hash') or '?').split(':')[-1][:12])})",
        f"created {escape(str(report.get('created_at', '')))}",
    ]
    share = f"{len(dataset['drifted_columns'])} of {dataset['columns']} columns drifted ({_pct(dataset['share'])}; threshold {_pct(dataset['threshold'])})"
    verdicts = [f"Dataset drift: {_badge(verdict.dataset)} {share}"]
    if dataset["missing_columns"]:
        verdicts.append(
            "Missing from the batch: " + ", ".join(f"<code>{escape(n)}</code>" for n in dataset["missing_columns"])
        )
    performance = report.get("performance")
    if performance:
        drop = (
            f"; drop {_pct(performance['drop'])}, limit {_pct(performance['threshold'])}"
            if "drop" in performance
            else ""
        )
        if performance.get("min_worse"):
            drop += f" and at least {_num(performance['min_worse'])} worse"
        verdicts.append(
            f"Performance drift: {_badge(bool(verdict.performance))} {escape(performance['metric'])} "
            f"{_num(performance['reference'])} at packaging, {_num(performance['current'])} on "
            f"{performance['rows']:,} labelled rows{drop}"
        )
    prediction = report.get("prediction_drift")
    if prediction and "skipped" not in prediction:
        verdicts.append(f"Prediction drift: {_badge(prediction['drifted'])} {_statistic(prediction)}")
    status = "bad" if verdict.drift else ""
    overall = "DRIFT DETECTED" if verdict.drift else "No drift detected"
    exit_code = f" (exit code {verdict.exit_code})"
    return (
        f'<p class="meta">{"<br>".join(lines)}</p><div class="verdict {status}"><b>{overall}</b>{exit_code}<br>'
        + "<br>".join(verdicts)
        + f'<p class="meta line">{escape(verdict.line())}</p></div>'
    )


def _summary(report: dict[str, Any], columns: list[dict[str, Any]]) -> str:
    head = "<tr><th>column</th><th>kind</th><th>method</th><th>statistic</th><th>drifted when</th><th>missing share change</th><th>verdict</th></tr>"
    rows = [
        f"<tr><td><code>{escape(name)}</code></td><td colspan=5>not in the batch</td><td>{_badge(True, 'MISSING')}</td></tr>"
        for name in report["dataset_drift"]["missing_columns"]
    ]
    for entry in columns:
        missing = entry["missing"]
        change = f"{missing['change'] * 100:+.1f} pts" + (" (drifted)" if missing["drifted"] else "")
        rows.append(
            f'<tr><td><a href="#{_anchor(entry["column"])}"><code>{escape(entry["column"])}</code></a></td>'
            f"<td>{escape(entry['kind'])}</td><td>{escape(entry['method'])}</td><td class=n>{_statistic(entry)}</td>"
            f"<td>{_rule(entry)}</td><td class=n>{change}</td><td>{_badge(entry['drifted'])}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _section(entry: dict[str, Any], report: dict[str, Any], reference_label: str = "") -> str:
    name, missing = entry["column"], entry["missing"]
    ref, cur = entry["reference"], entry["current"]
    facts = f"{escape(entry['method'])}: {_statistic(entry)} (drifted when {_rule(entry)}); missing {_pct(missing['reference'])} → {_pct(missing['current'])}"
    if entry["kind"] == NUMERIC and "mean" in ref:
        facts += (
            f"; mean {_num(ref['mean'])} → {_num(cur.get('mean'))}, std {_num(ref.get('std'))} → {_num(cur.get('std'))}"
        )
    labels, ref_counts, cur_counts = (
        _numeric_bars(ref, cur) if entry["kind"] == NUMERIC else _categorical_bars(ref, cur)
    )
    legend = (
        reference_label or f"training reference ({report['reference']['rows']:,} rows)",
        f"batch ({report['batch']['rows']:,} rows)",
    )
    chart = _chart(name, labels, ref_counts, cur_counts, legend)
    return (
        f'<section id="{_anchor(name)}" class="{"drifted" if entry["drifted"] else ""}"><h3><code>{escape(name)}</code> '
        f"{_badge(entry['drifted'])}</h3><p class=meta>{facts}</p>{chart}</section>"
    )


def _numeric_bars(ref: dict[str, Any], cur: dict[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """One bar pair per reference bin; the outer bins also hold values beyond the edges."""
    edges, n = ref["histogram"]["edges"], len(ref["histogram"]["counts"])
    labels = [
        f"{_num(edges[i])}–{_num(edges[i + 1])}" if edges[i] != edges[i + 1] else _num(edges[i]) for i in range(n)
    ]
    if n > 1:
        labels[0], labels[-1] = f"< {_num(edges[1])}", f"≥ {_num(edges[-2])}"
    return labels, list(ref["histogram"]["counts"]), list(cur["histogram"]["counts"])


def _categorical_bars(ref: dict[str, Any], cur: dict[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """The TOP_LEVELS levels largest on either side, then one bar for the rest (and the pooled rare levels)."""
    sides = (ref["counts"], cur["counts"])
    totals = [sum(counts.values()) or 1 for counts in sides]
    levels = sorted(
        (set(sides[0]) | set(sides[1])) - {OTHER},
        key=lambda level: (-max(counts.get(level, 0) / total for counts, total in zip(sides, totals)), level),
    )
    labels, rest = levels[:TOP_LEVELS], levels[TOP_LEVELS:]
    bars = [[counts.get(level, 0) for level in labels] for counts in sides]
    pooled = [sum(counts.get(level, 0) for level in rest) + counts.get(OTHER, 0) for counts in sides]
    if any(pooled):
        rare = " + rare" if any(counts.get(OTHER) for counts in sides) else ""
        labels = [*labels, f"{len(rest)} more levels{rare}" if rest else "rare levels"]
        bars = [counts + [extra] for counts, extra in zip(bars, pooled)]
    return labels, bars[0], bars[1]


def _chart(
    name: str, labels: list[str], ref_counts: list[float], cur_counts: list[float], legend: tuple[str, str]
) -> str:
    """Reference and current shares side by side per bin or level, with a y axis in percent and a legend."""
    attrs = f'class="plot" data-column="{escape(name)}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
    if not labels or not (sum(ref_counts) or sum(cur_counts)):
        return f'<svg {attrs}><text x="{LEFT}" y="{HEIGHT // 2}">no values to plot</text></svg>'
    shares = [[count / (sum(counts) or 1) for count in counts] for counts in (ref_counts, cur_counts)]
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25) if max(max(shares[0]), max(shares[1])) <= 5 * s)
    top = step * math.ceil(max(max(shares[0]), max(shares[1]), 1e-9) / step)
    plot_h, slot = HEIGHT - TOP - BOTTOM, (WIDTH - LEFT - 10) / len(labels)
    bar = min(max(slot * 0.4, 1.0), 48.0)  # a pair of bars, centred in its slot
    parts = [f"<svg {attrs}><title>{escape(name)}: share of rows, training reference vs batch</title>"]
    for i in range(round(top / step) + 1):  # y axis: gridlines and percent labels
        y = TOP + plot_h - plot_h * i * step / top
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y:.0f}" y2="{y:.0f}" stroke="#e3e3e3"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.0f}" text-anchor="end">{i * step:.0%}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#666"/>'
        f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#666"/>'
    )
    for i, label in enumerate(labels):
        x = LEFT + (i + 0.5) * slot - bar
        for side, (colour, who, counts) in enumerate(
            ((REFERENCE_COLOUR, "reference", ref_counts), (CURRENT_COLOUR, "batch", cur_counts))
        ):
            h = plot_h * shares[side][i] / top
            parts.append(
                f'<rect x="{x + side * bar:.0f}" y="{TOP + plot_h - h:.0f}" width="{bar:.0f}" height="{h:.0f}" fill="{colour}">'
                f"<title>{escape(label)}: {who} {shares[side][i]:.1%} ({counts[i]:,} rows)</title></rect>"
            )
        short = label if len(label) <= 18 else label[:17] + "…"
        cx, ly = x + bar, TOP + plot_h + 14
        turn = f' text-anchor="end" transform="rotate(-35 {cx:.0f} {ly})"' if slot < 90 else ' text-anchor="middle"'
        parts.append(f'<text x="{cx:.0f}" y="{ly}"{turn}>{escape(short)}</text>')
    for i, (colour, text) in enumerate(zip((REFERENCE_COLOUR, CURRENT_COLOUR), legend)):
        x = LEFT + 10 + i * 320
        parts.append(
            f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/><text x="{x + 18}" y="18">{text}</text>'
        )
    return "".join(parts) + "</svg>"


def _statistic(entry: dict[str, Any]) -> str:
    value = entry["statistic"]
    if value is None:
        return "n/a (no values to compare)"
    return f"{'p-value' if entry['method'] in P_VALUE_METHODS else 'distance'} {_num(value)}"


def _rule(entry: dict[str, Any]) -> str:
    return (
        f"p &lt; {_num(entry['threshold'])}"
        if entry["method"] in P_VALUE_METHODS
        else f"distance ≥ {_num(entry['threshold'])}"
    )


def _badge(drifted: bool, text: str = "") -> str:
    return f'<span class="badge {"bad" if drifted else "ok"}">{text or ("DRIFTED" if drifted else "no drift")}</span>'


def _anchor(name: str) -> str:
    return "col-" + "".join(c if c.isalnum() else f"_{ord(c):x}" for c in name)


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if 1e3 <= abs(value) < 1e9:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value == 0 or 1e-3 <= abs(value) < 1e3 else f"{value:.2e}"


def _pct(value: float) -> str:
    return f"{value:.1%}"
