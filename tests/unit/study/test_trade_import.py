"""The trade importer on edge lists and FAOSTAT files, odd and hostile ones included."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from node.errors import InputError
from node.study.fao import Unmappable, country_index
from node.study.trade_import import (
    Flow,
    TradeFormat,
    TradeImport,
    flows_csv,
    import_trade,
    scale_to_total,
)

FAO_HEADER = (
    "Reporter Country Code,Reporter Country Code (M49),Reporter Countries,"
    "Partner Country Code,Partner Country Code (M49),Partner Countries,"
    "Item Code,Item Code (CPC),Item,Element Code,Element,Year Code,Year,Unit,Value,Flag\n"
)


def _edges(text: str | bytes, **options: object) -> TradeImport:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return import_trade(data, country_index(), **options)  # type: ignore[arg-type]


def _fao_row(reporter: str, partner: str, value: str, **fields: str) -> str:
    f = {
        "rcode": "", "rm49": "", "pcode": "", "pm49": "", "item": "Apples",
        "element": "Export Quantity", "year": "2022", "unit": "t",
    } | fields  # fmt: skip
    return (
        f'{f["rcode"]},{f["rm49"]},"{reporter}",{f["pcode"]},{f["pm49"]},"{partner}",'
        f"515,'01341,{f['item']},5910,{f['element']},{f['year']},{f['year']},"
        f"{f['unit']},{value},A\n"
    )


def _pairs(result: TradeImport) -> dict[tuple[str, str], Decimal]:
    return {(f.origin, f.destination): f.weight for f in result.flows}


def test_codes_names_and_alpha3_are_mapped_and_duplicate_pairs_summed() -> None:
    result = _edges(
        "Exporter,Importer,Certificates\n"
        "NL,DE,10\n"
        "NLD,Germany,5\n"
        "Kingdom of the Netherlands,deu,2.5\n"
        "Deutschland,Kenya,1\n"
    )
    assert result.format is TradeFormat.EDGES
    assert _pairs(result) == {("NL", "DE"): Decimal("17.5"), ("DE", "KE"): Decimal(1)}
    assert result.rows_read == 4 and result.rows_used == 4 and not result.unmapped
    assert result.countries == ("DE", "KE", "NL")


def test_commas_quotes_and_non_ascii_names_with_a_bom() -> None:
    text = (
        'origin,destination,weight\n"China, Taiwan Province of","Côte d\'Ivoire",3\n'
        '"Bolivia (Plurinational State of)","Türkiye",4\n"Korea, ""North""",NL,1\n'
    )
    result = _edges(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert _pairs(result) == {("TW", "CI"): 3, ("BO", "TR"): 4}
    assert [(u.text, u.reason, u.first_line) for u in result.unmapped] == [
        ('Korea, "North"', Unmappable.UNKNOWN, 4)
    ]


def test_latin1_faostat_file_with_fao_names_aggregates_and_former_countries() -> None:
    text = FAO_HEADER + "".join(
        [
            _fao_row("China, mainland", "Netherlands (Kingdom of the)", "100"),
            _fao_row("Türkiye", "Réunion", "7"),
            _fao_row("World", "Kenya", "999"),
            _fao_row("Kenya", "European Union (27)", "5", pcode="5706"),
            _fao_row("China", "Kenya", "50"),  # FAO's China: the sum of four areas
            _fao_row("Yugoslav SFR", "Kenya", "1"),
            _fao_row("USSR", "Kenya", "1"),
        ]
    )
    result = _edges(text.encode("latin-1"))
    assert result.format is TradeFormat.FAOSTAT
    assert _pairs(result) == {("CN", "NL"): 100, ("TR", "RE"): 7}
    reasons = {u.text: u.reason for u in result.unmapped}
    assert reasons == {
        "World": Unmappable.AGGREGATE,
        "European Union (27)": Unmappable.AGGREGATE,
        "China": Unmappable.AGGREGATE,
        "Yugoslav SFR": Unmappable.HISTORICAL,
        "USSR": Unmappable.HISTORICAL,
    }
    assert {u.text: u.first_line for u in result.unmapped}["World"] == 4


def test_faostat_m49_codes_win_and_imports_are_turned_round() -> None:
    text = FAO_HEADER + "".join(
        [
            _fao_row("Some new spelling", "Kenya", "10", rm49="'528"),
            _fao_row("Kenya", "Germany", "4", element="Import Quantity"),
            _fao_row("Kenya", "Germany", "9"),
        ]
    )
    exports = _edges(text)
    assert _pairs(exports) == {("NL", "KE"): 10, ("KE", "DE"): 9}
    assert exports.element == "Export Quantity" and exports.units == ("t",)
    imports = _edges(text, element="import quantity")
    assert _pairs(imports) == {("DE", "KE"): 4}


def test_faostat_defaults_to_the_latest_year_and_filters_items_and_years() -> None:
    text = FAO_HEADER + "".join(
        [
            _fao_row("Kenya", "Germany", "1", year="2021"),
            _fao_row("Kenya", "Germany", "2", year="2022"),
            _fao_row("Kenya", "France", "8", year="2022", item="Bananas"),
        ]
    )
    assert _pairs(_edges(text)) == {("KE", "DE"): 2, ("KE", "FR"): 8}
    assert _edges(text).years == (2022,)
    both = _edges(text, years=[2021, 2022], items=["apples"])
    assert _pairs(both) == {("KE", "DE"): 3} and both.years == (2021, 2022)
    with pytest.raises(InputError, match=r"no row has element 'export value'.*Export Quantity"):
        _edges(text, element="Export Value")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("NL,DE,-3", "line 3: the weight -3 is negative"),
        ("NL,DE,", "line 3: the weight is empty"),
        ("NL,DE,lots", "line 3: the weight 'lots' is not a number"),
        ("NL,DE,NaN", "line 3: the weight 'NaN' is not a number"),
        ("NL,DE,1,234", "line 3: 4 fields, but the header has 3"),
        ("NL,DE", "line 3: 2 fields, but the header has 3"),
        ('NL,"DE,1', "line 3: not readable as CSV"),
        ("NL,DE,1\x00", "line 3: the weight '1\\x00' is not a number"),
    ],
)
def test_a_bad_row_is_refused_naming_its_line(row: str, message: str) -> None:
    text = f"from,to,value\nKE,NL,1\n{row}\n"
    with pytest.raises(InputError, match=re.escape(message)):
        _edges(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("a,b,c\nNL,DE,1\n", "line 1: no origin column"),
        ("origin,source,to,weight\n", "line 1: more than one origin column"),
        ("origin,to,weight\n42,NL,1\n,DE,1\n", None),
    ],
)
def test_headers_and_missing_codes(text: str, message: str | None) -> None:
    if message is None:
        reasons = {u.text: u.reason for u in _edges(text).unmapped}
        assert reasons == {"42": Unmappable.NUMERIC, "(empty)": Unmappable.UNKNOWN}
        return
    with pytest.raises(InputError, match=message):
        _edges(text)


def test_options_of_the_other_format_and_huge_input_are_refused() -> None:
    with pytest.raises(InputError, match="FAOSTAT files only"):
        _edges("origin,destination,weight\nNL,DE,1\n", years=[2022])
    with pytest.raises(InputError, match="larger than 1 MiB"):
        _edges(b"origin,destination,weight\n" + b"NL,DE,1\n" * 200_000, max_bytes=2**20)
    many = "".join(f"Nowhere {i},NL,1\n" for i in range(1001))
    with pytest.raises(InputError, match="line 1002: more than 1000 different names"):
        _edges("origin,destination,weight\n" + many)
    with pytest.raises(InputError, match="not a FAOSTAT trade matrix: no Value"):
        _edges("Reporter Countries,Partner Countries,Element,Year\n", trade_format=None)


def test_trade_with_itself_is_left_out() -> None:
    result = _edges("origin,destination,weight\nNL,NLD,4\nNL,DE,1\n")
    assert result.same_country_rows == 1 and _pairs(result) == {("NL", "DE"): 1}


def test_scaling_is_exact_and_remainders_go_to_the_largest_fractions_then_in_order() -> None:
    flows = [
        Flow("AA", "BB", Decimal(1)),
        Flow("CC", "DD", Decimal(1)),
        Flow("EE", "FF", Decimal(1)),
    ]
    scaled = scale_to_total(flows, 10)
    assert [int(f.weight) for f in scaled] == [4, 3, 3]  # a tie: the first pair gets it
    uneven = [Flow("AA", "BB", Decimal("0.5")), Flow("CC", "DD", Decimal("2.5"))]
    assert [int(f.weight) for f in scale_to_total(uneven, 7)] == [1, 6]  # 1.1667, 5.8333
    big = [Flow(f"A{i}", "ZZ", Decimal(i + 1)) for i in range(97)]
    assert sum(int(f.weight) for f in scale_to_total(big, 12_000_000)) == 12_000_000
    assert scale_to_total(big, 12_000_000) == scale_to_total(list(reversed(big)), 12_000_000)
    small = scale_to_total(flows, 2)
    assert [(f.origin, int(f.weight)) for f in small] == [("AA", 1), ("CC", 1)]


def test_scaling_nothing_or_a_negative_total_is_refused() -> None:
    with pytest.raises(InputError, match="nothing to scale"):
        scale_to_total([], 10)
    with pytest.raises(InputError, match="--total must be between"):
        scale_to_total([Flow("AA", "BB", Decimal(1))], -1)


def test_the_written_edge_list_reads_back_the_same() -> None:
    result = _edges("origin,destination,weight\nNL,DE,1.25\nKE,NL,3\n")
    written = flows_csv(result.flows)
    assert written == b"origin,destination,weight\nKE,NL,3\nNL,DE,1.25\n"
    assert _edges(written).flows == result.flows
