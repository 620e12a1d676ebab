"""UN/LOCODE locations with a transport function: look-up by code, search by name.

Some 115,000 locations are too many for the code lists that load with every validation
process (node.codelists.lists.bundled), so they ship as a package asset of their own,
``data/locations.tsv.gz``, read only when something asks for a location: a certificate
that carries a port code, or a search. LocationSource is that lazy loading (the shell);
Locations, its look-up and its search are pure.

Only locations with a transport function are kept (UN/LOCODE function classifier: 1 sea
or other port, 2 rail, 3 road, 4 air, 6 multimodal, 7 fixed transport installation,
8 inland water, B border crossing): a certificate's ports of loading and entry are
among them. Locations whose only function is 0 (not known), 5 (postal exchange) or a
special economic zone are left out.

The asset (gzip'd, UTF-8): one JSON line ``{"format": "ephyto-locations", "version",
"source", "notice", "count"}``, then one line per location, tab-separated::

    code  name  name-without-diacritics  subdivision  function  status  iata  [alias...]

``name-without-diacritics`` is empty where it equals ``name``; aliases are further names
UN/LOCODE gives the same code.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, TypeVar

from node.errors import ConfigError, InputError

_T = TypeVar("_T")

ASSET_NAME: Final = "locations.tsv.gz"
_FORMAT: Final = "ephyto-locations"
# The 2024 asset is about 1.1 MB compressed and 4 MB unpacked; the caps leave room for
# growth while stopping a hostile or mistaken file (a gzip bomb) before it fills memory.
MAX_ASSET_BYTES: Final = 16 * 1024 * 1024
MAX_UNPACKED_BYTES: Final = 64 * 1024 * 1024
MAX_NAME_LEN: Final = 200
MAX_RESULTS: Final = 1000

# UN/LOCODE function classifier -> the word the CLI and the JSON use.
FUNCTIONS: Final[Mapping[str, str]] = {
    "1": "sea",
    "2": "rail",
    "3": "road",
    "4": "air",
    "6": "multimodal",
    "7": "fixed",
    "8": "inland",
    "B": "border",
}
FUNCTION_CODES: Final[Mapping[str, str]] = {word: code for code, word in FUNCTIONS.items()}
TRANSPORT_FUNCTIONS: Final = frozenset(FUNCTIONS)

_VERSION_RE: Final = re.compile(r"[0-9]{1,9}(?:[.-][0-9]{1,9}){0,7}")
CODE_RE: Final = re.compile(r"[A-Z]{2}[A-Z0-9]{3}")
FUNCTION_RE: Final = re.compile(r"(?:[-0-9AB]{8})?")
SUBDIVISION_RE: Final = re.compile(r"[A-Z0-9]{0,3}")
STATUS_RE: Final = re.compile(r"(?:[A-Z]{2})?")
IATA_RE: Final = re.compile(r"(?:[A-Z0-9]{3})?")
# A name: printable text without tabs or line breaks (the asset's separators).
_NAME_CHARS: Final = r"[^\t\n\r\x00-\x1f\x7f-\x9f]"
NAME_RE: Final = re.compile(f"{_NAME_CHARS}{{1,{MAX_NAME_LEN}}}")
# One asset row at once, the checks of Location in one C-level match: making 115,000
# Location objects to check them would cost seconds at the first port code validated.
# (One pattern over the whole body would be faster still, but the regex engine keeps a
# backtracking record per repetition: some 130 MB for the 2024 asset.)
_ROW_RE: Final = re.compile(
    r"[A-Z]{2}[A-Z0-9]{3}"
    rf"\t{_NAME_CHARS}{{1,{MAX_NAME_LEN}}}"
    rf"\t{_NAME_CHARS}{{0,{MAX_NAME_LEN}}}"
    r"\t[A-Z0-9]{0,3}\t(?:[-0-9AB]{8})?\t(?:[A-Z]{2})?\t(?:[A-Z0-9]{3})?"
    rf"(?:\t{_NAME_CHARS}{{1,{MAX_NAME_LEN}}})*"
)


def fold(text: str) -> str:
    """Text as search compares it: without diacritics, case-folded ("São" -> "sao")."""
    if text.isascii():
        return text.lower()  # the common case, and casefold() of ASCII is lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@dataclass(frozen=True, slots=True)
class Location:
    """One UN/LOCODE entry."""

    code: str
    name: str
    name_without_diacritics: str
    subdivision: str
    function: str  # the eight-position classifier, e.g. "1-3-----"
    status: str
    iata: str
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not CODE_RE.fullmatch(self.code):
            raise InputError(f"{self.code[:20]!r} is not a UN/LOCODE (two letters, three)")
        for name in (self.name, *self.aliases):
            if not NAME_RE.fullmatch(name):
                raise InputError(f"location {self.code}: name {name[:80]!r} is not one line")
        plain = self.name_without_diacritics
        if plain and not NAME_RE.fullmatch(plain):
            raise InputError(f"location {self.code}: name {plain[:80]!r} is not one line")
        checks = (
            (SUBDIVISION_RE, self.subdivision, "subdivision"),
            (FUNCTION_RE, self.function, "function"),
            (STATUS_RE, self.status, "status"),
            (IATA_RE, self.iata, "IATA code"),
        )
        for pattern, value, what in checks:
            if not pattern.fullmatch(value):
                raise InputError(f"location {self.code}: bad {what} {value[:20]!r}")

    @property
    def country(self) -> str:
        return self.code[:2]

    @property
    def functions(self) -> tuple[str, ...]:
        """The transport functions as words, in classifier order ("sea", "road", ...)."""
        return tuple(FUNCTIONS[c] for c in self.function if c in FUNCTIONS)

    def names(self) -> tuple[str, ...]:
        """Every name of the location: its name, without diacritics, its aliases."""
        plain = (self.name_without_diacritics,) if self.name_without_diacritics else ()
        return (self.name, *plain, *self.aliases)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "country": self.country,
            "name": self.name,
            "name_without_diacritics": self.name_without_diacritics or self.name,
            "subdivision": self.subdivision,
            "functions": list(self.functions),
            "function": self.function,
            "status": self.status,
            "iata": self.iata,
            "aliases": list(self.aliases),
        }

    def _row(self) -> str:
        plain = "" if self.name_without_diacritics == self.name else self.name_without_diacritics
        fields = (self.code, self.name, plain, self.subdivision, self.function, self.status)
        return "\t".join((*fields, self.iata, *self.aliases))


def _from_row(row: str) -> Location:
    fields = row.split("\t")
    code, name, plain, subdivision, function, status, iata = fields[:7]
    return Location(code, name, plain, subdivision, function, status, iata, tuple(fields[7:]))


@dataclass(frozen=True, slots=True)
class _Entry:
    """What search reads of a location: its code, function and folded names."""

    code: str
    function: str
    keys: tuple[str, ...]


class Locations:
    """A set of UN/LOCODE locations, by code; pure, never changed once made.

    Rows are kept as their asset lines and made into Location objects only when asked
    for: validation needs no more than `code in locations`.
    """

    __slots__ = ("_entries", "_rows", "notice", "source", "version")

    def __init__(self, version: str, source: str, notice: str, rows: Mapping[str, str]) -> None:
        # The rule of node.codelists.lists.version_key, checked here with its pattern:
        # lists.py imports this module (CodeLists carries locations), so not back.
        if not _VERSION_RE.fullmatch(version):
            raise InputError(
                f"locations version {version[:40]!r} is not numbers separated by '.' or '-'"
            )
        if not source.strip():
            raise InputError("locations: the source must be named")
        if not rows:
            raise InputError("locations: no location with a transport function")
        self.version = version
        self.source = source
        self.notice = notice
        self._rows = dict(rows)
        self._entries: list[_Entry] | None = None

    @classmethod
    def of(cls, version: str, source: str, notice: str, locations: Iterable[Location]) -> Locations:
        """Locations from Location records; InputError on a code given twice."""
        rows: dict[str, str] = {}
        for location in locations:
            if location.code in rows:
                raise InputError(f"locations: {location.code} given twice")
            rows[location.code] = location._row()
        return cls(version, source, notice, rows)

    def __contains__(self, code: object) -> bool:
        return code in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Location]:
        return (_from_row(self._rows[code]) for code in sorted(self._rows))

    def get(self, code: str) -> Location | None:
        """The location of that code, or None."""
        row = self._rows.get(code)
        return None if row is None else _from_row(row)

    def search(
        self,
        query: str,
        *,
        country: str | None = None,
        functions: frozenset[str] = frozenset(),
        limit: int = 20,
    ) -> list[Location]:
        """Locations matching `query`, best first: exact code, exact name, code or name
        prefix, name substring; within a rank by name, then code.

        Names match with and without diacritics and case ("Sao Paulo", "são paulo" and
        "SÃO PAULO" find São Paulo). `country` (ISO 3166-1 alpha-2) and `functions`
        (classifier characters, any of them) narrow the search.
        """
        wanted = fold(" ".join(query.split()))
        if not wanted:
            raise InputError("search: give part of a name or a code")
        if not 1 <= limit <= MAX_RESULTS:
            raise InputError(f"search: the limit must be 1 to {MAX_RESULTS}")
        if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
            raise InputError(f"search: country {country[:20]!r} is not two capital letters")
        unknown = functions - TRANSPORT_FUNCTIONS
        if unknown:
            raise InputError(f"search: unknown function(s) {', '.join(sorted(unknown))}")
        # "NL RTM" and "nlrtm" are ways of writing the code NLRTM.
        code_query = "".join(query.split()).upper()
        ranked: list[tuple[int, str, str]] = []
        for entry in self._search_entries():
            if country is not None and not entry.code.startswith(country):
                continue
            if functions and not any(c in functions for c in entry.function):
                continue
            keys = entry.keys
            if entry.code == code_query:
                rank = 0
            elif wanted in keys:
                rank = 1
            elif entry.code.startswith(code_query) or any(k.startswith(wanted) for k in keys):
                rank = 2
            elif any(wanted in k for k in keys):
                rank = 3
            else:
                continue
            ranked.append((rank, keys[0], entry.code))
        ranked.sort()
        return [_from_row(self._rows[code]) for _, _, code in ranked[:limit]]

    def _search_entries(self) -> list[_Entry]:
        # Folding every name costs a few tenths of a second: done on the first search
        # only, and never for validation, which needs no more than the codes.
        if self._entries is None:
            entries = []
            for code, row in self._rows.items():
                fields = row.split("\t")
                names = [fields[1], *(n for n in fields[2:3] if n), *fields[7:]]
                keys = tuple(dict.fromkeys(fold(n) for n in names))
                entries.append(_Entry(code, fields[4], keys))
            self._entries = entries
        return self._entries

    def to_asset_bytes(self) -> bytes:
        """The asset form (module docstring): deterministic, rows sorted by code."""
        header = {
            "format": _FORMAT,
            "version": self.version,
            "source": self.source,
            "notice": self.notice,
            "count": len(self._rows),
        }
        lines = [json.dumps(header, ensure_ascii=False, sort_keys=True)]
        lines += [self._rows[code] for code in sorted(self._rows)]
        text = "\n".join(lines) + "\n"
        # mtime=0 and no file name: the same locations always give the same bytes.
        return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)

    @classmethod
    def from_asset_bytes(cls, data: bytes) -> Locations:
        """Parse the asset form; InputError (with the line) when it is anything else."""
        header, body = _split_asset(_unpack(data))
        if body and not body.endswith("\n"):
            raise InputError("locations file: its last line is cut off")
        rows: dict[str, str] = {}
        match = _ROW_RE.fullmatch
        # split("\n"), not splitlines(): a name may hold U+2028, which that splits at.
        for number, row in enumerate(body.split("\n")[:-1], start=2):
            if match(row) is None:
                raise InputError(f"locations file: line {number} is malformed")
            code = row[:5]
            if code in rows:
                raise InputError(f"locations file, line {number}: {code} given twice")
            rows[code] = row
        if len(rows) != header.count:
            raise InputError(
                f"locations file: {len(rows)} locations, but its header says {header.count}"
            )
        return cls(header.version, header.source, header.notice, rows)


@dataclass(frozen=True, slots=True)
class AssetHeader:
    """The first line of a locations asset: what it is, without reading the rest."""

    version: str
    source: str
    notice: str
    count: int


def read_asset_header(data: bytes) -> AssetHeader:
    """The header of a locations asset, unpacking its first line only."""
    if len(data) > MAX_ASSET_BYTES:
        raise InputError(f"locations file is larger than {MAX_ASSET_BYTES} bytes")
    try:
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip framing
        first = inflater.decompress(data, 256 * 1024)
    except zlib.error as exc:
        raise InputError(f"locations file is not gzip: {exc}") from None
    line, newline, _ = first.partition(b"\n")
    if not newline:
        raise InputError("locations file: no header line")
    return _header(line)


def _unpack(data: bytes) -> bytes:
    if not data:
        raise InputError("locations file is empty")
    if len(data) > MAX_ASSET_BYTES:
        raise InputError(f"locations file is larger than {MAX_ASSET_BYTES} bytes")
    inflater = zlib.decompressobj(wbits=31)
    try:
        unpacked = inflater.decompress(data, MAX_UNPACKED_BYTES + 1)
    except zlib.error as exc:
        raise InputError(f"locations file is not gzip: {exc}") from None
    if len(unpacked) > MAX_UNPACKED_BYTES or inflater.unconsumed_tail:
        raise InputError(f"locations file unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise InputError("locations file: truncated, or data after its end")
    return unpacked


def _split_asset(unpacked: bytes) -> tuple[AssetHeader, str]:
    try:
        text = unpacked.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"locations file is not UTF-8: {exc}") from None
    line, newline, body = text.partition("\n")
    if not newline:
        raise InputError("locations file: no header line")
    return _header(line.encode("utf-8")), body


def _header(line: bytes) -> AssetHeader:
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        raise InputError("locations file: the header line is not JSON") from None
    keys = {"format", "version", "source", "notice", "count"}
    if not isinstance(doc, dict) or set(doc) != keys or doc["format"] != _FORMAT:
        raise InputError(f"locations file: the header is not {_FORMAT}'s")
    version, source, notice, count = (doc[k] for k in ("version", "source", "notice", "count"))
    if not all(isinstance(v, str) for v in (version, source, notice)) or type(count) is not int:
        raise InputError("locations file: malformed header")
    return AssetHeader(version, source, notice, count)


class LocationSource:
    """Locations loaded on first use from an asset (shell): the bundled one or a newer
    one in an override directory. `version` reads the header only."""

    __slots__ = ("_header", "_locations", "_read", "origin")

    def __init__(self, origin: str, read: Callable[[], bytes]) -> None:
        self.origin = origin
        self._read = read
        self._header: AssetHeader | None = None
        self._locations: Locations | None = None

    @property
    def header(self) -> AssetHeader:
        if self._header is None:
            self._header = self._load(read_asset_header)
        return self._header

    @property
    def version(self) -> str:
        return self.header.version

    def get(self) -> Locations:
        """The locations, read and checked the first time; ConfigError naming the file
        when it is unreadable or malformed (a packaging fault or a hand-edited file)."""
        if self._locations is None:
            self._locations = self._load(Locations.from_asset_bytes)
        return self._locations

    def _load(self, parse: Callable[[bytes], _T]) -> _T:
        try:
            return parse(self._read())
        except (InputError, OSError) as exc:
            raise ConfigError(f"{self.origin}: {exc}") from None


@functools.cache
def bundled_locations() -> LocationSource:
    """The locations asset shipped with the node (package data), loaded on first use."""
    asset = resources.files("node.codelists") / "data" / ASSET_NAME
    return LocationSource(f"bundled {ASSET_NAME}", asset.read_bytes)
