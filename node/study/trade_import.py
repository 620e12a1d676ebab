"""Trade flows for the study from an edge list or a FAOSTAT trade matrix (pure).

Bytes in, a frozen `TradeImport` out: the flows per (origin, destination) pair as ISO
3166-1 alpha-2 codes with their summed weight, and what could not be mapped. Malformed
input raises InputError naming the line, so a caller never holds half a result.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Final

from node.csv_records import csv_records
from node.errors import InputError
from node.study.fao import FAO_FIRST_AGGREGATE_CODE, CountryIndex, Resolved, Unmappable

# The whole FAOSTAT trade matrix is several gigabytes: an analyst cuts it down first
# (one item group, a few years); this keeps a wrong file from filling the memory.
MAX_INPUT_BYTES: Final = 256 * 1024 * 1024
# More different unmapped names than this means the wrong file or the wrong columns.
MAX_UNMAPPED_NAMES: Final = 1000
# A phytosanitary certificate goes with an export shipment and the exporting country
# issues it, so exports reported by the exporter are the closest FAOSTAT measure.
DEFAULT_ELEMENT: Final = "Export Quantity"
MAX_TOTAL: Final = 10**12


class TradeFormat(StrEnum):
    EDGES = "edges"
    FAOSTAT = "faostat"


@dataclass(frozen=True)
class Flow:
    origin: str
    destination: str
    weight: Decimal


@dataclass(frozen=True)
class Unmapped:
    """A country name or code that named no single country: where it first occurred,
    and how many times."""

    text: str
    reason: Unmappable
    first_line: int
    count: int


@dataclass(frozen=True)
class TradeImport:
    format: TradeFormat
    flows: tuple[Flow, ...]  # one per pair, weight > 0, sorted by (origin, destination)
    unmapped: tuple[Unmapped, ...]  # most frequent first
    rows_read: int  # data rows in the file
    rows_used: int  # rows whose flow is in `flows`
    same_country_rows: int  # both sides the same country (trade with itself): left out
    element: str | None = None  # FAOSTAT: the element counted
    years: tuple[int, ...] = ()  # FAOSTAT: the years summed
    units: tuple[str, ...] = ()  # FAOSTAT: the units of the values summed

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(sorted({f.origin for f in self.flows} | {f.destination for f in self.flows}))


# Header spellings of the edge list, compared after `_header_key`.
ORIGIN_HEADERS: Final = frozenset(
    {"origin", "from", "source", "src", "exporter", "exporting_country", "origin_country"}
)
DESTINATION_HEADERS: Final = frozenset(
    {"destination", "dest", "to", "target", "dst", "importer", "importing_country"}
    | {"destination_country", "partner"}
)
WEIGHT_HEADERS: Final = frozenset(
    {"weight", "value", "volume", "count", "certificates", "flow", "quantity", "trade"}
)
FAOSTAT_REPORTER: Final = "Reporter Countries"
FAOSTAT_PARTNER: Final = "Partner Countries"


def import_trade(
    data: bytes,
    index: CountryIndex,
    *,
    trade_format: TradeFormat | None = None,
    element: str | None = None,
    items: Sequence[str] = (),
    years: Sequence[int] = (),
    max_bytes: int = MAX_INPUT_BYTES,
) -> TradeImport:
    """Read an edge list or a FAOSTAT detailed trade matrix CSV (UTF-8, with or without
    a BOM, or Latin-1); `trade_format` None tells them apart by the header."""
    if len(data) > max_bytes:
        raise InputError(
            f"the file is larger than {max_bytes // (1024 * 1024)} MiB: "
            "cut it down first (one item, a few years)"
        )
    rows = csv_records(_decode(data))
    _, header = next(rows, (1, []))
    header = [h.strip() for h in header]
    if not any(header):
        raise InputError("line 1: the file is empty; it needs a header line")
    detected = (
        TradeFormat.FAOSTAT
        if FAOSTAT_REPORTER in header and FAOSTAT_PARTNER in header
        else TradeFormat.EDGES
    )
    chosen = trade_format or detected
    if chosen is TradeFormat.EDGES:
        if element is not None or items or years:
            raise InputError("--element, --item and --year apply to FAOSTAT files only")
        return _EdgeReader(index, header).read(rows)
    return _FaostatReader(index, header, element, items, years).read(rows)


def scale_to_total(flows: Sequence[Flow], total: int) -> tuple[Flow, ...]:
    """Whole certificates per pair, summing to exactly `total`, in proportion to weight.

    Each pair gets the whole part of its share; the certificates left over go one each
    to the pairs with the largest fractional parts, ties to the earlier pair in (origin,
    destination) order, so the same input always gives the same result. Pairs left with
    no certificate are dropped.
    """
    if total < 0 or total > MAX_TOTAL:
        raise InputError(f"--total must be between 0 and {MAX_TOTAL}, not {total}")
    weight_sum = sum((Fraction(f.weight) for f in flows), Fraction(0))
    if weight_sum == 0:
        raise InputError("nothing to scale: no flow with a weight above zero was mapped")
    ordered = sorted(flows, key=lambda f: (f.origin, f.destination))
    shares = [Fraction(f.weight) * total / weight_sum for f in ordered]
    whole = [s.numerator // s.denominator for s in shares]
    left_over = total - sum(whole)
    by_remainder = sorted(range(len(ordered)), key=lambda i: (-(shares[i] - whole[i]), i))
    for i in by_remainder[:left_over]:
        whole[i] += 1
    return tuple(
        Flow(f.origin, f.destination, Decimal(n))
        for f, n in zip(ordered, whole, strict=True)
        if n > 0
    )


def flows_csv(flows: Sequence[Flow]) -> bytes:
    """The normalised edge list: origin,destination,weight (alpha-2 codes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["origin", "destination", "weight"])
    for f in flows:
        writer.writerow([f.origin, f.destination, format(f.weight, "f")])
    return out.getvalue().encode("utf-8")


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # FAOSTAT's bulk files have long been Latin-1; every byte string decodes as it.
        return data.decode("latin-1")


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().casefold())


def _weight(text: str, line: int, what: str = "weight") -> Decimal:
    cleaned = text.strip()
    if not cleaned:
        raise InputError(f"line {line}: the {what} is empty")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InputError(f"line {line}: the {what} {cleaned[:40]!r} is not a number") from None
    if not value.is_finite():
        raise InputError(f"line {line}: the {what} {cleaned[:40]!r} is not a number")
    if value < 0:
        raise InputError(f"line {line}: the {what} {cleaned[:40]} is negative")
    return value


@dataclass
class _Tally:
    """Flows and unmapped names as rows are read (the mutable inside of one read)."""

    pairs: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    unmapped: dict[tuple[str, Unmappable], list[int]] = field(default_factory=dict)
    rows_used: int = 0
    same_country_rows: int = 0

    def add(self, line: int, origin: Resolved, destination: Resolved, weight: Decimal) -> None:
        texts = [(origin, "origin"), (destination, "destination")]
        missing = [(r, side) for r, side in texts if r.alpha2 is None]
        for resolved, _ in missing:
            self._unmapped(line, resolved)
        if missing:
            return
        assert origin.alpha2 is not None and destination.alpha2 is not None
        if origin.alpha2 == destination.alpha2:
            self.same_country_rows += 1
            return
        key = (origin.alpha2, destination.alpha2)
        self.pairs[key] = self.pairs.get(key, Decimal(0)) + weight
        self.rows_used += 1

    def _unmapped(self, line: int, resolved: Resolved) -> None:
        assert resolved.reason is not None
        key = (resolved.text, resolved.reason)
        seen = self.unmapped.get(key)
        if seen is None:
            if len(self.unmapped) >= MAX_UNMAPPED_NAMES:
                raise InputError(
                    f"line {line}: more than {MAX_UNMAPPED_NAMES} different names or codes "
                    "could not be mapped: is this the right file, and the right --format?"
                )
            self.unmapped[key] = [line, 1]
        else:
            seen[1] += 1

    def flows(self) -> tuple[Flow, ...]:
        return tuple(Flow(o, d, w) for (o, d), w in sorted(self.pairs.items()) if w > 0)

    def unmapped_report(self) -> tuple[Unmapped, ...]:
        entries = [Unmapped(t, r, ln, n) for (t, r), (ln, n) in self.unmapped.items()]
        return tuple(sorted(entries, key=lambda u: (-u.count, u.first_line)))


def _check_width(row: list[str], line: int, header: list[str]) -> None:
    # A field too many is most often a thousands separator or an unquoted comma in a
    # name: reading on would shift a country into the weight, or worse, quietly.
    if len(row) != len(header):
        raise InputError(
            f"line {line}: {len(row)} fields, but the header has {len(header)} "
            "(a comma in a number, or a name with a comma not in quotes?)"
        )


def _cell(row: list[str], column: int, line: int, header: list[str]) -> str:
    _check_width(row, line, header)
    return row[column]


class _EdgeReader:
    def __init__(self, index: CountryIndex, header: list[str]) -> None:
        self.index = index
        self.header = header
        keys = [_header_key(h) for h in header]
        self.columns = [
            _find_column(keys, names, label)
            for names, label in (
                (ORIGIN_HEADERS, "origin"),
                (DESTINATION_HEADERS, "destination"),
                (WEIGHT_HEADERS, "weight"),
            )
        ]
        self.cache: dict[str, Resolved] = {}

    def read(self, rows: Iterator[tuple[int, list[str]]]) -> TradeImport:
        tally, read = _Tally(), 0
        origin_col, destination_col, weight_col = self.columns
        for line, row in rows:
            read += 1
            origin = self._resolve(_cell(row, origin_col, line, self.header))
            destination = self._resolve(_cell(row, destination_col, line, self.header))
            weight = _weight(_cell(row, weight_col, line, self.header), line)
            tally.add(line, origin, destination, weight)
        return TradeImport(
            TradeFormat.EDGES,
            tally.flows(),
            tally.unmapped_report(),
            read,
            tally.rows_used,
            tally.same_country_rows,
        )

    def _resolve(self, text: str) -> Resolved:
        stripped = text.strip()
        if not stripped:
            return Resolved(None, Unmappable.UNKNOWN, "(empty)")
        if stripped not in self.cache:
            self.cache[stripped] = self.index.resolve(stripped)
        return self.cache[stripped]


def _find_column(keys: list[str], names: frozenset[str], label: str) -> int:
    found = [i for i, k in enumerate(keys) if k in names]
    if len(found) != 1:
        spellings = ", ".join(sorted(names))
        problem = "no" if not found else "more than one"
        raise InputError(
            f"line 1: {problem} {label} column in the header (the header names: {spellings})"
        )
    return found[0]


class _FaostatReader:
    def __init__(
        self,
        index: CountryIndex,
        header: list[str],
        element: str | None,
        items: Sequence[str],
        years: Sequence[int],
    ) -> None:
        self.index, self.header = index, header
        self.element = (element or DEFAULT_ELEMENT).strip().casefold()
        self.items = frozenset(i.strip().casefold() for i in items)
        self.years = frozenset(years)
        position = {name: i for i, name in enumerate(header)}
        required = [FAOSTAT_REPORTER, FAOSTAT_PARTNER, "Element", "Year", "Value"]
        if self.items:
            required.append("Item")
        missing = [name for name in required if name not in position]
        if missing:
            raise InputError(f"line 1: not a FAOSTAT trade matrix: no {', '.join(missing)} column")
        self.col = position
        self.cache: dict[tuple[str, str, str], Resolved] = {}

    def read(self, rows: Iterator[tuple[int, list[str]]]) -> TradeImport:
        by_year: dict[int, _Tally] = {}
        units: dict[int, set[str]] = {}
        elements_seen: set[str] = set()
        chosen_element: str | None = None
        read = 0
        for line, row in rows:
            read += 1
            element = self._get(row, "Element", line)
            if len(elements_seen) < 50:  # for the error message only
                elements_seen.add(element)
            if not self._is_element(row, element, line) or not self._is_item(row, line):
                continue
            year_text = self._get(row, "Year", line).strip()
            if not year_text.isdigit():
                raise InputError(f"line {line}: the year {year_text[:20]!r} is not a year")
            year = int(year_text)
            if self.years and year not in self.years:
                continue
            chosen_element = element
            value = _weight(self._get(row, "Value", line), line, "value")
            reporter = self._resolve(row, "Reporter", line)
            partner = self._resolve(row, "Partner", line)
            # Imports are reported by the importer: the partner is then the exporter.
            importing = element.strip().casefold().startswith("import")
            origin, destination = (partner, reporter) if importing else (reporter, partner)
            by_year.setdefault(year, _Tally()).add(line, origin, destination, value)
            if "Unit" in self.col:
                units.setdefault(year, set()).add(self._get(row, "Unit", line).strip())
        if not by_year:
            raise InputError(self._nothing_selected(elements_seen))
        # Without --year, the latest year: a certificate volume is a year's, and older
        # years would mix in old trade patterns (and former countries).
        chosen_years = sorted(self.years & by_year.keys()) if self.years else [max(by_year)]
        tally = _merge([by_year[y] for y in chosen_years])
        return TradeImport(
            TradeFormat.FAOSTAT,
            tally.flows(),
            tally.unmapped_report(),
            read,
            tally.rows_used,
            tally.same_country_rows,
            element=chosen_element,
            years=tuple(chosen_years),
            units=tuple(sorted(set().union(*(units.get(y, set()) for y in chosen_years)))),
        )

    def _get(self, row: list[str], name: str, line: int) -> str:
        return _cell(row, self.col[name], line, self.header)

    def _is_element(self, row: list[str], element: str, line: int) -> bool:
        if element.strip().casefold() == self.element:
            return True
        return "Element Code" in self.col and (
            self._get(row, "Element Code", line).strip().casefold() == self.element
        )

    def _is_item(self, row: list[str], line: int) -> bool:
        if not self.items:
            return True
        names = ["Item", "Item Code", "Item Code (CPC)", "Item Code (FAO)"]
        return any(
            self._get(row, n, line).strip().lstrip("'").casefold() in self.items
            for n in names
            if n in self.col
        )

    def _resolve(self, row: list[str], side: str, line: int) -> Resolved:
        name = self._get(row, f"{side} Countries", line).strip()
        m49_column = f"{side} Country Code (M49)"
        m49 = self._get(row, m49_column, line) if m49_column in self.col else ""
        fao_column = f"{side} Country Code"
        fao = self._get(row, fao_column, line).strip() if fao_column in self.col else ""
        key = (name, m49, fao)
        if key not in self.cache:
            self.cache[key] = self._resolve_uncached(name, m49, fao)
        return self.cache[key]

    def _resolve_uncached(self, name: str, m49: str, fao: str) -> Resolved:
        if not name and not m49.strip():
            return Resolved(None, Unmappable.UNKNOWN, "(empty)")
        by_name = self.index.resolve(name, faostat=True) if name else None
        if by_name and by_name.reason in (Unmappable.HISTORICAL, Unmappable.AGGREGATE):
            return by_name
        if fao.isdigit() and int(fao) >= FAO_FIRST_AGGREGATE_CODE:
            return Resolved(None, Unmappable.AGGREGATE, name or fao)
        if m49.strip():
            by_code = self.index.resolve_m49(m49)
            if by_code.alpha2 or by_name is None or by_name.alpha2 is None:
                return Resolved(by_code.alpha2, by_code.reason, name or m49.strip())
        assert by_name is not None
        return by_name

    def _nothing_selected(self, elements_seen: set[str]) -> str:
        wanted = [f"element {self.element!r}"]
        if self.items:
            wanted.append(f"item {', '.join(sorted(self.items))}")
        if self.years:
            wanted.append(f"year {', '.join(str(y) for y in sorted(self.years))}")
        seen = ", ".join(sorted(elements_seen)[:10]) or "none"
        return f"no row has {' and '.join(wanted)} (the elements in the file: {seen})"


def _merge(tallies: list[_Tally]) -> _Tally:
    merged = _Tally()
    for t in tallies:
        for key, weight in t.pairs.items():
            merged.pairs[key] = merged.pairs.get(key, Decimal(0)) + weight
        for name, (line, count) in t.unmapped.items():
            if name in merged.unmapped:
                seen = merged.unmapped[name]
                seen[0], seen[1] = min(seen[0], line), seen[1] + count
            else:
                merged.unmapped[name] = [line, count]
        merged.rows_used += t.rows_used
        merged.same_country_rows += t.same_country_rows
    return merged
