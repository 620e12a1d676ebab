"""A simulate run's output directory, read back and checked (pure: bytes in, values out).

`ephyto study report` builds its figures, tables and Parquet files from what
`ephyto study simulate` wrote (docs/study.md, "Simulate"), never from the run in memory,
so a report can be rebuilt from a directory alone. Every file is checked as it is read:
a header that is not the one simulate writes, a number that is not one, or a summary
without a key the report needs is refused with the file, line and column named.

Files another part of the study may add (exposure.csv, rotations.csv, transit.csv,
agreement.json, extra summary.json keys) are optional: kept as read when present.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from node.csv_records import csv_records
from node.errors import InputError
from node.study.scenario import TOPOLOGIES, GeneratedTrade, Scenario, parse_scenario
from node.study.tables import RUN_TABLES
from node.study.topology import TopologyCounts, count
from node.study.trade import generate_flows

SUMMARY: Final = "summary.json"
AGREEMENT: Final = "agreement.json"
# The CSV files simulate always writes, with their headers.
REQUIRED_CSVS: Final[Mapping[str, tuple[str, ...]]] = RUN_TABLES
# Files and summary keys other study commands add; shown when present, skipped when not.
OPTIONAL_CSVS: Final = ("exposure.csv", "rotations.csv", "transit.csv")
OPTIONAL_SUMMARY_KEYS: Final = (
    "trust",
    "exposure",
    "bytes_on_wire",
    "cpu_ms_per_certificate",
    "share_before_arrival",
)
ROUTES: Final = ("direct", "hub", "hub-fallback")
NOT_A_RUN: Final = f"no {SUMMARY}: not the output of `ephyto study simulate` or `ephyto study run`"
# A run's largest file is messages.csv (at most 100,000 rows, a few MB) or pairs.csv (a
# row per pair and route: 250 countries give under 190,000). Far above both, far below
# what would exhaust memory.
MAX_RUN_FILE_BYTES: Final = 256 << 20

# The numbers simulate writes: none is negative, none is written as nan or inf.
_WHOLE: Final = re.compile(r"[0-9]+")
_DECIMAL: Final = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Table:
    """A CSV file as read: its header and its rows, every row as wide as the header."""

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]  # the line in the file each row starts on

    def column(self, name: str) -> list[str]:
        at = self.header.index(name)
        return [row[at] for row in self.rows]


@dataclass(frozen=True, slots=True)
class RouteLatency:
    certificates: int
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None
    share_within_1h: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    """summary.json, the keys the report reads checked and typed; `raw` is all of it."""

    scenario: str
    code_version: str
    seed: int
    scale: float
    period_days: float
    topology: str
    countries: int
    direct_links: int
    hub_service_ms: float
    certificates: int
    undelivered: int
    by_route: Mapping[str, RouteLatency]
    hub_wait_mean_seconds: float | None
    hub_wait_p99_seconds: float | None
    hub_wait_max_seconds: float | None
    hub_most_envelopes_held: int
    messages_csv: str
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    origin: str
    destination: str
    submitted: float
    delivered: float | None  # None: undelivered
    route: str


@dataclass(frozen=True, slots=True)
class OutageResult:
    party: str
    start_hours: float
    duration_hours: float
    affected: int
    delayed: int
    delay_p50_seconds: float | None
    delay_p95_seconds: float | None
    delay_max_seconds: float | None
    pairs_affected: int  # the blast radius
    drain_hours: float | None


@dataclass(frozen=True, slots=True)
class CountryCost:
    country: str
    runs_node: bool
    fee_model: str
    currency: str
    hub_envelopes_sent: int
    hub_fees: int  # minor units of `currency`
    envelopes_past_plan_cap: int
    node_running_cost: int  # minor units of `node_currency`, for the period
    node_currency: str


@dataclass(frozen=True, slots=True)
class RunData:
    """Everything the report shows, read from one run's directory."""

    summary: Summary
    scenario: Scenario
    scenario_file: str
    messages: tuple[Message, ...]
    outages: tuple[OutageResult, ...]
    hub_holdings: tuple[tuple[int, int], ...]  # (hour, envelopes held at its end)
    costs: tuple[CountryCost, ...]
    tables: Mapping[str, Table]  # every CSV file, as read, by file name
    agreement: Mapping[str, Any] | None
    # The links and trust each topology would need for this scenario's countries and
    # trade (None for imported trade, which simulate does not model yet).
    topologies: Mapping[str, TopologyCounts] | None

    @property
    def messages_sampled(self) -> bool:
        return self.summary.messages_csv != "all"


def read_run(files: Mapping[str, bytes]) -> RunData:
    """The run in `files` (file name -> bytes, the directory's top level).

    InputError naming what is missing or wrong when it is not a simulate run's output.
    """
    if SUMMARY not in files:
        raise InputError(NOT_A_RUN)
    summary = parse_summary(files[SUMMARY])
    missing = [name for name in REQUIRED_CSVS if name not in files]
    if missing:
        raise InputError(f"{', '.join(missing)} missing: not a complete simulate output")
    tables = {
        name: parse_table(name, data, REQUIRED_CSVS.get(name))
        for name, data in sorted(files.items())
        if name.endswith(".csv")
    }
    scenario_file, scenario = _scenario_copy(files, summary.scenario)
    agreement = _json_object(AGREEMENT, files[AGREEMENT]) if AGREEMENT in files else None
    trade = scenario.trade
    topologies: Mapping[str, TopologyCounts] | None = None
    if isinstance(trade, GeneratedTrade):
        flows = generate_flows(scenario.countries, trade)
        topologies = {
            kind: count(kind, scenario.countries, flows, scenario.top_k) for kind in TOPOLOGIES
        }
    return RunData(
        summary=summary,
        scenario=scenario,
        scenario_file=scenario_file,
        messages=_messages(tables["messages.csv"]),
        outages=_outages(tables["outages.csv"]),
        hub_holdings=_holdings(tables["hub_holdings.csv"]),
        costs=_costs(tables["costs.csv"]),
        tables=tables,
        agreement=agreement,
        topologies=topologies,
    )


def parse_table(name: str, data: bytes, expected: Sequence[str] | None = None) -> Table:
    """A CSV file with a header row; `expected`: the header it must have."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not UTF-8 text") from None
    if "\0" in text:
        raise InputError(f"{name}: not a text file (it holds NUL bytes)")
    records = csv_records(text, name)
    first = next(records, None)
    if first is None:
        raise InputError(f"{name}: empty (no header row)")
    header = tuple(first[1])
    if expected is not None and header != tuple(expected):
        raise InputError(f"{name}: the header is not {','.join(expected)}")
    if len(set(header)) != len(header) or any(not h for h in header):
        raise InputError(f"{name}: the header has an empty or repeated column name")
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    for line, fields in records:
        if len(fields) != len(header):
            raise InputError(
                f"{name}, line {line}: {len(fields)} fields where the header has {len(header)}"
            )
        rows.append(tuple(fields))
        lines.append(line)
    return Table(name, header, tuple(rows), tuple(lines))


def parse_summary(data: bytes) -> Summary:
    raw = _json_object(SUMMARY, data)
    routes = _mapping(raw, "by_route")
    by_route = {}
    for route in ROUTES:
        entry = _mapping(routes, route, f"by_route.{route}")
        path = f"by_route.{route}"
        by_route[route] = RouteLatency(
            certificates=_count(entry, "certificates", path),
            p50_seconds=_optional_number(entry, "p50_seconds", path),
            p95_seconds=_optional_number(entry, "p95_seconds", path),
            p99_seconds=_optional_number(entry, "p99_seconds", path),
            share_within_1h=_optional_number(entry, "share_within_1h", path),
        )
    waits = _mapping(raw, "hub_queue_wait_seconds")
    service = _mapping(raw, "service_ms")
    return Summary(
        scenario=_string(raw, "scenario"),
        code_version=_string(raw, "code_version"),
        seed=_count(raw, "seed"),
        scale=_positive(raw, "scale"),
        period_days=_positive(raw, "period_days"),
        topology=_string(raw, "topology"),
        countries=_count(raw, "countries"),
        direct_links=_count(raw, "direct_links"),
        hub_service_ms=_number(service, "hub", "service_ms"),
        certificates=_count(raw, "certificates"),
        undelivered=_count(raw, "undelivered"),
        by_route=by_route,
        hub_wait_mean_seconds=_optional_number(waits, "mean", "hub_queue_wait_seconds"),
        hub_wait_p99_seconds=_optional_number(waits, "p99", "hub_queue_wait_seconds"),
        hub_wait_max_seconds=_optional_number(waits, "max", "hub_queue_wait_seconds"),
        hub_most_envelopes_held=_count(raw, "hub_most_envelopes_held"),
        messages_csv=_string(raw, "messages_csv"),
        raw=raw,
    )


def _json_object(name: str, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{name}: not valid JSON ({e})") from None
    except RecursionError:
        raise InputError(f"{name}: nested too deeply to be a study's file") from None
    if not isinstance(value, dict):
        raise InputError(f"{name}: not a JSON object")
    return value


def _no_constant(name: str) -> None:
    # NaN and Infinity are not JSON; Python's reader accepts them unless told not to.
    raise ValueError(f"{name} is not a JSON number")


def _where(key: str, path: str) -> str:
    return f"{SUMMARY}: {path}.{key}" if path else f"{SUMMARY}: {key}"


def _mapping(table: Mapping[str, Any], key: str, path: str = "") -> Mapping[str, Any]:
    value = table.get(key)
    if not isinstance(value, dict):
        raise InputError(f"{_where(key, path)}: missing or not an object")
    return value


def _string(table: Mapping[str, Any], key: str, path: str = "") -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise InputError(f"{_where(key, path)}: missing or not text")
    return value


def _count(table: Mapping[str, Any], key: str, path: str = "") -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{_where(key, path)}: missing or not a whole number of at least 0")
    return value


def _number(table: Mapping[str, Any], key: str, path: str = "") -> float:
    value = _optional_number(table, key, path)
    if value is None:
        raise InputError(f"{_where(key, path)}: missing")
    return value


def _positive(table: Mapping[str, Any], key: str, path: str = "") -> float:
    value = _number(table, key, path)
    if value <= 0:
        raise InputError(f"{_where(key, path)}: {value!r} is not above 0")
    return value


def _optional_number(table: Mapping[str, Any], key: str, path: str = "") -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InputError(f"{_where(key, path)}: {value!r} is not a number of at least 0")
    return float(value)


def _scenario_copy(files: Mapping[str, bytes], name: str) -> tuple[str, Scenario]:
    """The scenario file simulate copied beside its outputs: the .toml named `name`."""
    for file_name in sorted(f for f in files if f.endswith(".toml")):
        try:
            scenario = parse_scenario(files[file_name])
        except InputError:
            continue  # another TOML file in a directory written with --force
        if scenario.name == name:
            return file_name, scenario
    raise InputError(
        f"no copy of the scenario {name!r} (the .toml file simulate writes beside "
        f"{SUMMARY}), or it is not readable"
    )


class _Row:
    """One CSV row's cells by column, read as the types the report needs; errors name the
    file, line, column and value."""

    def __init__(self, table: Table, line: int, row: tuple[str, ...]) -> None:
        self.table = table
        self.line = line
        self.cells = dict(zip(table.header, row, strict=True))

    def _bad(self, column: str, what: str) -> InputError:
        value = self.cells[column]
        return InputError(f"{self.table.name}, line {self.line}, {column}: {value!r} {what}")

    def text(self, column: str) -> str:
        return self.cells[column]

    def choice(self, column: str, allowed: Sequence[str]) -> str:
        if self.cells[column] not in allowed:
            raise self._bad(column, f"is not one of {', '.join(allowed)}")
        return self.cells[column]

    def number(self, column: str) -> float:
        value = self.optional_number(column)
        if value is None:
            raise self._bad(column, "is empty; a number is required")
        return value

    def optional_number(self, column: str) -> float | None:
        """A finite number of at least 0, or None for an empty cell."""
        value = self.cells[column]
        if value == "":
            return None
        if not _DECIMAL.fullmatch(value):
            raise self._bad(column, "is not a number of at least 0")
        number = float(value)
        if not math.isfinite(number):
            raise self._bad(column, "is too large")
        return number

    def whole(self, column: str) -> int:
        value = self.cells[column]
        # 18 digits: below 2**63, so every count fits the Parquet files' int64 columns.
        if not _WHOLE.fullmatch(value) or len(value) > 18:
            raise self._bad(column, "is not a whole number of at least 0")
        return int(value)


def _rows(table: Table) -> list[_Row]:
    return [_Row(table, line, row) for line, row in zip(table.lines, table.rows, strict=True)]


def _messages(table: Table) -> tuple[Message, ...]:
    return tuple(
        Message(
            origin=row.text("from"),
            destination=row.text("to"),
            submitted=row.number("submitted"),
            delivered=row.optional_number("delivered"),
            route=row.choice("route", ROUTES),
        )
        for row in _rows(table)
    )


def _outages(table: Table) -> tuple[OutageResult, ...]:
    return tuple(
        OutageResult(
            party=row.text("party"),
            start_hours=row.number("start_hours"),
            duration_hours=row.number("duration_hours"),
            affected=row.whole("certificates_affected"),
            delayed=row.whole("certificates_delayed"),
            delay_p50_seconds=row.optional_number("delay_p50_seconds"),
            delay_p95_seconds=row.optional_number("delay_p95_seconds"),
            delay_max_seconds=row.optional_number("delay_max_seconds"),
            pairs_affected=row.whole("pairs_affected"),
            drain_hours=row.optional_number("drain_hours"),
        )
        for row in _rows(table)
    )


def _holdings(table: Table) -> tuple[tuple[int, int], ...]:
    return tuple((row.whole("hour"), row.whole("envelopes_held")) for row in _rows(table))


def _costs(table: Table) -> tuple[CountryCost, ...]:
    return tuple(
        CountryCost(
            country=row.text("country"),
            runs_node=row.choice("runs_node", ("yes", "no")) == "yes",
            fee_model=row.text("fee_model"),
            currency=row.text("currency"),
            hub_envelopes_sent=row.whole("hub_envelopes_sent"),
            hub_fees=row.whole("hub_fees"),
            envelopes_past_plan_cap=row.whole("envelopes_past_plan_cap"),
            node_running_cost=row.whole("node_running_cost"),
            node_currency=row.text("node_currency"),
        )
        for row in _rows(table)
    )
