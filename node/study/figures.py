"""The study report's figures (matplotlib; pure: a run's data in, PNG and SVG bytes out).

No pyplot: each figure is a `matplotlib.figure.Figure` of its own, rendered by the Agg
and SVG backends matplotlib picks by format, so nothing needs a display and no global
figure state is left behind. The rcParams the figures need are held only while one is
drawn (`rc_context`), among them a fixed `svg.hashsalt`, and the files' metadata carry
no date nor matplotlib's version: the same data gives the same bytes.

matplotlib is the study extra's: import this module only where a command needs it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Canvas

from node.study.report import (
    DAY_SECONDS,
    Figure,
    cost_models,
    duration,
    hub_costs_more,
    hub_load,
    md1_wait,
    significant,
)
from node.study.run_files import ROUTES, RunData
from node.study.topology import bilateral_links

SIZE: Final = (8.0, 4.5)  # inches
DPI: Final = 100
# An ECDF of 100,000 certificates is drawn through this many of them per route: the
# same line to the eye, a fraction of the file.
ECDF_POINTS: Final = 2000
MOST_OUTAGES_SHOWN: Final = 30
NETWORK_SIZES: Final = range(2, 251)  # the scenario file's limit is 250 countries
HOUR: Final = 3600.0
OUTAGE_COLOUR: Final = "tab:red"

Drawing = tuple[str, str, Canvas]  # title, how to read it, the figure


def draw(run: RunData, name: str) -> Figure:
    """The figure `name` (one of NAMES) for this run, as PNG and SVG."""
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "ephyto-study",  # ids in the SVG from this, not a random uuid
            "svg.fonttype": "path",  # glyphs as paths: the SVG needs no font installed
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    ):
        title, how_to_read, canvas = DRAWINGS[name](run)
        png = io.BytesIO()
        canvas.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        svg = io.BytesIO()
        canvas.savefig(svg, format="svg", metadata={"Date": None})
    return Figure(name, title, how_to_read, png.getvalue(), svg.getvalue())


def _canvas(rows: int = 1, columns: int = 1) -> tuple[Canvas, list[Axes]]:
    canvas = Canvas(figsize=SIZE, dpi=DPI, layout="constrained")
    axes = canvas.subplots(rows, columns, squeeze=False)
    return canvas, [ax for row in axes for ax in row]


def _nothing(ax: Axes, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _sample_note(run: RunData) -> str:
    if not run.messages_sampled:
        return ""
    return (
        f" Drawn from messages.csv, a seeded sample of {len(run.messages):,} of the run's "
        f"{run.summary.certificates:,} certificates."
    )


def ecdf_points(sorted_values: Sequence[float], most: int) -> tuple[list[float], list[float]]:
    """At most `most` points (value, share at or below it) of the sorted values' ECDF,
    evenly spaced by rank and always the first and last."""
    n = len(sorted_values)
    if n <= most:
        ranks = list(range(n))
    else:
        ranks = sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})
    return [sorted_values[r] for r in ranks], [(r + 1) / n for r in ranks]


def latency_by_route(run: RunData) -> Drawing:
    canvas, (ax,) = _canvas()
    by_route: dict[str, list[float]] = {route: [] for route in ROUTES}
    for m in run.messages:
        if m.delivered is not None and m.delivered > m.submitted:
            by_route[m.route].append(m.delivered - m.submitted)
    if not any(by_route.values()):
        _nothing(ax, "no delivered certificates")
    else:
        for route, values in by_route.items():
            if values:
                values.sort()
                x, y = ecdf_points(values, ECDF_POINTS)
                ax.step(x, y, where="post", label=f"{route} ({len(values):,} certificates)")
        ax.set_xscale("log")
        for seconds, label in ((60.0, "1 min"), (HOUR, "1 h"), (DAY_SECONDS, "1 day")):
            ax.axvline(seconds, color="grey", linewidth=0.8, linestyle=":")
            ax.annotate(label, (seconds, 0.02), xytext=(3, 0), textcoords="offset points")
        ax.set_xlabel("latency, submission to delivery (seconds, log scale)")
        ax.set_ylabel("share of the route's certificates delivered within")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="upper left")
    how = (
        "One line per route: a point (x, y) says a share y of that route's certificates "
        "arrived within x seconds. Further left is faster; a long flat tail to the right is "
        "the retries and outages." + _sample_note(run)
    )
    return "Latency by route (ECDF)", how, canvas


def hourly_counts(
    times: Sequence[float], start: float, end: float, bin_seconds: float, weight: float
) -> tuple[list[float], list[float]]:
    """(bin starts in hours, certificates per hour in each bin) for times in [start, end)."""
    bins = max(1, math.ceil((end - start) / bin_seconds))
    counts = [0] * bins
    for t in times:
        if start <= t < end:
            counts[min(int((t - start) // bin_seconds), bins - 1)] += 1
    per_hour = weight * HOUR / bin_seconds
    return [(start + i * bin_seconds) / HOUR for i in range(bins)], [c * per_hour for c in counts]


def delivered_over_time(run: RunData) -> Drawing:
    delivered = [m.delivered for m in run.messages if m.delivered is not None]
    period = run.summary.period_days * DAY_SECONDS
    end = max([period, *delivered])
    # Counts of a sample stand for the whole run: scaled by the sample's share.
    weight = run.summary.certificates / len(run.messages) if run.messages else 1.0
    outages = sorted(run.outages, key=lambda o: o.start_hours)
    canvas, axes = _canvas(2 if outages else 1, 1)
    whole = axes[0]
    daily = period > 14 * DAY_SECONDS
    x, y = hourly_counts(delivered, 0.0, end, DAY_SECONDS if daily else HOUR, weight)
    whole.step(x, y, where="post", linewidth=0.8)
    whole.set_xlabel(
        "hours from the start of the period" + (" (each step a day's mean)" if daily else "")
    )
    whole.set_ylabel("certificates an hour")
    whole.set_xlim(0, end / HOUR)
    if outages:
        first = outages[0]
        start = max(0.0, (first.start_hours - 24) * HOUR)
        stop = (first.start_hours + first.duration_hours + (first.drain_hours or 0) + 24) * HOUR
        stop = min(max(stop, start + 72 * HOUR), end)
        zoom = axes[1]
        x, y = hourly_counts(delivered, start, stop, HOUR, weight)
        zoom.step(x, y, where="post", linewidth=0.8)
        zoom.set_xlim(start / HOUR, stop / HOUR)
        zoom.set_xlabel(f"hours from the start (around the outage of {first.party})")
        zoom.set_ylabel("certificates an hour")
        for ax in axes:
            for i, o in enumerate(outages):
                ax.axvspan(
                    o.start_hours,
                    o.start_hours + o.duration_hours,
                    color=OUTAGE_COLOUR,
                    alpha=0.25,
                    label="outage" if i == 0 else None,
                )
        whole.legend(loc="upper right")
    how = (
        "Certificates delivered an hour over the period"
        + (" (each day's mean)" if daily else "")
        + (
            "; below, hour by hour around the first outage. Outages are shaded red: a dip "
            "while the party is down and a peak after it is the backlog draining."
            if outages
            else ". The scenario has no outages; the shape is the seasonal profile."
        )
        + (
            f" messages.csv is a sample: counts are scaled by {significant(weight)} "
            "(certificates in the run per row)."
            if run.messages_sampled
            else ""
        )
    )
    return "Certificates delivered over time", how, canvas


def blast_radius(run: RunData) -> Drawing:
    canvas, (pairs, delayed) = _canvas(1, 2)
    shown = sorted(run.outages, key=lambda o: (o.start_hours, o.party))
    if len(shown) > MOST_OUTAGES_SHOWN:
        shown = sorted(shown, key=lambda o: -o.pairs_affected)[:MOST_OUTAGES_SHOWN]
    if not shown:
        _nothing(pairs, "no outages in this scenario")
        delayed.set_axis_off()
    else:
        labels = [f"{o.party}, hour {o.start_hours:g}, {o.duration_hours:g} h" for o in shown]
        rows = list(range(len(shown)))
        # A few outages get bars of the same thickness as many: room above and below.
        pad = max(0.0, (4 - len(rows)) / 2)
        for ax, values, colour, label in (
            (pairs, [o.pairs_affected for o in shown], "tab:orange", "pairs affected"),
            (delayed, [o.delayed for o in shown], "tab:purple", "certificates delayed"),
        ):
            ax.barh(rows, values, height=0.6, color=colour)
            ax.set_ylim(len(rows) - 0.5 + pad, -0.5 - pad)  # the first outage on top
            ax.set_xlabel(label)
        pairs.set_yticks(rows, labels)
        pairs.set_xlabel("pairs affected (the blast radius)")
        delayed.set_yticks(rows, [""] * len(rows))
    how = (
        "One bar per outage (party, start, length): on the left how many country pairs "
        "had a certificate delayed by it, on the right how many certificates. A hub outage "
        "reaches every pair that uses the hub; a country's only that country's."
        + (
            f" The {MOST_OUTAGES_SHOWN} outages with the most pairs affected are shown."
            if len(run.outages) > MOST_OUTAGES_SHOWN
            else ""
        )
    )
    return "Blast radius of each outage", how, canvas


def cost_per_country(run: RunData) -> Drawing:
    canvas, (ax,) = _canvas()
    by_model = cost_models(run.costs)
    positive = any(r.hub_fees > 0 for r in run.costs)
    node_cost = run.costs[0].node_running_cost if run.costs else 0
    if not by_model or not (positive or node_cost > 0):
        _nothing(ax, "no hub fees in this run" if by_model else "no hub fee models")
    else:
        for model, rows in by_model.items():
            fees = sorted((r.hub_fees for r in rows if r.hub_fees > 0), reverse=True)
            more = hub_costs_more(rows)
            label = f"{model} ({rows[0].currency})"
            if more is not None:
                label += f": {len(more):,} countries above a node"
            if fees:
                ax.plot(range(1, len(fees) + 1), fees, marker=".", linewidth=1, label=label)
            else:
                # Nothing to draw on a log axis: the legend says so.
                ax.plot([], [], " ", label=f"{model}: no country pays any fee")
        if node_cost > 0:
            ax.axhline(
                node_cost,
                color="black",
                linestyle="--",
                label=f"a node's running cost ({run.costs[0].node_currency})",
            )
        ax.set_yscale("log")
        ax.set_xlabel("countries, ranked by hub fees (highest first)")
        ax.set_ylabel("for the period (minor units, log scale)")
        ax.legend(loc="best")
    how = (
        "One line per fee model: each country's hub fees for the period, countries ranked "
        "from the highest. A country above the dashed line would pay the hub more than "
        "running its own node. Countries that sent nothing through the hub pay nothing and "
        "are left off the log scale; amounts in different currencies are not converted."
    )
    return "Cost per country: hub fees against running a node", how, canvas


def trust_vs_network_size(run: RunData) -> Drawing:
    canvas, (ax,) = _canvas()
    sizes = list(NETWORK_SIZES)
    ax.plot(sizes, [bilateral_links(n) for n in sizes], label="all bilateral: n(n-1)/2")
    ax.plot(sizes, sizes, label="all through the hub: n")
    n = run.summary.countries
    if run.topologies is not None:
        this = run.topologies[run.scenario.topology].trust_relationships
        ax.plot(
            [n],
            [this],
            marker="o",
            linestyle="none",
            color="black",
            label=f"this scenario ({run.scenario.topology}, {n:,} countries): {this:,}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("countries in the network (n)")
    ax.set_ylabel("trust relationships (log scale)")
    ax.legend(loc="upper left")
    how = (
        "Trust relationships (links whose ends exchange and renew keys by hand, without a "
        "directory) as the network grows: all bilateral grows with the square of the "
        "countries, all through the hub in step with them. The point is this scenario; "
        "where it sits between the lines is what its direct links cost in trust."
    )
    return "Trust relationships against network size", how, canvas


def scale_curve(run: RunData) -> Drawing:
    canvas, (ax,) = _canvas()
    load = hub_load(run.summary)
    capacity = float(run.scenario.hub_capacity_per_day)
    if load.service_seconds <= 0:
        _nothing(ax, "the hub's service time is 0: no queue to draw")
        how = "The run gave the hub no service time, so its queue never waits."
        return "Scale: the hub's queue against its load", how, canvas
    saturation = load.saturation_per_day
    low = saturation * 1e-4
    if load.envelopes_per_day > 0:
        low = min(low, load.envelopes_per_day / 2)
    high = max(saturation * 1.5, capacity * 1.5)
    steps = 400
    rates = [low * (saturation * 0.99 / low) ** (i / (steps - 1)) for i in range(steps)]
    waits = [md1_wait(r * load.service_seconds / DAY_SECONDS, load.service_seconds) for r in rates]
    ax.plot(rates, waits, label=f"M/D/1, {duration(load.service_seconds)} a certificate")
    ax.axvline(saturation, color="grey", linestyle=":", label="saturation (rho = 1)")
    ax.axvline(capacity, color="tab:green", linestyle="--", label="the scenario's capacity_per_day")
    if load.envelopes_per_day > 0:
        high = max(high, load.envelopes_per_day * 1.5)
        if math.isfinite(load.predicted_wait_seconds) and load.predicted_wait_seconds > 0:
            ax.plot(
                [load.envelopes_per_day],
                [load.predicted_wait_seconds],
                marker="o",
                linestyle="none",
                color="black",
                label=f"this run's load (rho {load.utilisation:.2g}), M/D/1",
            )
        measured = load.measured_wait_seconds
        if measured is not None and measured > 0:
            ax.plot(
                [load.envelopes_per_day],
                [measured],
                marker="x",
                linestyle="none",
                color="tab:red",
                label=f"this run, measured mean wait {duration(measured)}",
            )
        else:
            # A zero has no place on a log axis: said in the legend instead.
            ax.plot([], [], " ", label=f"this run, measured mean wait {duration(measured)}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_xlabel("certificates through the hub a day (log scale)")
    ax.set_ylabel("mean wait in the hub's queue (seconds, log scale)")
    ax.legend(loc="upper left")
    how = (
        "The hub as one server taking a fixed time per certificate (an M/D/1 queue): its "
        "mean wait W = rho S / (2 (1 - rho)) as the load grows, rho the load times the "
        "service time S. The wait stays negligible until the load nears saturation, then "
        "climbs without bound; the dashed line is the capacity the scenario states, the "
        "markers this run's mean load."
    )
    return "Scale: the hub's queue against its load", how, canvas


DRAWINGS: Final[Mapping[str, Callable[[RunData], Drawing]]] = {
    "latency_by_route": latency_by_route,
    "delivered_over_time": delivered_over_time,
    "blast_radius": blast_radius,
    "cost_per_country": cost_per_country,
    "trust_vs_network_size": trust_vs_network_size,
    "scale_curve": scale_curve,
}
NAMES: Final = tuple(DRAWINGS)
