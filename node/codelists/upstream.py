"""The upstream formats of the public code lists: bytes in, a CodeList (or Locations) out.

What `ephyto codelists import` and tools/codelists/build_bundled.py read, so that a new
UNECE edition is imported rather than hand-edited. Pure: no file, no clock. Anything
malformed is an InputError naming the line.

- ``rec20``: UN/ECE Recommendation 20 units, the CSV of the Rev 17 spreadsheet
  (``status,code,name,description,level_category,symbol,conversion_factor``). Status
  ``X`` is a deleted code, ``D`` a deprecated one, any other mark (added, changed,
  reinstated) a current one. The symbol is kept as the attribute ``symbol``.
- ``rec21``: UN/ECE Recommendation 21 package types
  (``status,code,name,description,numeric_code``), the same marks.
- ``rec19``, ``rec28``: two-column ``code,name`` lists (Recommendation 19 modes and 28
  means of transport, as the D17A code list schemas hold them). ``code,name`` is also
  the header of other lists, so these two are never guessed: give the format.
- ``iso3166``: ISO 3166-1 as pycountry's CSV
  (``alpha_2,alpha_3,numeric,name,official_name,common_name``). The label is the short
  name an inspector reads: the common name where ISO's short name is a sorting form
  ("Bolivia" for "Bolivia, Plurinational State of"), else the short name; alpha-3,
  numeric code and official name are attributes.
- ``unlocode``: UN/LOCODE in three shapes, told apart by their first line: geoapify's
  (``locode,country,location,name,nameWoDiacritics,subdivision,status,function,iata``),
  datasets/un-locode's ``code-list.csv`` (``Change,Country,Location,Name,
  NameWoDiacritics,Subdivision,Status,Function,Date,IATA,Coordinates,Remarks``) and
  UNECE's own headerless ``CodeListPart1/2/3.csv`` in that 12-column order (often
  Latin-1). Only locations with a transport function are kept (node.codelists.locations).

Codes and labels are text, never evaluated: a cell such as ``=HYPERLINK(...)`` is a label
like any other, and a code of that shape is refused by the code's pattern.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from node.codelists.lists import MAX_BYTES, MAX_LABEL_LEN, CodeList, Retired
from node.codelists.locations import (
    MAX_NAME_LEN,
    TRANSPORT_FUNCTIONS,
    Location,
    Locations,
)
from node.csv_records import csv_records
from node.errors import InputError

CODE_LIST_FORMATS: Final = ("rec20", "rec21", "rec19", "rec28", "iso3166")
FORMATS: Final = (*CODE_LIST_FORMATS, "unlocode")
ENCODINGS: Final = ("utf-8", "latin-1")

# The list each format fills unless told otherwise, and how messages name its standard.
LIST_NAMES: Final = {
    "rec20": "units",
    "rec21": "package_types",
    "rec19": "transport_modes",
    "rec28": "transport_means",
    "iso3166": "countries",
}
TITLES: Final = {
    "rec20": "UN/ECE Recommendation 20, Codes for Units of Measure Used in International Trade",
    "rec21": "UN/ECE Recommendation 21, Codes for Passengers, Types of Cargo, Packages and "
    "Packaging Materials",
    "rec19": "UN/ECE Recommendation 19, Codes for Modes of Transport",
    "rec28": "UN/ECE Recommendation 28, Codes for Types of Means of Transport",
    "iso3166": "ISO 3166-1 country codes",
    "unlocode": "UN/LOCODE, the United Nations Code for Trade and Transport Locations",
}
# What UNECE says of its recommendations; ISO's short names come through the Debian
# iso-codes project, whose notice goes with a list built from it (tools/codelists).
UNECE_NOTICE: Final = (
    "A UNECE publication: (c) United Nations, published free of charge by UNECE "
    "(https://unece.org/trade/uncefact/cl-recommendations), no explicit open licence."
)
DEFAULT_NOTICES: Final = {
    "rec20": UNECE_NOTICE,
    "rec21": UNECE_NOTICE,
    "rec19": UNECE_NOTICE,
    "rec28": UNECE_NOTICE,
    "iso3166": "ISO 3166-1 codes and names: ISO 3166 Maintenance Agency.",
    "unlocode": "UN/LOCODE: a UNECE publication (c) United Nations, published free of charge "
    "by UNECE (https://unece.org/trade/uncefact/unlocode).",
}

# UN/LOCODE's CodeListPart files are some 4 MB each; the whole list in one file is ~12.
MAX_LOCODE_BYTES: Final = 64 * 1024 * 1024

_REC20_HEADER: Final = (
    "status",
    "code",
    "name",
    "description",
    "level_category",
    "symbol",
    "conversion_factor",
)
_REC21_HEADER: Final = ("status", "code", "name", "description", "numeric_code")
_TWO_COLUMN_HEADER: Final = ("code", "name")
_ISO3166_HEADER: Final = ("alpha_2", "alpha_3", "numeric", "name", "official_name", "common_name")
_GEOAPIFY_HEADER: Final = (
    "locode",
    "country",
    "location",
    "name",
    "nameWoDiacritics",
    "subdivision",
    "status",
    "function",
    "iata",
)
_UNECE_HEADER: Final = (
    "Change",
    "Country",
    "Location",
    "Name",
    "NameWoDiacritics",
    "Subdivision",
    "Status",
    "Function",
    "Date",
    "IATA",
    "Coordinates",
    "Remarks",
)
_HEADERS: Final = {
    "rec20": _REC20_HEADER,
    "rec21": _REC21_HEADER,
    "rec19": _TWO_COLUMN_HEADER,
    "rec28": _TWO_COLUMN_HEADER,
    "iso3166": _ISO3166_HEADER,
}
# A header that names its format; ``code,name`` does not (several lists have it).
_DETECTED: Final = {
    _REC20_HEADER: "rec20",
    _REC21_HEADER: "rec21",
    _ISO3166_HEADER: "iso3166",
    _GEOAPIFY_HEADER: "unlocode",
    _UNECE_HEADER: "unlocode",
}

# Revision marks of Recommendations 20 and 21: blank, + added, # name changed,
# ¦ (or |) characteristics changed, = reinstated; X deleted; D deprecated.
_CURRENT_MARKS: Final = frozenset({"", "+", "#", "¦", "|", "="})
_DELETED: Final = "X"
_DEPRECATED: Final = "D"

_UNECE_CODE_RE: Final = re.compile(r"[A-Z0-9]{1,8}")
_ALPHA2_RE: Final = re.compile(r"[A-Z]{2}")
_ALPHA3_RE: Final = re.compile(r"[A-Z]{3}")
_NUMERIC_RE: Final = re.compile(r"[0-9]{3}")
_LOCATION_PART_RE: Final = re.compile(r"[A-Z0-9]{3}")
# C0 and C1 controls other than tab and line breaks: never in a list, typical of a file
# read in the wrong encoding (a Windows-1252 file read as Latin-1 shows C1 controls).
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Edition:
    """What the caller knows of an upstream file that the file itself does not say.

    ``edition`` is how messages name the edition whose deleted and deprecated marks the
    file carries, e.g. "Revision 17 (2021)"; by default "version <version>".
    """

    version: str
    source: str
    notice: str = ""
    edition: str = ""


def detect_format(data: bytes) -> str | None:
    """The format a file's first line names, or None (``code,name``, no header, unknown)."""
    first = data[:4096].split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    try:
        header = next(csv.reader([text]), [])
    except csv.Error:
        return None
    return _DETECTED.get(tuple(cell.strip() for cell in header))


def parse_code_list(
    data: bytes,
    fmt: str,
    edition: Edition,
    *,
    name: str | None = None,
    encoding: str | None = None,
) -> CodeList:
    """A CodeList from one upstream file of format `fmt` (one of CODE_LIST_FORMATS)."""
    if fmt not in CODE_LIST_FORMATS:
        raise InputError(f"unknown code list format {fmt!r} ({', '.join(CODE_LIST_FORMATS)})")
    what = f"{fmt} file"
    text = _decode(data, what, MAX_BYTES, encoding, latin1_fallback=False)
    rows = csv_records(text, what)
    _expect_header(rows, _HEADERS[fmt], what)
    builder = _Builder(what, edition)
    if fmt == "rec20":
        for line, cells in _records(rows, len(_REC20_HEADER), what):
            status, code, label, _, _, symbol, _ = cells
            builder.add(line, status, code, label, {"symbol": symbol})
    elif fmt == "rec21":
        for line, cells in _records(rows, len(_REC21_HEADER), what):
            status, code, label, _, _ = cells
            builder.add(line, status, code, label, {})
    elif fmt in ("rec19", "rec28"):
        for line, (code, label) in _records(rows, 2, what):
            builder.add(line, "", code, label, {})
    else:
        for line, cells in _records(rows, len(_ISO3166_HEADER), what):
            _iso_country(builder, line, cells)
    list_name = name or LIST_NAMES[fmt]
    notice = edition.notice or DEFAULT_NOTICES[fmt]
    return builder.code_list(list_name, notice)


def parse_locations(
    files: Sequence[bytes], edition: Edition, *, encoding: str | None = None
) -> Locations:
    """Locations with a transport function from one or more UN/LOCODE files.

    UNECE publishes the list in three parts; give all of them. Rows without a location
    code (a country's name line, a reference entry) are skipped. A code given twice with
    other names (UN/LOCODE has a few) is one location with those names as aliases and the
    functions of all; the same code and name twice is refused.
    """
    if not files:
        raise InputError("unlocode: no file given")
    if sum(len(f) for f in files) > MAX_LOCODE_BYTES:
        raise InputError(f"unlocode files are larger than {MAX_LOCODE_BYTES} bytes together")
    merged: dict[str, _Place] = {}
    for number, data in enumerate(files, start=1):
        what = "unlocode file" if len(files) == 1 else f"unlocode file {number}"
        for line, place in _locode_places(data, what, encoding):
            known = merged.get(place.code)
            if known is None:
                merged[place.code] = place
            elif place.name in known.names():
                raise InputError(f"{what}, line {line}: {place.code} {place.name!r} given twice")
            else:
                merged[place.code] = known.merged_with(place)
    locations = [
        p.location() for p in merged.values() if TRANSPORT_FUNCTIONS.intersection(p.function)
    ]
    notice = edition.notice or DEFAULT_NOTICES["unlocode"]
    return Locations.of(edition.version, edition.source, notice, locations)


# -- reading ---------------------------------------------------------------------------


def _decode(
    data: bytes, what: str, cap: int, encoding: str | None, *, latin1_fallback: bool
) -> str:
    if not data.strip():
        raise InputError(f"{what} is empty")
    if len(data) > cap:
        raise InputError(f"{what} is larger than {cap} bytes")
    if encoding is not None and encoding not in ENCODINGS:
        raise InputError(f"unknown encoding {encoding!r} ({', '.join(ENCODINGS)})")
    if encoding == "latin-1":
        text = data.decode("latin-1")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            if encoding is None and latin1_fallback:
                # UNECE's own UN/LOCODE files are Latin-1: a file that is not UTF-8 is
                # taken as such, and the control-character check below catches a file
                # in some other encoding.
                text = data.decode("latin-1")
            else:
                raise InputError(
                    f"{what}, line {line}: not UTF-8 (byte {exc.start}); "
                    "give --encoding latin-1 if the file is Latin-1"
                ) from None
    bad = _CONTROL_RE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(
            f"{what}, line {line}: control character U+{ord(bad.group()):04X} "
            "(not a text file, or read in the wrong --encoding)"
        )
    return text


def _expect_header(
    rows: Iterator[tuple[int, list[str]]], header: tuple[str, ...], what: str
) -> None:
    first = next(rows, None)
    if first is None:
        raise InputError(f"{what} is empty")
    found = tuple(cell.strip() for cell in first[1])
    if found != header:
        raise InputError(
            f"{what}, line {first[0]}: the header must be {','.join(header)}, "
            f"not {','.join(found)[:200]}"
        )


def _records(
    rows: Iterator[tuple[int, list[str]]], width: int, what: str
) -> Iterator[tuple[int, list[str]]]:
    for line, cells in rows:
        if len(cells) != width:
            raise InputError(f"{what}, line {line}: {len(cells)} fields, expected {width}")
        yield line, cells


def _label(text: str, what: str, line: int, field: str) -> str:
    # Line breaks and runs of blanks (no-break spaces too) in a spreadsheet cell are
    # layout, not part of the name.
    label = " ".join(text.split())
    if not label:
        raise InputError(f"{what}, line {line}: no {field}")
    if "\ufffd" in label:
        raise InputError(
            f"{what}, line {line}: the {field} has lost characters (U+FFFD) in a conversion"
        )
    if len(label) > MAX_LABEL_LEN:
        raise InputError(f"{what}, line {line}: the {field} is longer than {MAX_LABEL_LEN}")
    return label


# -- code lists --------------------------------------------------------------------------


class _Builder:
    """Codes, deleted and deprecated codes and attributes gathered row by row."""

    def __init__(self, what: str, edition: Edition) -> None:
        self.what = what
        self.edition = edition
        # The marks say a code was deleted or deprecated by this edition or an earlier
        # one; the file does not say which.
        self.retired_in = f"{edition.edition or f'version {edition.version}'} or before"
        self.codes: dict[str, str] = {}
        self.deleted: dict[str, Retired] = {}
        self.deprecated: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}
        self.lines: dict[str, int] = {}

    def add(
        self,
        line: int,
        status: str,
        code: str,
        label: str,
        attributes: dict[str, str],
        code_re: re.Pattern[str] = _UNECE_CODE_RE,
    ) -> None:
        what = self.what
        code = code.strip()
        if not code_re.fullmatch(code):
            raise InputError(f"{what}, line {line}: {code[:40]!r} is not a code of this list")
        if code in self.lines:
            raise InputError(
                f"{what}, line {line}: code {code} given twice (first on line {self.lines[code]})"
            )
        self.lines[code] = line
        label = _label(label, what, line, "name")
        mark = status.strip()
        if mark == _DELETED:
            self.deleted[code] = Retired(label, self.retired_in)
            return
        if mark == _DEPRECATED:
            self.deprecated[code] = self.retired_in
        elif mark not in _CURRENT_MARKS:
            raise InputError(f"{what}, line {line}: unknown status mark {mark[:10]!r}")
        self.codes[code] = label
        kept = {key: " ".join(value.split()) for key, value in attributes.items()}
        kept = {key: value for key, value in kept.items() if value}
        if kept:
            self.attributes[code] = kept

    def code_list(self, name: str, notice: str) -> CodeList:
        if not self.codes:
            raise InputError(f"{self.what} holds no current code")
        return CodeList(
            name,
            self.edition.version,
            self.edition.source,
            self.codes,
            notice=notice,
            deprecated=self.deprecated,
            deleted=self.deleted,
            attributes=self.attributes,
        )


def _iso_country(builder: _Builder, line: int, cells: list[str]) -> None:
    alpha_2, alpha_3, numeric, short_name, official_name, common_name = (c.strip() for c in cells)
    what = builder.what
    if not _ALPHA3_RE.fullmatch(alpha_3) or not _NUMERIC_RE.fullmatch(numeric):
        raise InputError(f"{what}, line {line}: bad alpha-3 {alpha_3!r} or numeric {numeric!r}")
    short_name = _label(short_name, what, line, "name")
    attributes = {"alpha_3": alpha_3, "numeric": numeric, "official_name": official_name}
    if common_name:
        # ISO's own short name stays known where the label is the common one.
        attributes["iso_name"] = short_name
    builder.add(line, "", alpha_2, common_name or short_name, attributes, _ALPHA2_RE)


# -- UN/LOCODE ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    """A UN/LOCODE row on its way to a Location."""

    code: str
    name: str
    plain: str
    subdivision: str
    function: str
    status: str
    iata: str
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def merged_with(self, other: _Place) -> _Place:
        # Two rows of one code: one location, named both ways, with the functions of both.
        if self.function and other.function:
            pairs = zip(self.function, other.function, strict=True)
            function = "".join(a if a != "-" else b for a, b in pairs)
        else:
            function = self.function or other.function
        return _Place(
            self.code,
            self.name,
            self.plain,
            self.subdivision,
            function,
            self.status,
            self.iata,
            (*self.aliases, other.name),
        )

    def location(self) -> Location:
        plain = "" if self.plain == self.name else self.plain
        return Location(
            self.code,
            self.name,
            plain,
            self.subdivision,
            self.function,
            self.status,
            self.iata,
            self.aliases,
        )


def _locode_places(data: bytes, what: str, encoding: str | None) -> Iterator[tuple[int, _Place]]:
    # Only UNECE's headerless files may be Latin-1 without being told: the others are
    # conversions that write UTF-8.
    text = _decode(data, what, MAX_LOCODE_BYTES, encoding, latin1_fallback=True)
    rows = csv_records(text, what)
    first = next(rows, None)
    if first is None:
        raise InputError(f"{what} is empty")
    header = tuple(cell.strip() for cell in first[1])
    if header == _GEOAPIFY_HEADER:
        if _looks_latin1(data, encoding):
            raise InputError(f"{what}: not UTF-8; give --encoding latin-1 if it is Latin-1")
        yield from _geoapify_places(rows, what)
    elif header == _UNECE_HEADER:
        if _looks_latin1(data, encoding):
            raise InputError(f"{what}: not UTF-8; give --encoding latin-1 if it is Latin-1")
        yield from _unece_places(rows, what)
    elif len(first[1]) == len(_UNECE_HEADER):
        # UNECE's CodeListPart files have no header: the first line is a row.
        yield from _unece_places(_chain(first, rows), what)
    else:
        raise InputError(
            f"{what}, line {first[0]}: neither a UN/LOCODE header "
            f"({','.join(_GEOAPIFY_HEADER)} or {','.join(_UNECE_HEADER)}) "
            "nor a 12-column UNECE row"
        )


def _looks_latin1(data: bytes, encoding: str | None) -> bool:
    if encoding is not None:
        return False
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return True
    return False


def _chain(
    first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _geoapify_places(
    rows: Iterator[tuple[int, list[str]]], what: str
) -> Iterator[tuple[int, _Place]]:
    width = len(_GEOAPIFY_HEADER)
    for line, cells in rows:
        if len(cells) != width:
            raise InputError(f"{what}, line {line}: {len(cells)} fields, expected {width}")
        cells = _rejoin_split_name(cells)
        locode, country, location, name, plain, subdivision, status, function, iata = cells
        if locode != country + location:
            raise InputError(f"{what}, line {line}: {locode!r} is not {country!r} + {location!r}")
        yield line, _place(what, line, country, location, name, plain, subdivision, status,
                           function, iata)  # fmt: skip


def _rejoin_split_name(cells: list[str]) -> list[str]:
    """Mend geoapify's one known defect: a name with a comma ("Altenau, Mühlberg") came out
    as two quoted halves in both name columns, pushing subdivision and function two columns
    on and losing status and IATA code. Only that exact shape is mended."""
    if (
        cells[3].startswith('"')
        and cells[4].endswith('"')
        and cells[5].startswith('"')
        and cells[6].endswith('"')
    ):
        name = f"{cells[3][1:]},{cells[4][:-1]}"
        plain = f"{cells[5][1:]},{cells[6][:-1]}"
        return [*cells[:3], name, plain, cells[7], "", cells[8], ""]
    return cells


def _unece_places(rows: Iterator[tuple[int, list[str]]], what: str) -> Iterator[tuple[int, _Place]]:
    width = len(_UNECE_HEADER)
    for line, cells in rows:
        if len(cells) != width:
            raise InputError(f"{what}, line {line}: {len(cells)} fields, expected {width}")
        _, country, location, name, plain, subdivision, status, function, _, iata, _, _ = cells
        if not location.strip():
            continue  # a country's name line (".NETHERLANDS") or a reference entry
        yield line, _place(what, line, country, location, name, plain, subdivision, status,
                           function, iata)  # fmt: skip


def _place(
    what: str,
    line: int,
    country: str,
    location: str,
    name: str,
    plain: str,
    subdivision: str,
    status: str,
    function: str,
    iata: str,
) -> _Place:
    country, location = country.strip(), location.strip()
    if not _ALPHA2_RE.fullmatch(country) or not _LOCATION_PART_RE.fullmatch(location):
        raise InputError(f"{what}, line {line}: {country + location!r} is not a UN/LOCODE")
    plain = _locode_name(plain, what, line)
    name = " ".join(name.split())
    # The name column of some copies lost its diacritics to U+FFFD (geoapify's): the name
    # without diacritics is then the best there is.
    if not name or "\ufffd" in name:
        name = plain
    if len(name) > MAX_NAME_LEN:
        raise InputError(f"{what}, line {line}: the name is longer than {MAX_NAME_LEN}")
    function = function.strip()
    iata = iata.strip()
    if iata == "---":
        iata = ""  # some copies write "no IATA code" so
    place = _Place(
        country + location, name, plain, subdivision.strip(), function, status.strip(), iata
    )
    try:
        place.location()  # the same checks the asset's rows get
    except InputError as exc:
        raise InputError(f"{what}, line {line}: {exc}") from None
    return place


def _locode_name(text: str, what: str, line: int) -> str:
    name = " ".join(text.split())
    if not name:
        raise InputError(f"{what}, line {line}: no name")
    if len(name) > MAX_NAME_LEN:
        raise InputError(f"{what}, line {line}: the name is longer than {MAX_NAME_LEN}")
    return name
