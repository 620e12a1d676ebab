"""The upstream formats of the public lists (node.codelists.upstream), on small inline
files: what they hold, and every way a file can be wrong."""

from __future__ import annotations

import pytest

from node.codelists import upstream
from node.codelists.lists import MAX_BYTES, Retired
from node.codelists.upstream import Edition, detect_format, parse_code_list, parse_locations
from node.errors import InputError

REC20_HEADER = "status,code,name,description,level_category,symbol,conversion_factor"
REC20 = f"""{REC20_HEADER}
,KGM,kilogram,A unit of mass equal to one thousand grams.,1,kg,kg
X,GK,gram per kilogram,,3.1,,
D,HAR,hectare,,1S,ha,10⁴ m²
¦,MNJ,"Mega Joule per
Normalised cubic  Metre",,2,MJ/m³,
+,XKG,"=HYPERLINK(""http://example.invalid"",""x"")",,2,@SUM(A1),
""".encode()
REC21 = b"""status,code,name,description,numeric_code
,1A,"Drum, steel",,34
X,SX,Set,,11 to 45
,43,"Bag, super bulk",,
"""
REC19 = b"code,name\n0,Transport mode not specified\n1,Maritime transport\n"
ISO = b"""alpha_2,alpha_3,numeric,name,official_name,common_name
NL,NLD,528,Netherlands,Kingdom of the Netherlands,
BO,BOL,068,"Bolivia, Plurinational State of",Plurinational State of Bolivia,Bolivia
AW,ABW,533,Aruba,,
"""
EDITION = Edition("2100.17", "test copy", edition="Revision 17 (2021)")


def test_rec20_current_deleted_deprecated_and_symbols() -> None:
    units = parse_code_list(REC20, "rec20", EDITION)
    assert (units.name, units.version, units.source) == ("units", "2100.17", "test copy")
    assert set(units.codes) == {"KGM", "HAR", "MNJ", "XKG"}
    assert units.deleted == {"GK": Retired("gram per kilogram", "Revision 17 (2021) or before")}
    assert units.deprecated == {"HAR": "Revision 17 (2021) or before"}
    # A spreadsheet cell's line break and double blank are layout, not part of the name.
    assert units.label("MNJ") == "Mega Joule per Normalised cubic Metre"
    assert units.attributes["KGM"] == {"symbol": "kg"}
    assert "HAR" in units.attributes and "GK" not in units.attributes
    assert units.notice == upstream.UNECE_NOTICE  # the format's notice unless told one


def test_formula_like_cells_are_only_text() -> None:
    units = parse_code_list(REC20, "rec20", EDITION)
    assert units.label("XKG") == '=HYPERLINK("http://example.invalid","x")'
    assert units.attributes["XKG"] == {"symbol": "@SUM(A1)"}


def test_the_edition_defaults_to_the_version() -> None:
    units = parse_code_list(REC20, "rec20", Edition("2100.18", "s"))
    assert units.deleted["GK"].edition == "version 2100.18 or before"


def test_rec21_and_the_two_column_lists() -> None:
    packages = parse_code_list(REC21, "rec21", EDITION, name="packages_test")
    assert packages.name == "packages_test"
    assert dict(packages.codes) == {"1A": "Drum, steel", "43": "Bag, super bulk"}
    assert set(packages.deleted) == {"SX"}
    modes = parse_code_list(REC19, "rec19", EDITION)
    assert (modes.name, dict(modes.codes)) == (
        "transport_modes",
        {"0": "Transport mode not specified", "1": "Maritime transport"},
    )
    assert parse_code_list(REC19, "rec28", EDITION).name == "transport_means"


def test_iso3166_labels_are_the_names_an_inspector_reads() -> None:
    countries = parse_code_list(ISO, "iso3166", EDITION)
    assert dict(countries.codes) == {"NL": "Netherlands", "BO": "Bolivia", "AW": "Aruba"}
    assert countries.attributes["BO"] == {
        "alpha_3": "BOL",
        "numeric": "068",
        "official_name": "Plurinational State of Bolivia",
        "iso_name": "Bolivia, Plurinational State of",
    }
    assert countries.attributes["AW"] == {"alpha_3": "ABW", "numeric": "533"}


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (REC20, "rec20"),
        (REC21, "rec21"),
        (ISO, "iso3166"),
        (b"\xef\xbb\xbf" + REC21, "rec21"),  # a byte order mark
        (b"locode,country,location,name,nameWoDiacritics,subdivision,status,function,iata\n",
         "unlocode"),
        (b"Change,Country,Location,Name,NameWoDiacritics,Subdivision,Status,Function,Date,IATA,"
         b"Coordinates,Remarks\r\n", "unlocode"),
        (REC19, None),  # code,name: Rec 19, Rec 28, a D17A copy... never guessed
        (b',"NL","RTM","Rotterdam","Rotterdam","ZH","AF","12345---","0901","","",""\n', None),
        (b"\xff\xfe", None),
        (b"", None),
    ],
)  # fmt: skip
def test_formats_are_told_by_their_first_line(data: bytes, fmt: str | None) -> None:
    assert detect_format(data) == fmt


def _refused(data: bytes, fmt: str = "rec20", encoding: str | None = None) -> str:
    with pytest.raises(InputError) as caught:
        parse_code_list(data, fmt, EDITION, encoding=encoding)
    return str(caught.value)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b" \r\n\n", "empty"),
        (f"{REC20_HEADER}\n".encode(), "no current code"),
        (f"{REC20_HEADER}\nX,GK,gram per kilogram,,3.1,,\n".encode(), "no current code"),
        (b"code,name\nKGM,kilogram\n", "line 1: the header must be status,code,name"),
        (REC21, "the header must be"),
        (f"{REC20_HEADER}\n,KGM,kilogram,,1\n".encode(), "line 2: 5 fields, expected 7"),
        (f"{REC20_HEADER}\n,KGM,kilogram,,1,kg,,extra\n".encode(), "8 fields"),
        (f"{REC20_HEADER}\n,KGM,kilogram,,1,kg,\n,KGM,again,,1,kg,\n".encode(),
         "line 3: code KGM given twice (first on line 2)"),
        (f"{REC20_HEADER}\n,KGM,kilogram,,1,kg,\nX,KGM,again,,1,,\n".encode(), "given twice"),
        (f'{REC20_HEADER}\n,KGM,"kilogram,,1,kg,\n'.encode(), "line 2"),  # unclosed quote
        (f'{REC20_HEADER}\n,KGM,"kilo"gram,,1,kg,\n'.encode(), "line 2"),  # text after a quote
        (f"{REC20_HEADER}\n,=1+1,formula,,1,,\n".encode(), "'=1+1' is not a code"),
        (f"{REC20_HEADER}\n,K GM,kilogram,,1,,\n".encode(), "is not a code"),
        (f"{REC20_HEADER}\n,,kilogram,,1,,\n".encode(), "'' is not a code"),
        (f"{REC20_HEADER}\n,KGM,,,1,,\n".encode(), "line 2: no name"),
        (f"{REC20_HEADER}\n?,KGM,kilogram,,1,,\n".encode(), "unknown status mark '?'"),
        (f"{REC20_HEADER}\n,KGM,kilo\ufffdgram,,1,,\n".encode(), "lost characters"),
        (f"{REC20_HEADER}\n,KGM,{'k' * 1100},,1,,\n".encode(), "longer than 1024"),
        (f"{REC20_HEADER}\n,KGM,kilogram,,1,,\n".encode() + b"\x00\n", "control character"),
        (f"{REC20_HEADER}\n,KGM,kilo\x85gram,,1,,\n".encode(), "line 2: control character U+0085"),
        (f"{REC20_HEADER}\n,KGM,kilogr\xe2mme,,1,,\n".encode("latin-1"),
         "line 2: not UTF-8 (byte 80); give --encoding latin-1"),
        (b"\xff\xfe" + "status,code".encode("utf-16-le"), "not UTF-8"),
        (REC20 + b"," * MAX_BYTES, f"larger than {MAX_BYTES} bytes"),
    ],
)  # fmt: skip
def test_malformed_files_are_refused_with_the_line(data: bytes, why: str) -> None:
    assert why in _refused(data)


def test_iso3166_rows_are_checked() -> None:
    header = ISO.split(b"\n")[0] + b"\n"
    assert "not a code" in _refused(header + b"N1,NLD,528,Netherlands,,\n", "iso3166")
    assert "bad alpha-3" in _refused(header + b"NL,NL,528,Netherlands,,\n", "iso3166")
    assert "bad alpha-3" in _refused(header + b"NL,NLD,52,Netherlands,,\n", "iso3166")


def test_unknown_format_and_encoding_are_refused() -> None:
    assert "unknown code list format" in _refused(REC20, "rec99")
    assert "unknown encoding" in _refused(REC20, encoding="cp1252")


def test_latin1_is_read_when_told() -> None:
    data = "code,name\n1,Carretón\n".encode("latin-1")
    assert "give --encoding latin-1" in _refused(data, "rec28")
    means = parse_code_list(data, "rec28", EDITION, encoding="latin-1")
    assert means.label("1") == "Carretón"


# -- UN/LOCODE ---------------------------------------------------------------------------

GEOAPIFY = """locode,country,location,name,nameWoDiacritics,subdivision,status,function,iata
NLRTM,NL,RTM,Rotterdam,Rotterdam,ZH,AF,12345---,
BRSAO,BR,SAO,S\ufffdo Paulo,Sao Paulo,SP,AA,-23-56--,
NLLIS,NL,LIS,Lisse,Lisse,ZH,RL,0-------,
NLXPO,NL,XPO,Postkantoor,Postkantoor,,RL,----5---,
DE3AG,DE,3AG,\"\"\"Altenau\",\" M\ufffdhlberg\"\"\",\"\"\"Altenau\",\" Muhlberg\"\"\",BB,--3-----
USTRI,US,TRI,Tri-Cities Regional Airport,Tri-Cities Regional Airport,TN,AI,---4----,TRI
USTRI,US,TRI,Bristol (Tri-Cities),Bristol (Tri-Cities),TN,AI,-23-----,
USMFS,US,MFS,McChord Air Force Base,McChord Air Force Base,WA,RL,---4----,---
""".encode()


def test_geoapify_copy() -> None:
    places = parse_locations([GEOAPIFY], Edition("2100.1", "test"))
    assert len(places) == 5  # Lisse (function 0) and the post office (5) are no transport
    assert "NLLIS" not in places and "NLXPO" not in places
    rotterdam = places.get("NLRTM")
    assert rotterdam is not None
    assert rotterdam.functions == ("sea", "rail", "road", "air")
    assert (rotterdam.subdivision, rotterdam.status, rotterdam.country) == ("ZH", "AF", "NL")
    # The name column lost its diacritics: the name without them stands in.
    sao_paulo = places.get("BRSAO")
    assert sao_paulo is not None and sao_paulo.name == "Sao Paulo"
    # geoapify's comma-split name, mended: status and IATA code were lost upstream.
    altenau = places.get("DE3AG")
    assert altenau is not None
    assert (altenau.name, altenau.subdivision, altenau.function, altenau.status) == (
        "Altenau, Muhlberg",
        "BB",
        "--3-----",
        "",
    )
    # A code twice with another name: one location, both names, the functions of both.
    tri = places.get("USTRI")
    assert tri is not None
    assert (tri.name, tri.aliases, tri.function, tri.iata) == (
        "Tri-Cities Regional Airport",
        ("Bristol (Tri-Cities)",),
        "-234----",
        "TRI",
    )
    mcchord = places.get("USMFS")
    assert mcchord is not None and mcchord.iata == ""  # "---" is no IATA code


UNECE_ROWS = ""","NL","",".NETHERLANDS","","","","","","","",""
,"NL","RTM","Rotterdam","Rotterdam","ZH","AF","12345---","0901","","5155N 00430E",""
,"PL","LOD","Łódź","Lodz","10","AI","--34-6--","0601","LCJ","5146N 01928E",""
+,"BR","SAO","São Paulo","Sao Paulo","SP","AA","-23-56--","0601","","2332S 04637W",""
"""
UNECE_HEADER = (
    "Change,Country,Location,Name,NameWoDiacritics,Subdivision,Status,Function,Date,IATA,"
    "Coordinates,Remarks\n"
)


def test_unece_files_with_and_without_header_and_in_parts() -> None:
    with_header = parse_locations([(UNECE_HEADER + UNECE_ROWS).encode()], Edition("1", "t"))
    rows = UNECE_ROWS.splitlines(keepends=True)
    part1, part2 = "".join(rows[:2]).encode("latin-1"), rows[3].encode("latin-1")
    # UNECE's headerless parts are Latin-1: told so, or found out. Łódź is not Latin-1.
    part3 = rows[2].encode("utf-8")
    in_parts = parse_locations([part1, part2, part3], Edition("1", "t"))
    for places in (with_header, in_parts):
        assert {p.code for p in places} == {"NLRTM", "PLLOD", "BRSAO"}  # no country line
        sao_paulo = places.get("BRSAO")
        assert sao_paulo is not None
        assert (sao_paulo.name, sao_paulo.name_without_diacritics) == ("São Paulo", "Sao Paulo")
        lodz = places.get("PLLOD")
        assert lodz is not None and lodz.iata == "LCJ"
    told = parse_locations([part2], Edition("1", "t"), encoding="latin-1")
    assert [p.name for p in told] == ["São Paulo"]


def _locode_refused(*files: bytes, encoding: str | None = None) -> str:
    with pytest.raises(InputError) as caught:
        parse_locations(list(files), Edition("1", "t"), encoding=encoding)
    return str(caught.value)


GEO_HEADER = GEOAPIFY.split(b"\n")[0] + b"\n"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (GEO_HEADER, "no location with a transport function"),
        (b"locode,country,location,name\nNLRTM,NL,RTM,Rotterdam\n", "neither a UN/LOCODE header"),
        (GEO_HEADER + b"NLRTM,NL,RTM,Rotterdam,Rotterdam,ZH,AF\n", "line 2: 7 fields, expected 9"),
        (GEO_HEADER + b"NLRTM,NL,RTX,Rotterdam,Rotterdam,ZH,AF,1-------,\n",
         "line 2: 'NLRTM' is not 'NL' + 'RTX'"),
        (GEO_HEADER + b"N1RTM,N1,RTM,Rotterdam,Rotterdam,ZH,AF,1-------,\n", "not a UN/LOCODE"),
        (GEO_HEADER + b"NLRTM,NL,RTM,Rotterdam,Rotterdam,ZH,AF,1-3,\n", "bad function"),
        (GEO_HEADER + b"NLRTM,NL,RTM,Rotterdam,Rotterdam,ZHXX,AF,1-------,\n", "bad subdivision"),
        (GEO_HEADER + b"NLRTM,NL,RTM,Rotterdam,Rotterdam,ZH,A,1-------,\n", "bad status"),
        (GEO_HEADER + b"NLRTM,NL,RTM,,,ZH,AF,1-------,\n", "line 2: no name"),
        (GEO_HEADER + b"NLRTM,NL,RTM,Rotterdam,Rotterdam,ZH,AF,1-------,\n" * 2,
         "line 3: NLRTM 'Rotterdam' given twice"),
        (GEO_HEADER + "NLRTM,NL,RTM,Rötterdam,Rotterdam,ZH,AF,1-------,\n".encode("latin-1"),
         "not UTF-8"),
        (GEO_HEADER + b"NLRTM,NL,RTM,Rotter\x01dam,Rotterdam,ZH,AF,1-------,\n",
         "line 2: control character"),
        (b',"NL","RTM","Rotterdam"\n', "nor a 12-column UNECE row"),
    ],
)  # fmt: skip
def test_malformed_unlocode_is_refused(data: bytes, why: str) -> None:
    assert why in _locode_refused(data)


def test_unlocode_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no file given" in _locode_refused()
    monkeypatch.setattr(upstream, "MAX_LOCODE_BYTES", 1000)
    assert "larger than 1000 bytes" in _locode_refused(GEOAPIFY, GEOAPIFY)
    long_name = b"x" * 300
    row = b"NLRTM,NL,RTM," + long_name + b"," + long_name + b",ZH,AF,1-------,\n"
    monkeypatch.undo()
    assert "longer than 200" in _locode_refused(GEO_HEADER + row)
