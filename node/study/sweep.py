"""`ephyto study sweep`: a grid of variants of one scenario, run and compared (pure core).

A sweep varies scalar keys of the scenario file (dotted paths into its TOML document,
`topology.top_k`, `hub.pull_interval_seconds`) and the run options `scale` and `seed`;
the grid is the cartesian product of the `--vary` specs, in the order given (the last
spec varies fastest), so the same command line always numbers its runs the same way.

Every grid point's scenario is the file's document with the point's values set,
written back as TOML and read by the scenario module's own `parse_scenario`: a variant
is checked exactly as a file would be, and its errors name the point. Arrays of tables
(countries, outages, ...) are not varied: a value list cannot say which entry it means,
so a variant that needs them is a scenario file of its own.

Nothing here reads files or the clock; `run_point` calls the simulation and is the one
function a local process or a Dask worker runs, so it takes and returns plain values.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import tomli_w

from node.errors import InputError
from node.study.outputs import run_summary
from node.study.scenario import MAX_TEXT, GeneratedTrade, Scenario, parse_scenario
from node.study.simulate import (
    MAX_SCALE,
    MIN_SCALE,
    ROUTE_NAMES,
    Options,
    costs_rows,
    simulate,
)

MAX_POINTS = 1000
MAX_SPEC_CHARS = 10_000
MAX_SEED = 2**63 - 1
# Longest value shown in an error or a run's directory name.
SHOWN_CHARS = 60
SLUG_CHARS = 80

Value = int | float | str | bool
Kind = Literal["integer", "number", "text", "boolean"]

# The run options a sweep may vary besides the scenario's keys (`simulate --scale/--seed`).
RUN_OPTIONS: Mapping[str, Kind] = {"scale": "number", "seed": "integer"}

# The scenario format's scalar keys and how node/study/scenario.py reads each: a key the
# file leaves out (the bundled files have no [node] table) can still be varied, and a
# number read as a float (`period_days = 365`) may be varied to 30.5. A key the format
# gains later is still variable where a file sets it: it is then typed by its value.
FORMAT_KEYS: Mapping[str, Kind] = {
    "name": "text",
    "description": "text",
    "period_days": "number",
    "topology.kind": "text",
    "topology.top_k": "integer",
    "trade.source": "text",
    "trade.model": "text",
    "trade.seed": "integer",
    "trade.certificates_per_year": "integer",
    "trade.zipf_exponent": "number",
    "hub.pull_interval_seconds": "integer",
    "hub.capacity_per_day": "integer",
    "node.retry_cap_seconds": "integer",
    "node.fallback_attempts": "integer",
    "node.fallback_seconds": "integer",
    "node.backoff_base_seconds": "number",
    "node.backoff_factor": "number",
    "costs.currency": "text",
    "costs.node_running_cost_per_year": "integer",
}
# Arrays of the format, refused by name even where a file leaves them out.
ARRAYS = frozenset(
    {
        "countries",
        "outages",
        "key_rotations",
        "links.pairs",
        "costs.fee_models",
        "trade.seasonal_profile",
        "transit.modes",
    }
)
TABLES = frozenset({"topology", "trade", "hub", "node", "links", "costs", "transit"})

_KEY = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_NUMBER = re.compile(r"[+-]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9.]+")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Vary:
    """One `--vary KEY=V1,V2,...`: the key and its values, typed, in the order given."""

    key: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Point:
    """One run of the grid: its number (from 0) and the value of every varied key."""

    index: int
    settings: tuple[tuple[str, Value], ...]

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={shown_value(value)}" for key, value in self.settings)

    @property
    def name(self) -> str:
        """How errors and the progress name the run: `run 3 (topology.top_k=10)`."""
        return f"run {self.index} ({self.label})"

    def directory(self, runs: int) -> str:
        """Its folder under runs/: the number (padded, so they sort) and its values."""
        number = str(self.index).zfill(len(str(max(runs - 1, 0))))
        parts = [_SLUG_UNSAFE.sub("-", shown_value(v).lower()).strip("-") for _, v in self.settings]
        slug = "_".join(p or "value" for p in parts)[:SLUG_CHARS].rstrip("-_")
        return f"{number}-{slug}" if slug else number


def shown_value(value: Value) -> str:
    """A value as the command line and the TOML file write it (`true`, `0.5`, `hub`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def document(scenario_toml: bytes) -> dict[str, Any]:
    """The scenario file's TOML document (checked as a whole by `parse_scenario` too)."""
    try:
        return tomllib.loads(scenario_toml.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the scenario is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"the scenario is not valid TOML: {e}") from None


def parse_vary(specs: Sequence[str], scenario_document: Mapping[str, Any]) -> tuple[Vary, ...]:
    """The `--vary` specs, each checked against the scenario's document; the grid's size
    is checked too, before any point is built."""
    if not specs:
        raise InputError("--vary: give at least one KEY=V1,V2,... (e.g. topology.top_k=1,5,10)")
    varies: list[Vary] = []
    for spec in specs:
        vary = _parse_spec(spec, scenario_document)
        if any(v.key == vary.key for v in varies):
            raise InputError(
                f"--vary {_shown(spec)}: {vary.key} is varied twice; give all its values in "
                "one --vary"
            )
        varies.append(vary)
    points = math.prod(len(v.values) for v in varies)
    if points > MAX_POINTS:
        sizes = " x ".join(f"{v.key} ({len(v.values)} values)" for v in varies)
        raise InputError(f"--vary {sizes}: {points:,} runs; a sweep has at most {MAX_POINTS:,}")
    return tuple(varies)


def grid(varies: Sequence[Vary]) -> tuple[Point, ...]:
    """Every combination of the varied values, the last `--vary` varying fastest."""
    keys = [v.key for v in varies]
    return tuple(
        Point(index, tuple(zip(keys, values, strict=True)))
        for index, values in enumerate(itertools.product(*(v.values for v in varies)))
    )


def variant_toml(scenario_document: Mapping[str, Any], point: Point) -> bytes:
    """The scenario's document with the point's scenario keys set, as TOML."""
    changed: dict[str, Any] = copy.deepcopy(dict(scenario_document))
    for key, value in point.settings:
        if key in RUN_OPTIONS:
            continue
        *tables, leaf = key.split(".")
        table = changed
        for part in tables:
            # A table the file leaves out ([node] in the bundled files) is made here.
            inner = table.setdefault(part, {})
            if not isinstance(inner, dict):
                raise InputError(f"{point.name}: {part} is not a table in the scenario")
            table = inner
        table[leaf] = value
    return tomli_w.dumps(changed).encode()


def point_scenario(scenario_toml: bytes, point: Point) -> Scenario:
    """The point's scenario, checked by the scenario parser; its errors name the point."""
    return variant_scenario(document(scenario_toml), point)


def variant_scenario(scenario_document: Mapping[str, Any], point: Point) -> Scenario:
    """`point_scenario` from the document already read (checking a grid reads it once)."""
    try:
        scenario = parse_scenario(variant_toml(scenario_document, point))
    except InputError as e:
        raise InputError(f"{point.name}: {e}") from None
    if not isinstance(scenario.trade, GeneratedTrade):
        # Imported trade's flows come from a file beside the scenario, which a worker on
        # another machine does not have: refused, not half supported.
        raise InputError(
            f"{point.name}: trade.source: a sweep runs generated trade only; this "
            "scenario imports its trade"
        )
    return scenario


def point_options(point: Point, base: Options) -> Options:
    """The run's options: the sweep's `--scale`/`--seed` unless the point varies them."""
    changed: dict[str, Any] = {k: v for k, v in point.settings if k in RUN_OPTIONS}
    return dataclasses.replace(base, **changed)


def run_point(scenario_toml: bytes, point: Point, base: Options, version: str) -> dict[str, Any]:
    """Simulate one point: its settings, `summary.json`'s content and the hub's fees by fee
    model. Plain values in and out, so a process pool or a Dask worker can run it."""
    scenario = point_scenario(scenario_toml, point)
    try:
        run = simulate(scenario, point_options(point, base))
    except InputError as e:
        raise InputError(f"{point.name}: {e}") from None
    return {
        "index": point.index,
        "settings": [[key, value] for key, value in point.settings],
        "summary": run_summary(run, version),
        "hub_fees": hub_fees_by_model(costs_rows(run)),
    }


def hub_fees_by_model(rows: Sequence[Sequence[str]]) -> dict[str, dict[str, Any]]:
    """costs.csv's rows summed over the countries: every fee model's total hub fees (minor
    units of its currency), in the scenario's order of fee models."""
    if not rows:
        return {}
    column = {name: i for i, name in enumerate(rows[0])}
    totals: dict[str, dict[str, Any]] = {}
    for row in rows[1:]:
        model = row[column["fee_model"]]
        entry = totals.setdefault(model, {"currency": row[column["currency"]], "total": 0})
        entry["total"] += int(row[column["hub_fees"]])
    return totals


# -- the side-by-side comparison ---------------------------------------------------------

Cell = Value | None


def comparison(varies: Sequence[Vary], results: Sequence[Mapping[str, Any]]) -> list[list[Cell]]:
    """One row per run (in grid order) under a header: the varied values, then the
    measures `sweep.csv` and `sweep.md` compare."""
    models: list[str] = []
    for result in results:
        models.extend(m for m in result["hub_fees"] if m not in models)
    header: list[Cell] = ["run", *(v.key for v in varies), "certificates", "undelivered"]
    for route in ROUTE_NAMES:
        header += [
            f"{route}_certificates",
            f"{route}_p50_seconds",
            f"{route}_p95_seconds",
            f"{route}_p99_seconds",
            f"{route}_share_within_1h",
        ]
    header += ["hub_queue_wait_mean_seconds", "hub_queue_wait_p99_seconds"]
    header += ["hub_most_envelopes_held"]
    header += [f"hub_fees_{m}" for m in models]
    if models:
        header.append("fee_currency")
    rows: list[list[Cell]] = [header]
    for result in sorted(results, key=lambda r: int(r["index"])):
        numbers: Mapping[str, Any] = result["summary"]
        settings = dict((key, value) for key, value in result["settings"])
        row: list[Cell] = [int(result["index"]), *(settings[v.key] for v in varies)]
        row += [numbers["certificates"], numbers["undelivered"]]
        for route in ROUTE_NAMES:
            measures = numbers["by_route"][route]
            row += [
                measures["certificates"],
                measures["p50_seconds"],
                measures["p95_seconds"],
                measures["p99_seconds"],
                measures["share_within_1h"],
            ]
        waits = numbers["hub_queue_wait_seconds"]
        row += [waits["mean"], waits["p99"], numbers["hub_most_envelopes_held"]]
        fees: Mapping[str, Any] = result["hub_fees"]
        row += [fees[m]["total"] if m in fees else None for m in models]
        if models:
            row.append(next((f["currency"] for f in fees.values()), None))
        rows.append(row)
    return rows


def csv_cell(cell: Cell) -> str:
    """A cell of sweep.csv: empty for no value (a route no certificate took)."""
    return "" if cell is None else shown_value(cell)


def markdown(
    scenario_name: str, base: Options, version: str, table: Sequence[Sequence[Cell]]
) -> str:
    """sweep.md: a line on what was run, then the comparison as one Markdown table."""
    header, *rows = table
    varied = [str(h) for h in header[1 : header.index("certificates")]]
    fixed = [f"scale {base.scale:g}"] if "scale" not in varied else []
    fixed += [f"seed {base.seed}"] if "seed" not in varied else []
    lines = [
        f"# Sweep of `{scenario_name}`",
        "",
        f"{len(rows)} runs varying {', '.join(varied)} ({', '.join([*fixed, ''])}code "
        f"version {version}). Latencies are in seconds over the "
        "certificates delivered; `share_within_1h` is a share of them; hub fees are in minor "
        "units of `fee_currency`, summed over the countries. A blank is a route no "
        "certificate took. Each run's `summary.json` is in `runs/`.",
        "",
        "| " + " | ".join(_markdown_cell(h) for h in header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _markdown_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, int) and not isinstance(cell, bool):
        return f"{cell:,}"
    if isinstance(cell, float):
        return f"{cell:g}"
    # A text value (a varied name or currency) must not end its cell or its row.
    return shown_value(cell).replace("\\", "\\\\").replace("|", "\\|")


# -- one --vary spec ---------------------------------------------------------------------


def _shown(spec: str) -> str:
    return repr(spec if len(spec) <= SHOWN_CHARS else spec[:SHOWN_CHARS] + "...")


def _parse_spec(spec: str, scenario_document: Mapping[str, Any]) -> Vary:
    if len(spec) > MAX_SPEC_CHARS:
        raise InputError(f"--vary {_shown(spec)}: longer than {MAX_SPEC_CHARS:,} characters")
    key, equals, listed = spec.partition("=")
    key = key.strip()
    if not equals or not key:
        raise InputError(
            f"--vary {_shown(spec)}: KEY=V1,V2,... is required (e.g. topology.top_k=1,5,10)"
        )
    kind = _kind(key, spec, scenario_document)
    if not listed.strip():
        raise InputError(f"--vary {_shown(spec)}: no values for {key}")
    texts = [text.strip() for text in listed.split(",")]
    if "" in texts:
        raise InputError(f"--vary {_shown(spec)}: an empty value (two commas, or one at an end)")
    values = tuple(_value(text, kind, key, spec) for text in texts)
    # Compared as values: 1 and 1.0 would be the same run twice.
    if len(set(values)) != len(values):
        raise InputError(f"--vary {_shown(spec)}: a value is listed twice")
    return Vary(key, values)


def _kind(key: str, spec: str, scenario_document: Mapping[str, Any]) -> Kind:
    if key in RUN_OPTIONS:
        return RUN_OPTIONS[key]
    where = f"--vary {_shown(spec)}"
    if not _KEY.fullmatch(key):
        raise InputError(f"{where}: {key[:SHOWN_CHARS]!r} is not a key of the scenario{_keys()}")
    parts = key.split(".")
    found: Any = scenario_document
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        found = found.get(parts[depth - 1], _MISSING) if isinstance(found, dict) else _MISSING
        if prefix in ARRAYS or isinstance(found, list):
            raise InputError(
                f"{where}: {prefix} is an array, which a sweep does not vary; write a scenario "
                "file for each variant instead"
            )
        if depth == len(parts) and (prefix in TABLES or isinstance(found, dict)):
            raise InputError(f"{where}: {prefix} is a table; vary one of its keys{_keys()}")
    known = FORMAT_KEYS.get(key)
    if known is not None:
        return known
    if isinstance(found, bool):
        return "boolean"
    if isinstance(found, int):
        return "integer"
    if isinstance(found, float):
        return "number"
    if isinstance(found, str):
        return "text"
    raise InputError(f"{where}: {key!r} is not a key of the scenario{_keys()}")


def _keys() -> str:
    return f" (variable: {', '.join([*RUN_OPTIONS, *FORMAT_KEYS])})"


def _value(text: str, kind: Kind, key: str, spec: str) -> Value:
    where = f"--vary {_shown(spec)}"
    shown = repr(text[:SHOWN_CHARS])
    if kind == "integer":
        # ASCII digits only: int() would take '٣' or '1_0' too.
        if not _INTEGER.fullmatch(text):
            raise InputError(f"{where}: {shown} is not a whole number ({key} is one)")
        number = int(text)
        if key == "seed" and not 0 <= number <= MAX_SEED:
            raise InputError(f"{where}: seed {number} is not between 0 and 2**63 - 1")
        return number
    if kind == "number":
        if not _NUMBER.fullmatch(text):
            raise InputError(f"{where}: {shown} is not a number ({key} is one)")
        value: int | float = int(text) if _INTEGER.fullmatch(text) else float(text)
        if not math.isfinite(value):
            raise InputError(f"{where}: {shown} is not a finite number")
        if key == "scale" and not MIN_SCALE <= value <= MAX_SCALE:
            raise InputError(
                f"{where}: scale {text} is not between {MIN_SCALE:g} and {MAX_SCALE:g}"
            )
        return value
    if kind == "boolean":
        if text not in ("true", "false"):
            raise InputError(f"{where}: {shown} is not true or false ({key} is one)")
        return text == "true"
    if len(text) > MAX_TEXT:
        raise InputError(f"{where}: a value is longer than {MAX_TEXT} characters")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise InputError(f"{where}: {shown} has a control or unassigned character")
    return text
