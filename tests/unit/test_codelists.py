"""The bundled code lists, their JSON form, the update path and the XSD import."""

from __future__ import annotations

import json
import logging
import pathlib
import re

import pytest

from node.codelists.directory import load_directory
from node.codelists.lists import (
    CodeList,
    CodeLists,
    bundled,
    uncefact_codelist_from_xsd,
    version_key,
)
from node.errors import ConfigError, InputError, UnsafeXmlError

SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "conformance"

EXPECTED_LISTS = {
    "countries",
    "units",
    "package_types",
    "transport_modes",
    "transport_means",
    "certificate_types",
    "status_codes",
    "treatment_types",
    "intended_uses",
    "conditions",
    "commodity_classes",
    "certifying_statements",
    "note_subjects",
}


def _doc(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "list": "demo",
        "version": "2024.1",
        "source": "test",
        "codes": {"A": "alpha", "B": "beta"},
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


# -- bundled data -------------------------------------------------------------------------


def test_every_bundled_list_loads_with_version_and_source() -> None:
    lists = bundled()
    assert set(lists.names()) == EXPECTED_LISTS
    for name in lists.names():
        code_list = lists.get(name)
        assert code_list.version
        version_key(code_list.version)
        assert code_list.source.strip()
        assert len(code_list) > 0


def test_bundled_is_cached() -> None:
    assert bundled() is bundled()


def test_bundled_contents() -> None:
    lists = bundled()
    countries = lists.get("countries")
    assert len(countries) == 249
    assert all(len(code) == 2 and code.isupper() for code in countries)
    for code in ("CO", "PE", "EC", "BE", "NL", "CN", "SS", "CW", "SX", "BQ", "AX"):
        assert code in countries
    # Withdrawn codes are not assigned any more.
    for code in ("AN", "CS", "YU", "TP", "ZR"):
        assert code not in countries
    units = lists.get("units")
    common = ("KGM", "TNE", "GRM", "MGM", "LTR", "MLT", "MTQ", "MTR", "MTK", "CMT")
    counts_and_times = ("H87", "NAR", "C62", "HUR", "MIN", "SEC", "DAY", "WEE")
    for code in common + counts_and_times:
        assert code in units
    for code in ("CEL", "FAH", "KEL", "KX", "GL", "M1"):
        assert code in units
    assert units.label("KX") == "millilitre per kilogram"
    assert units.attributes["KGM"]["symbol"] == "kg"
    # Rec 20 Revision 17 complete: 2,136 entries, 309 of them deleted.
    assert (len(units), len(units.deleted), len(units.deprecated)) == (1827, 309, 71)
    # "PCE" (piece) is EDIFACT's, never a Rec 20 code (H87 is); GK was deleted.
    assert "PCE" not in units and "PCE" not in units.deleted
    assert "GK" not in units and units.deleted["GK"].edition == "Revision 17 (2021) or before"
    packages = lists.get("package_types")
    for code in ("1A", "43", "BG", "BX", "CT", "PK", "PX", "CR", "BA"):
        assert code in packages
    assert packages.label("43") == "Bag, super bulk"
    assert (len(packages), sorted(packages.deleted)) == (405, ["SX"])
    assert set(lists.get("transport_modes")) == {str(n) for n in range(10)}
    means = lists.get("transport_means")
    assert len(means) == 277 and means.label("31") == "Truck"
    assert set(lists.get("certificate_types")) == {"851", "657"}
    assert set(lists.get("status_codes")) == {"70", "39", "40", "41", "42", "44"}
    assert {"CHT", "OP"} <= set(lists.get("treatment_types"))
    assert "Grains" in lists.get("commodity_classes")
    assert "Dry" in lists.get("conditions")
    assert "2" in lists.get("certifying_statements")
    subjects = lists.get("note_subjects")
    for code in ("SPSFL", "ADEDL", "RPCCO", "RPCAI", "TTL1", "TTFT", "HS", "IPPCPCVP", "IPPCPCC"):
        assert code in subjects


def test_best_effort_lists_say_so() -> None:
    lists = bundled()
    for name in ("treatment_types", "intended_uses", "conditions"):
        assert "best-effort" in lists.get(name).source.lower()


PUBLIC_EDITIONS = {
    "units": "Revision 17 (2021)",
    "package_types": "Revision 12 (2021)",
    "transport_modes": "code list version 2",
    "transport_means": "code list version 2007",
    "countries": "pycountry 26.2.16",
}


@pytest.mark.parametrize(("name", "edition"), sorted(PUBLIC_EDITIONS.items()))
def test_public_lists_carry_their_edition_source_and_notice(name: str, edition: str) -> None:
    code_list = bundled().get(name)
    assert edition in code_list.source
    # repo@commit:path (or the package), as ../shared/conformance/codelists/SOURCES.md
    assert re.search(r"@[0-9a-f]{8}|pycountry 26\.2\.16", code_list.source)
    assert code_list.notice.strip()
    assert not code_list.placeholders
    # Newer than the best-effort lists they replaced (2024, 2024.1, 17): nodes and the
    # registry install only a newer version.
    assert version_key(code_list.version) > version_key("2024.1")


def test_country_labels_are_the_short_names_an_inspector_reads() -> None:
    countries = bundled().get("countries")
    assert countries.label("NL") == "Netherlands"
    assert countries.label("BO") == "Bolivia"
    assert countries.attributes["BO"]["iso_name"] == "Bolivia, Plurinational State of"
    assert countries.label("NL", "zh") == "荷兰"
    assert countries.label("NL", "ar") == "هولندا"
    assert countries.label("NL", "nl") == "Nederland"
    for lang in ("ar", "zh", "ru", "fr", "es", "de", "pt", "nl"):
        assert len(countries.translations[lang]) >= 240, lang
    assert countries.label("NL", "xx") == "Netherlands"  # no such language: English


# -- CodeList -----------------------------------------------------------------------------


def test_codelist_contains_and_label() -> None:
    code_list = CodeList.from_json_bytes(_doc())
    assert "A" in code_list
    assert "Z" not in code_list
    assert 1 not in code_list
    assert code_list.label("B") == "beta"
    assert code_list.label("Z") is None


def test_codelist_is_immutable() -> None:
    codes = {"A": "alpha"}
    code_list = CodeList("demo", "1", "test", codes)
    codes["B"] = "beta"  # the caller's dict changing must not change the list
    assert "B" not in code_list
    with pytest.raises(TypeError):
        code_list.codes["C"] = "gamma"  # type: ignore[index]


def test_json_round_trip() -> None:
    original = bundled().get("countries")
    again = CodeList.from_json_bytes(original.to_json_bytes())
    assert again == original
    assert again.to_json_bytes() == original.to_json_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"a string"',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"list": "demo", "version": "1", "source": "s", "codes": {"A": NaN}}',
        b'{"list": "demo", "version": "1", "source": "s", "codes": {"A": "x", "A": "y"}}',
        _doc(codes=[]),
        _doc(codes={}),
        _doc(codes={"A": 1}),
        _doc(codes={" A": "padded"}),
        _doc(codes={"": "empty"}),
        _doc(codes={"A" * 65: "too long"}),
        _doc(version=2024),
        _doc(version="D17A"),
        _doc(version="2024..1"),
        _doc(version=""),
        _doc(list="Not A Name"),
        _doc(list="../escape"),
        _doc(source=""),
        _doc(source=None),
        _doc(extra="field"),
        json.dumps({"list": "demo", "version": "1", "codes": {"A": "a"}}).encode(),
        b" " * (9 * 1024 * 1024),
    ],
)
def test_malformed_json_is_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        CodeList.from_json_bytes(data)


def test_missing_key_is_named() -> None:
    with pytest.raises(InputError, match="source"):
        CodeList.from_json_bytes(json.dumps({"list": "d", "version": "1", "codes": {}}).encode())


# -- versions and the update path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("2024", "2024.1"),
        ("2023.12", "2024"),
        ("17", "18"),
        ("2024-06-30", "2024-07-01"),
        ("9", "10"),
        ("2024.9", "2024.10"),
    ],
)
def test_version_order(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)


def test_trailing_zeros_do_not_make_a_version_newer() -> None:
    assert version_key("2024") == version_key("2024.0") == version_key("2024-0-0")


def _lists() -> CodeLists:
    return CodeLists.of([CodeList("demo", "2024.1", "test", {"A": "alpha"})])


def test_updated_with_newer_replaces() -> None:
    lists = _lists()
    newer = CodeList("demo", "2024.2", "test", {"A": "alpha", "B": "beta"})
    updated = lists.updated_with(newer)
    assert updated.get("demo") is newer
    assert updated.versions() == {"demo": "2024.2"}
    assert lists.versions() == {"demo": "2024.1"}  # the original is unchanged


@pytest.mark.parametrize("version", ["2024.1", "2024.1.0", "2024", "2023.9"])
def test_updated_with_equal_or_older_is_refused(version: str) -> None:
    with pytest.raises(InputError, match=r"installed version 2024\.1"):
        _lists().updated_with(CodeList("demo", version, "test", {"B": "beta"}))


def test_updated_with_a_new_list_adds_it() -> None:
    updated = _lists().updated_with(CodeList("other", "1", "test", {"X": "x"}))
    assert updated.names() == ["demo", "other"]


def test_get_unknown_list_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no code list named 'nope'"):
        bundled().get("nope")


def test_duplicate_names_are_refused() -> None:
    one = CodeList("demo", "1", "test", {"A": "a"})
    with pytest.raises(InputError):
        CodeLists.of([one, one])


def test_load_directory_applies_newer_and_skips_stale(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = bundled()
    modes = base.get("transport_modes")
    newer = CodeList(
        "transport_modes", modes.version + ".1", "operator", {**modes.codes, "X": "test mode"}
    )
    (tmp_path / "a_modes.json").write_bytes(newer.to_json_bytes())
    stale = CodeList("countries", "2000", "old", {"XX": "old"})
    (tmp_path / "b_countries.json").write_bytes(stale.to_json_bytes())
    (tmp_path / "notes.txt").write_text("ignored: not *.json")
    with caplog.at_level(logging.WARNING, logger="node.codelists.directory"):
        lists = load_directory(tmp_path, base)
    assert "X" in lists.get("transport_modes")
    assert lists.get("countries") is base.get("countries")
    assert "not newer" in caplog.text
    assert "X" not in base.get("transport_modes")  # base untouched


def test_load_directory_malformed_file_names_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / "broken.json").write_bytes(b"{")
    with pytest.raises(ConfigError, match=r"broken\.json"):
        load_directory(tmp_path, bundled())


def test_load_directory_missing(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError):
        load_directory(tmp_path / "absent", bundled())


def test_load_directory_empty_is_base(tmp_path: pathlib.Path) -> None:
    base = bundled()
    assert load_directory(tmp_path, base) is base


# -- UN/CEFACT XSD import -----------------------------------------------------------------

SMALL_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:ccts="urn:un:unece:uncefact:documentation:standard:CoreComponentsTechnicalSpecification:2"
    targetNamespace="urn:example:codelist" elementFormDefault="qualified">
  <xsd:simpleType name="DemoCodeContentType">
    <xsd:restriction base="xsd:token">
      <xsd:enumeration value="1">
        <xsd:annotation><xsd:documentation xml:lang="en">
          <ccts:Name>First   code</ccts:Name>
          <ccts:Description>Not the label.</ccts:Description>
        </xsd:documentation></xsd:annotation>
      </xsd:enumeration>
      <xsd:enumeration value="2">
        <xsd:annotation><xsd:documentation>Plain documentation</xsd:documentation></xsd:annotation>
      </xsd:enumeration>
      <xsd:enumeration value="3"/>
    </xsd:restriction>
  </xsd:simpleType>
</xsd:schema>
"""


def test_xsd_import() -> None:
    code_list = uncefact_codelist_from_xsd(SMALL_XSD, "demo", "2025", "Example XSD")
    assert dict(code_list.codes) == {"1": "First code", "2": "Plain documentation", "3": ""}
    assert (code_list.name, code_list.version, code_list.source) == ("demo", "2025", "Example XSD")


def test_xsd_import_is_an_update() -> None:
    modes = bundled().get("transport_modes")
    imported = uncefact_codelist_from_xsd(SMALL_XSD, "transport_modes", "2099", "Rec 19 XSD")
    assert bundled().updated_with(imported).get("transport_modes").version == "2099"
    with pytest.raises(InputError):
        bundled().updated_with(
            uncefact_codelist_from_xsd(SMALL_XSD, "transport_modes", modes.version, "same")
        )


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
        b'<!DOCTYPE xsd:schema SYSTEM "http://example.invalid/x.dtd">'
        b'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><x/>'.encode("utf-16"),
    ],
)
def test_xsd_with_doctype_is_refused(data: bytes) -> None:
    with pytest.raises(UnsafeXmlError):
        uncefact_codelist_from_xsd(data, "demo", "1", "s")


@pytest.mark.parametrize(
    "data",
    [
        b"<xsd:schema",
        b"<notschema/>",
        b'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"/>',
        b'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"><xsd:enumeration/></xsd:schema>',
    ],
)
def test_malformed_xsd_is_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        uncefact_codelist_from_xsd(data, "demo", "1", "s")


# Country codes ISO 3166/MA withdrew after the 2006 second edition: AN (Netherlands
# Antilles, dissolved 2010) and CS (Serbia and Montenegro, split 2006).
WITHDRAWN_SINCE_2006 = {"AN", "CS"}
# Codes assigned after it: BL, MF (2007); BQ, CW, SX (2010); SS (2011).
ASSIGNED_SINCE_2006 = {"BL", "MF", "BQ", "CW", "SX", "SS"}


@pytest.mark.shared
def test_oracle_iso_country_xsd_agrees_with_bundled_countries() -> None:
    xsd = (
        SHARED
        / "xsd"
        / "uncefact-D17A"
        / "identifierlist"
        / "standard"
        / "ISO_ISOTwo-letterCountryCode_SecondEdition2006.xsd"
    )
    if not xsd.is_file():
        pytest.skip(f"{xsd} is absent: the third-party conformance files are not here")
    oracle = uncefact_codelist_from_xsd(xsd.read_bytes(), "countries", "2006", "UN/CEFACT D17A")
    ours = bundled().get("countries")
    assert len(oracle) > 240
    assert all(oracle.label(code) for code in oracle)  # every code got its ccts:Name
    # A fair comparison of lists of different dates: the oracle may be older than ours
    # (or refreshed by UN/CEFACT since its edition name was fixed). Every code of it must
    # be in ours unless ISO withdrew it since 2006, and every code of ours must be in it
    # unless ISO assigned it since 2006. Labels are not compared: ISO's upper-case short
    # names differ from our English short names in spelling and case.
    assert set(oracle) - set(ours) <= WITHDRAWN_SINCE_2006
    assert set(ours) - set(oracle) <= ASSIGNED_SINCE_2006
