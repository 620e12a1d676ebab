"""The bundled public lists against their upstream copies in ../shared (the oracle): the
counts SOURCES.md records, and the package data byte for byte what the recipe
(tools/codelists/build_bundled.py) builds from them."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import os
import pathlib
from types import ModuleType

import pytest

from node.codelists.lists import CodeList, bundled
from node.codelists.locations import ASSET_NAME, Locations
from node.codelists.upstream import Edition, parse_code_list

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "conformance"
LISTS = SHARED / "codelists"
DATA = ROOT / "node" / "codelists" / "data"
pytestmark = pytest.mark.shared


def _read(name: str) -> bytes:
    path = LISTS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the third-party conformance files are not here")
    return path.read_bytes()


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_read(name).decode("utf-8"), newline="")))


EDITION = Edition("1", "oracle test")


def test_units_are_rec20_revision_17_complete() -> None:
    units = parse_code_list(_read("unece_rec20_rev17_2021_units.csv"), "rec20", EDITION)
    assert len(units.codes) + len(units.deleted) == 2136
    assert (len(units.deleted), len(units.deprecated)) == (309, 71)
    rows = _rows("unece_rec20_rev17_2021_units.csv")
    assert {r["code"] for r in rows if r["status"] == "X"} == set(units.deleted)
    assert {r["code"] for r in rows if r["status"] == "D"} == set(units.deprecated)
    assert bundled().get("units").codes == units.codes


def test_package_types_are_rec21_revision_12_and_cover_the_2006_list() -> None:
    packages = parse_code_list(_read("unece_rec21_rev12_2021_package_types.csv"), "rec21", EDITION)
    assert len(packages.codes) + len(packages.deleted) == 406
    list_2006 = {r["code"] for r in _rows("unece_rec21_package_type_2006_from_D17A_xsd.csv")}
    assert len(list_2006) == 377
    # Every code of the 2006 list the schema pins is in Revision 12: none only in 2006.
    assert list_2006 <= set(packages.codes)
    bundled_packages = bundled().get("package_types")
    assert bundled_packages.codes == packages.codes
    assert set(bundled_packages.deleted) == set(packages.deleted) == {"SX"}


def test_countries_are_the_249_of_iso_3166_1() -> None:
    countries = bundled().get("countries")
    assert len(countries) == 249
    assert countries.label("NL") == "Netherlands"
    # The same 249 codes as the schema's ISO list (its 2006 edition, refreshed since).
    schema_copy = {r["code"] for r in _rows("iso3166_alpha2_2006_from_D17A_xsd.csv")}
    assert set(countries) == schema_copy


def _is_split(row: list[str]) -> bool:
    """A row geoapify's conversion split at a comma in the name (see upstream.py)."""
    return row[3].startswith('"') and row[4].endswith('"')


def test_ports_against_the_sea_and_inland_subset(built: dict[str, bytes]) -> None:
    """SOURCES.md counts 17,051 ports (function 1 or 8) in its subset file: it read the
    split rows as they stand, so some road locations whose shifted columns start with "1"
    count as ports and some ports do not. Mended, the copy has 17,513 ports; the two
    agree on every row that was not split."""
    text = _read("unlocode_geoapify_ports_fn1_fn8.csv").decode("utf-8")
    subset = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert len(subset) == 17051
    places = Locations.from_asset_bytes(built[ASSET_NAME])
    ports = {p.code for p in places if "1" in p.function or "8" in p.function}
    assert len(ports) == 17513
    whole = list(csv.reader(io.StringIO(
        gzip.decompress(_read("unlocode_geoapify_all_codes.csv.gz")).decode("utf-8"),
        newline="",
    )))[1:]  # fmt: skip
    assert len(whole) == 116029
    split_codes = {row[0] for row in whole if _is_split(row)}
    assert len([row for row in whole if _is_split(row)]) == 1040
    intact = {row[0] for row in subset if not _is_split(row)}
    assert intact <= ports
    assert ports - {row[0] for row in subset} <= split_codes
    # Shanghai's port is CNSGH; CNSHA is now Hongqiao airport.
    assert {"NLRTM", "CNSGH", "BRSSZ", "DEHAM"} <= ports and "CNSHA" not in ports


def test_every_location_with_a_transport_function_is_kept(built: dict[str, bytes]) -> None:
    places = Locations.from_asset_bytes(built[ASSET_NAME])
    # 116,029 rows name 115,883 codes (some twice, by other names); 991 have no transport
    # function.
    assert len(places) == 114892
    assert places.search("São Paulo", country="BR")[0].code == "BRSAO"
    assert places.search("Sao Paulo", country="BR")[0].code == "BRSAO"


def _recipe() -> ModuleType:
    path = ROOT / "tools" / "codelists" / "build_bundled.py"
    spec = importlib.util.spec_from_file_location("build_bundled", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built() -> dict[str, bytes]:
    if not LISTS.is_dir():
        pytest.skip(f"{LISTS} is absent: the third-party conformance files are not here")
    recipe = _recipe()
    wheel = os.environ.get("PYCOUNTRY_WHEEL")
    files: dict[str, bytes] = recipe.build(
        lambda path: (SHARED / path).read_bytes(),
        pathlib.Path(wheel).read_bytes() if wheel else None,
    )
    return files


@pytest.mark.parametrize(
    "name",
    ["units.json", "package_types.json", "transport_modes.json", "transport_means.json"],
)
def test_bundled_lists_are_what_the_recipe_builds(built: dict[str, bytes], name: str) -> None:
    assert (DATA / name).read_bytes() == built[name]


def test_bundled_countries_are_what_the_recipe_builds(built: dict[str, bytes]) -> None:
    ours = CodeList.from_json_bytes((DATA / "countries.json").read_bytes())
    if os.environ.get("PYCOUNTRY_WHEEL"):
        assert (DATA / "countries.json").read_bytes() == built["countries.json"]
        return
    # Without the wheel (PYCOUNTRY_WHEEL=path of pycountry-26.2.16-py3-none-any.whl) the
    # recipe has no translations: all else must agree.
    rebuilt = json.loads(built["countries.json"])
    mine = json.loads((DATA / "countries.json").read_bytes())
    mine.pop("translations")
    assert mine == rebuilt
    assert set(ours.translations) >= {"ar", "zh", "ru", "fr", "es", "de", "pt", "nl"}


def test_bundled_locations_are_what_the_recipe_builds(built: dict[str, bytes]) -> None:
    # Compared unpacked: another zlib may pack the same text into other bytes.
    assert gzip.decompress((DATA / ASSET_NAME).read_bytes()) == gzip.decompress(built[ASSET_NAME])
