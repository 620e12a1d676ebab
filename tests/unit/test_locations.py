"""UN/LOCODE locations (node.codelists.locations): the asset, loading it lazily, search,
and a newer asset in an override directory."""

from __future__ import annotations

import gzip
import json
import logging
import pathlib

import pytest

from node.codelists import locations as loc
from node.codelists.directory import load_directory
from node.codelists.lists import CodeList, CodeLists, bundled
from node.codelists.locations import (
    ASSET_NAME,
    Location,
    Locations,
    LocationSource,
    fold,
    read_asset_header,
)
from node.errors import ConfigError, InputError

PLACES = (
    Location("NLRTM", "Rotterdam", "", "ZH", "12345---", "AF", ""),
    Location("USRAJ", "Rotterdam", "", "NY", "123-----", "RL", ""),
    Location("NLRTT", "Rotterdam The Hague Airport", "", "ZH", "---4----", "AI", "RTM"),
    Location("BRSAO", "São Paulo", "Sao Paulo", "SP", "-23-56--", "AA", ""),
    Location("BRSSZ", "Santos", "", "SP", "1-3-----", "AI", "SSZ"),
    Location("BRPWO", "São Paulo das Missões", "Sao Paulo das Missoes", "RS", "--3-----", "", ""),
    Location("PLLOD", "Łódź", "Lodz", "10", "--34-6--", "AI", "LCJ"),
    Location("DEDUI", "Duisburg", "", "NW", "1234----", "AF", ""),
    Location("FIVAA", "Vaalimaa", "", "", "--3----B", "AF", ""),
    Location("USTRI", "Tri-Cities Regional Airport", "", "TN", "-234----", "AI", "TRI",
             ("Bristol (Tri-Cities)",)),
)  # fmt: skip


def _places() -> Locations:
    return Locations.of("2100.1", "test places", "a notice", PLACES)


def _codes(found: list[Location]) -> list[str]:
    return [place.code for place in found]


# -- search ------------------------------------------------------------------------------


def test_fold_drops_diacritics_and_case() -> None:
    assert fold("São Paulo") == fold("SAO PAULO") == "sao paulo"
    assert fold("Łódź") == "łodz"  # Ł has no decomposition: the name without it helps


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("NLRTM", ["NLRTM"]),
        ("nl rtm", ["NLRTM"]),  # a code as people write it
        ("São Paulo", ["BRSAO", "BRPWO"]),
        ("Sao Paulo", ["BRSAO", "BRPWO"]),
        ("SAO PAULO", ["BRSAO", "BRPWO"]),
        ("Lodz", ["PLLOD"]),
        ("Łódź", ["PLLOD"]),
        ("missoes", ["BRPWO"]),  # a part of a name, without its diacritics
        ("Bristol", ["USTRI"]),  # another name of the same code
        ("BRS", ["BRSSZ", "BRSAO"]),  # a code prefix; within a rank by name
        ("xyz", []),
    ],
)
def test_search_finds_names_with_and_without_diacritics(query: str, expected: list[str]) -> None:
    assert _codes(_places().search(query)) == expected


def test_search_ranks_exact_code_exact_name_prefix_substring() -> None:
    # NLRTM: exact code; the two Rotterdams: exact name; the airport: name prefix.
    assert _codes(_places().search("Rotterdam")) == ["NLRTM", "USRAJ", "NLRTT"]
    # The exact code beats a name that merely starts with it ("USRAJ" is no name).
    places = Locations.of(
        "1", "t", "", [*PLACES, Location("NLDUI", "Duiven", "", "GE", "--3-----", "", "")]
    )
    assert _codes(places.search("DUI")) == ["DEDUI", "NLDUI"]  # both prefix: by name
    assert _codes(places.search("NLDUI")) == ["NLDUI"]


def test_search_filters_country_function_and_limit() -> None:
    places = _places()
    assert _codes(places.search("Rotterdam", country="US")) == ["USRAJ"]
    assert _codes(places.search("Rotterdam", functions=frozenset("4"))) == ["NLRTM", "NLRTT"]
    assert _codes(places.search("a", functions=frozenset("B"))) == ["FIVAA"]
    assert _codes(places.search("Rotterdam", limit=1)) == ["NLRTM"]


@pytest.mark.parametrize(
    ("query", "options", "why"),
    [
        ("  ", {}, "give part of a name"),
        ("x", {"limit": 0}, "limit"),
        ("x", {"limit": 100_000}, "limit"),
        ("x", {"country": "nl"}, "two capital letters"),
        ("x", {"country": "NLD"}, "two capital letters"),
        ("x", {"functions": frozenset("5")}, "unknown function"),
    ],
)
def test_bad_searches_are_refused(query: str, options: dict[str, object], why: str) -> None:
    with pytest.raises(InputError, match=why):
        _places().search(query, **options)  # type: ignore[arg-type]


# -- records and the asset -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        ("NL RT", "Rotterdam", "", "", "", "", ""),
        ("nlrtm", "Rotterdam", "", "", "", "", ""),
        ("NLRTM", "", "", "", "", "", ""),
        ("NLRTM", "Rotter\tdam", "", "", "", "", ""),
        ("NLRTM", "Rotterdam", "Rotter\ndam", "", "", "", ""),
        ("NLRTM", "x" * 201, "", "", "", "", ""),
        ("NLRTM", "Rotterdam", "", "Z-H", "", "", ""),
        ("NLRTM", "Rotterdam", "", "", "1234567", "", ""),
        ("NLRTM", "Rotterdam", "", "", "", "aF", ""),
        ("NLRTM", "Rotterdam", "", "", "", "", "RT"),
    ],
)
def test_malformed_records_are_refused(fields: tuple[str, ...]) -> None:
    with pytest.raises(InputError):
        Location(*fields)


def test_a_code_twice_and_empty_sets_are_refused() -> None:
    with pytest.raises(InputError, match="NLRTM given twice"):
        Locations.of("1", "t", "", [PLACES[0], PLACES[0]])
    with pytest.raises(InputError, match="no location"):
        Locations.of("1", "t", "", [])
    with pytest.raises(InputError, match="version"):
        Locations.of("D17A", "t", "", PLACES)


def test_asset_round_trip_is_deterministic() -> None:
    data = _places().to_asset_bytes()
    assert data == _places().to_asset_bytes()
    again = Locations.from_asset_bytes(data)
    assert (again.version, again.source, again.notice, len(again)) == (
        "2100.1",
        "test places",
        "a notice",
        len(PLACES),
    )
    assert sorted(again, key=lambda p: p.code) == sorted(PLACES, key=lambda p: p.code)
    header = read_asset_header(data)
    assert (header.version, header.count) == ("2100.1", len(PLACES))


_HEADER = '{"format": "ephyto-locations", "version": "1", "source": "s", "notice": "", "count": 1}'


def _asset(header: dict[str, object] | None, body: str) -> bytes:
    first = _HEADER if header is None else json.dumps(header)
    return gzip.compress((first + "\n" + body).encode(), mtime=0)


ROW = "NLRTM\tRotterdam\t\tZH\t12345---\tAF\t\n"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"plain text\n", "not gzip"),
        (_asset(None, ROW)[:-12], "truncated"),
        (_asset(None, ROW) + b"trailing", "data after its end"),
        (gzip.compress(b"no header line"), "no header line"),
        (gzip.compress(b"{not json\n" + ROW.encode()), "not JSON"),
        (_asset({"format": "other"}, ROW), "header is not"),
        (_asset(dict(json.loads(_HEADER), count="1"), ROW), "malformed header"),
        (_asset(None, ROW + ROW.replace("NLRTM", "NLRTT")), "2 locations, but its header says 1"),
        (_asset(None, ROW + ROW), "line 3: NLRTM given twice"),
        (_asset(None, ROW.rstrip("\n")), "last line is cut off"),
        # U+2028 in a name is no line break: the empty line 3 is the first malformed one.
        (_asset(None, ROW.replace("Rotterdam", "Rotter\u2028dam") + "\n"), "line 3 is malformed"),
        (_asset(None, ROW + "NLRTX\tRotter\x01dam\t\t\t\t\t\n"), "line 3 is malformed"),
        (_asset(None, "NLRTM\tRotterdam\n"), "line 2 is malformed"),
        (gzip.compress(b'{"format": "ephyto-locations"}\n\xff\n'), "not UTF-8"),
        (b"\x00" * (loc.MAX_ASSET_BYTES + 1), "larger than"),
    ],
)  # fmt: skip
def test_malformed_assets_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why):
        Locations.from_asset_bytes(data)


def test_a_gzip_bomb_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = gzip.compress(b"\n" * 100_000)
    monkeypatch.setattr(loc, "MAX_UNPACKED_BYTES", 10_000)
    with pytest.raises(InputError, match="unpacks to more than 10000 bytes"):
        Locations.from_asset_bytes(bomb)


# -- loading on first use, and the override directory ----------------------------------


class _CountingRead:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def test_a_source_reads_its_file_only_when_asked_and_once() -> None:
    read = _CountingRead(_places().to_asset_bytes())
    source = LocationSource("test asset", read)
    assert read.calls == 0
    assert source.version == "2100.1"
    assert "NLRTM" in source.get() and source.get() is source.get()
    assert read.calls == 2  # the header once, the whole once


def test_a_broken_source_is_a_config_error_naming_it() -> None:
    source = LocationSource("/srv/lists/locations.tsv.gz", lambda: b"garbage")
    with pytest.raises(ConfigError, match=r"/srv/lists/locations\.tsv\.gz: .*not gzip"):
        source.get()


def test_bundled_lists_carry_the_bundled_locations() -> None:
    lists = bundled()
    assert lists.locations is loc.bundled_locations()
    newer = CodeList("demo", "1", "t", {"A": "a"})
    assert lists.updated_with(newer).locations is lists.locations
    assert CodeLists.of([newer]).locations is None


def _newer_asset(version: str) -> bytes:
    extra = Location("XXNEW", "Newport", "", "", "1-------", "", "")
    return Locations.of(version, "newer test", "", [*PLACES, extra]).to_asset_bytes()


def test_a_newer_asset_in_the_directory_is_used(tmp_path: pathlib.Path) -> None:
    (tmp_path / ASSET_NAME).write_bytes(_newer_asset("2999.1"))
    lists = load_directory(tmp_path, bundled())
    assert lists.locations is not None and lists.locations.version == "2999.1"
    assert "XXNEW" in lists.locations.get()
    assert bundled().locations is not lists.locations  # the base is untouched


def test_an_older_asset_is_skipped_with_a_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ASSET_NAME).write_bytes(_newer_asset("1999"))
    with caplog.at_level(logging.WARNING, logger="node.codelists.directory"):
        lists = load_directory(tmp_path, bundled())
    assert lists.locations is bundled().locations
    assert "not newer" in caplog.text


def test_a_broken_asset_in_the_directory_names_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / ASSET_NAME).write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match=ASSET_NAME):
        load_directory(tmp_path, bundled())
