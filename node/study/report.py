"""The study's report: a run's results as Markdown and as one self-contained HTML page
(pure: values in, text out).

Both are rendered from the same list of blocks (headings, paragraphs, tables, figures),
so they never say different things. The HTML page needs nothing but itself: figures are
embedded as SVG data URIs, the style sheet is inline, and a Content-Security-Policy
forbids the page from loading anything at all, so it opens offline and a hostile string
in a scenario cannot make it fetch or run anything (every string from the data is
escaped as well). Nothing here knows the time: the same run gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from node.study.run_files import (
    AGREEMENT,
    OPTIONAL_CSVS,
    OPTIONAL_SUMMARY_KEYS,
    REQUIRED_CSVS,
    ROUTES,
    CountryCost,
    RunData,
    Summary,
    Table,
)
from node.study.scenario import TOPOLOGIES, GeneratedTrade

DAY_SECONDS: Final = 86_400.0
FIGURES_FOLDER: Final = "figures"
# Optional tables and JSON values are shown up to this many rows; the files hold all.
SHOWN_ROWS: Final = 50
# JSON values nested deeper than this are shown as JSON text, cut to MAX_CELL characters.
MAX_DEPTH: Final = 8
MAX_CELL: Final = 200
ROUTE_MEANING: Final[Mapping[str, str]] = {
    "direct": "node to node over a direct link",
    "hub": "through the hub from the first attempt (no direct link, or no node at one end)",
    "hub-fallback": "through the hub after direct attempts failed",
}
OPTIONAL_TITLES: Final[Mapping[str, str]] = {
    "trust": "Trust relationships (summary.json)",
    "exposure": "Metadata exposure (summary.json)",
    "bytes_on_wire": "Bytes on the wire",
    "cpu_ms_per_certificate": "CPU per certificate (ms)",
    "share_before_arrival": "Certificates there before the goods",
    "exposure.csv": "Metadata exposure by party (exposure.csv)",
    "rotations.csv": "Key rotations (rotations.csv)",
    "transit.csv": "Transit (transit.csv)",
    AGREEMENT: "Agreement between simulate and emulate (agreement.json)",
}


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure, drawn (node/study/figures.py), as written under figures/."""

    name: str  # the file name without its extension
    title: str
    how_to_read: str
    png: bytes
    svg: bytes


@dataclass(frozen=True, slots=True)
class HubLoad:
    """The hub as a single M/D/1 server at the run's mean load."""

    service_seconds: float
    envelopes_per_day: float  # mean over the period
    utilisation: float  # rho
    saturation_per_day: float  # rho = 1; math.inf when the service takes no time
    predicted_wait_seconds: float  # M/D/1 mean wait at rho (math.inf at rho >= 1)
    measured_wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    level: int


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class TableBlock:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class FigureBlock:
    figure: Figure


Block = Heading | Paragraph | TableBlock | FigureBlock


# -- numbers the report and the figures share ----------------------------------------


def md1_wait(utilisation: float, service_seconds: float) -> float:
    """The M/D/1 queue's mean wait: W = rho S / (2 (1 - rho)); infinite at rho >= 1."""
    if utilisation >= 1:
        return math.inf
    return utilisation * service_seconds / (2 * (1 - utilisation))


def hub_load(summary: Summary) -> HubLoad:
    service = summary.hub_service_ms / 1000
    through_hub = sum(summary.by_route[r].certificates for r in ("hub", "hub-fallback"))
    per_day = through_hub / summary.period_days
    utilisation = per_day * service / DAY_SECONDS
    return HubLoad(
        service_seconds=service,
        envelopes_per_day=per_day,
        utilisation=utilisation,
        saturation_per_day=DAY_SECONDS / service if service > 0 else math.inf,
        predicted_wait_seconds=md1_wait(utilisation, service),
        measured_wait_seconds=summary.hub_wait_mean_seconds,
    )


def cost_models(costs: Sequence[CountryCost]) -> dict[str, list[CountryCost]]:
    """costs.csv's rows by fee model, in the order the models first appear."""
    by_model: dict[str, list[CountryCost]] = {}
    for row in costs:
        by_model.setdefault(row.fee_model, []).append(row)
    return by_model


def hub_costs_more(rows: Iterable[CountryCost]) -> list[str] | None:
    """The countries whose hub fees exceed a node's running cost; None when the two are
    in different currencies (not converted, so not compared)."""
    rows = list(rows)
    if any(r.currency != r.node_currency for r in rows):
        return None
    return [r.country for r in rows if r.hub_fees > r.node_running_cost]


# -- formatting ----------------------------------------------------------------------


def significant(value: float, digits: int = 3) -> str:
    """`value` to about `digits` significant digits, never in exponent form, without
    trailing zeros: 15 not 15.0, 0.167, 2,000."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return "never"
    if seconds == 0:
        return "0 s"
    for limit, unit, size in ((1, "ms", 0.001), (120, "s", 1), (7200, "min", 60)):
        if seconds < limit:
            return f"{significant(seconds / size)} {unit}"
    if seconds < 2 * DAY_SECONDS:
        return f"{significant(seconds / 3600)} h"
    return f"{significant(seconds / DAY_SECONDS)} days"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def hours(value: float | None) -> str:
    return "-" if value is None else f"{significant(value)} h"


# -- the report's content ------------------------------------------------------------


def blocks(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    """The report, in order: what was run, each result with its figure, optional extras."""
    summary = run.summary
    out: list[Block] = [Heading(f"Study report: {summary.scenario}", 1)]
    if run.scenario.description:
        out.append(Paragraph(run.scenario.description))
    out += _what_was_run(run)
    out += _latency(run, figures)
    out += _outages(run, figures)
    out += _hub(run, figures)
    out += _costs(run, figures)
    out += _trust(run, figures)
    out += _optional(run)
    out += _files(run, figures)
    return out


def _figure(figures: Mapping[str, Figure], name: str) -> list[Block]:
    return [FigureBlock(figures[name])] if name in figures else []


def _what_was_run(run: RunData) -> list[Block]:
    summary, scenario = run.summary, run.scenario
    with_node = sum(1 for c in scenario.countries if c.runs_node)
    topology = summary.topology
    if topology == "hybrid":
        topology += f" (each node country's top {scenario.top_k} node partners direct)"
    rows = [
        ("scenario", summary.scenario),
        ("scenario file", f"{run.scenario_file} (copied beside the results, as read)"),
        ("code version", summary.code_version),
        ("seed", str(summary.seed)),
        ("scale", f"{summary.scale:g} (every flow's volume times this)"),
        ("period", f"{summary.period_days:g} days"),
        (
            "countries",
            f"{summary.countries:,} ({with_node:,} running a node, "
            f"{summary.countries - with_node:,} hub only)",
        ),
        ("regions", ", ".join(sorted({c.region for c in scenario.countries}))),
        ("topology", topology),
        ("direct links", f"{summary.direct_links:,}"),
    ]
    trade = scenario.trade
    if isinstance(trade, GeneratedTrade):
        rows.append(
            (
                "trade",
                f"generated ({trade.model}, trade seed {trade.seed}), "
                f"{trade.certificates_per_year:,} certificates a year at scale 1",
            )
        )
    rows += [
        ("certificates in this run", f"{summary.certificates:,}"),
        ("undelivered", f"{summary.undelivered:,}"),
        (
            "hub",
            f"{summary.hub_service_ms:g} ms a certificate; national systems pull every "
            f"{scenario.pull_interval_seconds:,} s; stated capacity "
            f"{scenario.hub_capacity_per_day:,} a day",
        ),
        ("outages", f"{len(run.outages):,}"),
        ("messages.csv", summary.messages_csv),
    ]
    return [
        Heading("What was run", 2),
        Paragraph(
            "The same scenario file, scale and seed give a byte-identical summary.json "
            "and report.md (ephyto study run SCENARIO --scale F --seed N -o DIR)."
        ),
        TableBlock(("", "value"), tuple(rows)),
    ]


def _latency(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    summary = run.summary
    delivered = sum(summary.by_route[r].certificates for r in ROUTES)
    rows = []
    for route in ROUTES:
        latency = summary.by_route[route]
        rows.append(
            (
                route,
                f"{latency.certificates:,}",
                share(latency.certificates / delivered) if delivered else "-",
                duration(latency.p50_seconds),
                duration(latency.p95_seconds),
                duration(latency.p99_seconds),
                share(latency.share_within_1h),
            )
        )
    meaning = "; ".join(f"{route}: {text}" for route, text in ROUTE_MEANING.items())
    return [
        Heading("Latency by route", 2),
        Paragraph(
            f"From submission to delivery, delivered certificates only ({meaning}). "
            "Percentiles count every certificate of the run."
        ),
        TableBlock(
            ("route", "certificates", "share", "p50", "p95", "p99", "within 1 h"),
            tuple(rows),
        ),
        *_figure(figures, "latency_by_route"),
        *_figure(figures, "delivered_over_time"),
    ]


def _outages(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    out: list[Block] = [Heading("Outages", 2)]
    if not run.outages:
        return [*out, Paragraph("The scenario has no outages.")]
    out.append(
        Paragraph(
            "Affected: in flight during the outage and involving the party. Delayed: "
            "slower than its pair's p99 outside any outage; the delay is the excess over "
            "the pair's p50. Pairs affected (the blast radius): pairs with a delayed "
            "certificate. Drain: from the outage's end to the last delayed delivery."
        )
    )
    rows = tuple(
        (
            o.party,
            significant(o.start_hours),
            hours(o.duration_hours),
            f"{o.affected:,}",
            f"{o.delayed:,}",
            duration(o.delay_p50_seconds),
            duration(o.delay_p95_seconds),
            f"{o.pairs_affected:,}",
            hours(o.drain_hours),
        )
        for o in run.outages
    )
    out.append(
        TableBlock(
            (
                "party",
                "from hour",
                "for",
                "affected",
                "delayed",
                "delay p50",
                "delay p95",
                "pairs affected",
                "drain",
            ),
            rows,
        )
    )
    return [*out, *_figure(figures, "blast_radius")]


def _hub(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    summary = run.summary
    peak_hour = max(run.hub_holdings, key=lambda row: (row[1], -row[0]), default=None)
    load = hub_load(summary)
    held = f"At most {summary.hub_most_envelopes_held:,} envelopes held at once"
    if peak_hour is not None and peak_hour[1] > 0:
        held += f" (first at the end of hour {peak_hour[0]:,})"
    measured = duration(load.measured_wait_seconds)
    return [
        Heading("The hub", 2),
        Paragraph(
            f"{held}: stored and not yet delivered, counted at the end of every hour "
            "(hub_holdings.csv)."
        ),
        TableBlock(
            ("", "value"),
            (
                ("envelopes through the hub a day (mean)", significant(load.envelopes_per_day)),
                ("service time", duration(load.service_seconds)),
                ("utilisation (rho)", f"{load.utilisation:.3g}"),
                ("queue wait: M/D/1 mean at rho", duration(load.predicted_wait_seconds)),
                ("queue wait: measured mean", measured),
                ("queue wait: measured p99", duration(summary.hub_wait_p99_seconds)),
                ("queue wait: measured max", duration(summary.hub_wait_max_seconds)),
                (
                    "saturation (rho = 1)",
                    "none (no service time)"
                    if math.isinf(load.saturation_per_day)
                    else f"{significant(load.saturation_per_day)} certificates a day",
                ),
                (
                    "stated capacity (scenario)",
                    f"{run.scenario.hub_capacity_per_day:,} certificates a day",
                ),
            ),
        ),
        *_figure(figures, "scale_curve"),
    ]


def _costs(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    out: list[Block] = [Heading("Costs", 2)]
    by_model = cost_models(run.costs)
    if not by_model:
        return [*out, Paragraph("The scenario has no hub fee models ([costs] fee_models).")]
    node_cost = run.costs[0]
    out.append(
        Paragraph(
            "Hub fees are what each country pays for what it sends through the hub (the "
            "hub's own pricing), in minor units of the fee's currency. A node's running "
            f"cost for the period: {node_cost.node_running_cost:,} {node_cost.node_currency}"
            " (minor units)."
        )
    )
    rows = []
    for model, model_rows in by_model.items():
        fees = [r.hub_fees for r in model_rows]
        dearer = hub_costs_more(model_rows)
        currencies = ", ".join(sorted({r.currency for r in model_rows}))
        if dearer is None:
            more = "not compared (different currencies)"
        else:
            named = ", ".join(dearer[:10]) + (", ..." if len(dearer) > 10 else "")
            more = f"{len(dearer):,} of {len(model_rows):,}" + (f": {named}" if dearer else "")
        rows.append(
            (
                model,
                currencies,
                f"{sum(fees):,}",
                significant(statistics.median(fees)),
                f"{sum(r.envelopes_past_plan_cap for r in model_rows):,}",
                more,
            )
        )
    out.append(
        TableBlock(
            (
                "fee model",
                "currency",
                "total hub fees",
                "median country",
                "envelopes past a plan's cap",
                "countries where the hub costs more than a node",
            ),
            tuple(rows),
        )
    )
    return [*out, *_figure(figures, "cost_per_country")]


def _trust(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    out: list[Block] = [
        Heading("Trust relationships", 2),
        Paragraph(
            "Without a directory every link is a trust relationship whose two ends hold "
            "each other's keys, exchanged and renewed by hand. Bilateral is counted as if "
            "every country ran a node."
        ),
    ]
    if run.topologies is None:
        return [
            *out,
            Paragraph(f"This run: {run.summary.direct_links:,} direct links (imported trade)."),
        ]
    rows = []
    for kind in TOPOLOGIES:
        counts = run.topologies[kind]
        rows.append(
            (
                kind + (" (this scenario)" if kind == run.scenario.topology else ""),
                f"{counts.trust_relationships:,}",
                f"{len(counts.direct_links):,}",
                f"{len(counts.hub_users):,}",
                f"{counts.most_keys_held_by_a_country:,}",
                f"{counts.keys_held.get('hub', 0):,}",
            )
        )
    out.append(
        TableBlock(
            (
                "topology",
                "trust relationships (links)",
                "direct",
                "through the hub",
                "most keys a country holds",
                "keys the hub holds",
            ),
            tuple(rows),
        )
    )
    return [*out, *_figure(figures, "trust_vs_network_size")]


def _optional(run: RunData) -> list[Block]:
    """A section for each optional summary key, CSV file and agreement.json present."""
    out: list[Block] = []
    for key in OPTIONAL_SUMMARY_KEYS:
        if key in run.summary.raw:
            out += [Heading(OPTIONAL_TITLES[key], 2), *_json_table(run.summary.raw[key])]
    for name in OPTIONAL_CSVS:
        if name in run.tables:
            out += [Heading(OPTIONAL_TITLES[name], 2), *_csv_table(run.tables[name])]
    if run.agreement is not None:
        out += [Heading(OPTIONAL_TITLES[AGREEMENT], 2), *_json_table(run.agreement)]
    return out


def flatten(value: Any, path: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """A JSON value as (key path, value) rows: `a.b`, `a[0]`; scalars as JSON text.

    Below MAX_DEPTH levels the rest is one row of JSON text, cut to MAX_CELL characters.
    """
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        text = json.dumps(value)
        return [(path, text if len(text) <= MAX_CELL else text[:MAX_CELL] + "...")]
    if isinstance(value, dict):
        if not value:
            return [(path, "{}")]
        return [
            row for key in value for row in flatten(value[key], _join(path, str(key)), depth + 1)
        ]
    if isinstance(value, list):
        if not value:
            return [(path, "[]")]
        return [
            row for i, item in enumerate(value) for row in flatten(item, f"{path}[{i}]", depth + 1)
        ]
    text = value if isinstance(value, str) else json.dumps(value)
    return [(path, text)]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_table(value: Any) -> list[Block]:
    rows = flatten(value)
    out: list[Block] = [TableBlock(("key", "value"), tuple(rows[:SHOWN_ROWS]))]
    if len(rows) > SHOWN_ROWS:
        out.append(Paragraph(f"The first {SHOWN_ROWS} of {len(rows):,} values."))
    return out


def _csv_table(table: Table) -> list[Block]:
    stem = table.name.removesuffix(".csv")
    note = f"All {len(table.rows):,} rows are in {table.name} and {stem}.parquet."
    if len(table.rows) > SHOWN_ROWS:
        note = f"The first {SHOWN_ROWS} rows. " + note
    return [TableBlock(table.header, table.rows[:SHOWN_ROWS]), Paragraph(note)]


def _files(run: RunData, figures: Mapping[str, Figure]) -> list[Block]:
    data = [n for n in run.tables if n in REQUIRED_CSVS] + [
        n for n in run.tables if n not in REQUIRED_CSVS
    ]
    listed = ", ".join(f"{n} ({n.removesuffix('.csv')}.parquet)" for n in data)
    names = ", ".join(sorted(figures))
    return [
        Heading("Files", 2),
        Paragraph(
            f"Beside this report: summary.json, {run.scenario_file} (the scenario), the "
            f"data as CSV and Parquet: {listed}. Figures as PNG and SVG in "
            f"{FIGURES_FOLDER}/: {names}. How each was computed: docs/study.md."
        ),
    ]


# -- rendering -----------------------------------------------------------------------

_MARKDOWN_SPECIAL: Final = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def _md(text: str) -> str:
    """Text as Markdown shows it, never as markup nor raw HTML: data strings pass through
    here, so a scenario's description cannot inject a link, an image or a script."""
    return " ".join(text.split()).translate(_MARKDOWN_SPECIAL)


def _md_paragraph(text: str) -> str:
    escaped = _md(text)
    # A leading -, + or = would start a list item or underline the line before.
    return "\\" + escaped if escaped[:1] in ("-", "+", "=") else escaped


def markdown(run: RunData, figures: Mapping[str, Figure]) -> str:
    """report.md: the report, its figures linked as files under figures/."""
    lines: list[str] = []
    for block in blocks(run, figures):
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + _md(block.text), ""]
        elif isinstance(block, Paragraph):
            lines += [_md_paragraph(block.text), ""]
        elif isinstance(block, TableBlock):
            lines.append("| " + " | ".join(_md(h) for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        else:
            figure = block.figure
            path = f"{FIGURES_FOLDER}/{figure.name}"
            lines += [
                f"![{_md(figure.title)}]({path}.png)",
                "",
                f"**{_md(figure.title)}** ({path}.png, {path}.svg). "
                f"How to read it: {_md(figure.how_to_read)}",
                "",
            ]
    return "\n".join(lines).rstrip("\n") + "\n"


_STYLE: Final = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.95rem; }
"""
# The page may load nothing: images only from data: URIs, the inline style, no scripts.
_POLICY: Final = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def html_page(run: RunData, figures: Mapping[str, Figure]) -> str:
    """report.html: the report in one file, its figures embedded (opens offline)."""
    title = f"Study report: {run.summary.scenario}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
    ]
    for block in blocks(run, figures):
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{_h(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{_h(block.text)}</p>")
        elif isinstance(block, TableBlock):
            parts.append("<table>")
            parts.append(
                "<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in block.header) + "</tr></thead>"
            )
            parts.append("<tbody>")
            parts += [
                "<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows
            ]
            parts.append("</tbody></table>")
        else:
            figure = block.figure
            svg = base64.b64encode(figure.svg).decode("ascii")
            parts += [
                "<figure>",
                f'<img alt="{_h(figure.title)}" src="data:image/svg+xml;base64,{svg}">',
                f"<figcaption><strong>{_h(figure.title)}</strong>. How to read it: "
                f"{_h(figure.how_to_read)}</figcaption>",
                "</figure>",
            ]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
