"""The ISPM 12 reading of the bundled samples and of the shared third-party sample."""

from __future__ import annotations

import pathlib
from dataclasses import replace
from importlib.resources import files

import pytest

from node.certificate import model as m
from node.certificate.ispm12 import (
    STATEMENT_851,
    TITLE_PHYTO,
    TITLE_REEXPORT,
    Ispm12View,
    certificate_language,
    ispm12_view,
    item_rows,
    sections,
)
from node.certificate.jsonmodel import certificate_from_json
from node.codelists.lists import bundled
from tests.pdf_certificates import certificate, lists

SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
CO_PE = SHARED / "samples" / "intercom_SPSCertificate_CO-PE.xml"
# Cyrillic on purpose: the sample's consignee, not Latin look-alikes.
RU_CONSIGNEE = "ООО «Цветы Москвы»"  # noqa: RUF001


def _sample(name: str) -> Ispm12View:
    data = (files("node.samples") / name).read_bytes()
    return ispm12_view(certificate_from_json(data))


def _rows(view: Ispm12View) -> dict[str, str]:
    return {label: value for _, rows in sections(view) for label, value in rows}


def test_phyto_nl_cn_boxes() -> None:
    v = _sample("phyto_nl_cn.json")
    assert v.title == TITLE_PHYTO
    assert v.number == "NL-2026-0001234"
    assert v.status == "Issued"
    assert not v.is_reexport
    # "Plant Protection Organization of <country>": the country first, then the issuer.
    assert v.organization_of.startswith("Netherlands")
    assert v.organization_of.endswith(
        ", Netherlands Food and Consumer Product Safety Authority (NVWA)"
    )
    # An English certificate: the list's English short name, not the certificate's "中国".
    assert v.to_organizations_of == "China (CN)"
    assert v.exporter.splitlines()[0] == "Bloembollen Export B.V."
    assert v.consignee.splitlines()[0] == "上海花卉进出口有限公司"
    assert [i.botanical_name for i in v.items] == [
        "Tulipa gesneriana",
        "Solanum tuberosum",
        "Rosa hybrida",
    ]
    assert v.items[0].packages == "800 x Carton"
    assert v.items[1].packages == "21 big bags of 1000 kg"  # OPTND wins over package codes
    assert "12000 kg net weight" in v.items[0].quantity
    assert "36000 Stems" in v.items[2].quantity  # OQV / OQU
    assert "Kenya (KE)" in v.items[2].place_of_origin
    assert "Lot NL-4471-A to NL-4471-F" in v.distinguishing_marks
    assert "MSKU 884120 7" in v.distinguishing_marks
    assert v.means_of_conveyance == "Maritime transport: Maersk Essen (MSKU-8841-W)"
    assert v.point_of_entry == "Shanghai / 上海港 (CNSHA)"
    assert v.certifying_statement == STATEMENT_851
    assert v.reexport == ()
    assert len(v.additional_declarations) == 4
    assert v.additional_declarations[2] == "Item 1: Grown in an area free from Ditylenchus dipsaci."
    assert v.import_permit == "CN-IP-2026-558812"
    assert v.inspection_date == "2026-11-18"
    (t,) = v.treatments
    assert t.item == 1
    assert t.date == "2026-11-15"
    assert t.treatment == bundled().get("treatment_types").label("CHT")
    assert t.chemical == "Thiabendazole"
    assert t.duration_and_temperature == "2 h, 20 °C"
    assert t.concentration == "2.5 g/l"
    assert v.place_of_issue == "Rotterdam (NLRTM)"
    assert v.authorized_officer == "Johanna de Vries"
    assert v.date == "2026-11-20"
    assert v.replacement is None


def test_reexport_ae_ru_boxes_and_ticks() -> None:
    v = _sample("reexport_ae_ru.json")
    assert v.title == TITLE_REEXPORT
    assert v.is_reexport
    assert v.consignee.splitlines()[0] == RU_CONSIGNEE
    assert v.exporter.splitlines()[0] == "شركة الواحة لتجارة الزهور"
    assert v.authorized_officer == "أحمد المنصوري"
    (r,) = v.reexport
    assert r.original_certificate == "KE-PC-2026-19932"
    assert r.country_of_origin == "Kenya"
    ticked = {c.label for c in r.choices if c.ticked}
    assert ticked == {"original", "packed", "original containers"}
    assert not r.ticked("certified true copy")
    assert not r.ticked("additional inspection")
    s = v.certifying_statement
    assert "covered by Phytosanitary Certificate No. KE-PC-2026-19932" in s
    assert "from Kenya" in s
    assert "[X] original [ ] certified true copy" in s
    assert "[X] packed [ ] repacked" in s
    assert "[ ] additional inspection" in s
    assert v.treatments == ()
    assert _rows(v)["Treatment"] == "None declared"
    assert v.date == "2026-11-22"  # no signing time: the certificate's issue date


def test_sections_order_and_titles() -> None:
    titles = [t for t, _ in sections(_sample("phyto_nl_cn.json"))]
    assert titles == [
        TITLE_PHYTO,
        "I. Description of consignment",
        "Certifying statement",
        "II. Additional declaration",
        "III. Disinfestation and/or disinfection treatment",
        "Authorization",
    ]
    rows = _rows(_sample("phyto_nl_cn.json"))
    assert rows["Botanical name of plants"].splitlines() == [
        "1. Tulipa gesneriana",
        "2. Solanum tuberosum",
        "3. Rosa hybrida",
    ]
    assert rows["Name of authorized officer"] == "Johanna de Vries"


@pytest.mark.shared
@pytest.mark.skipif(not CO_PE.is_file(), reason=f"shared conformance sample absent: {CO_PE}")
def test_shared_co_pe_sample() -> None:
    from node.certificate.safe_xml import parse
    from node.certificate.xml_parse import certificate_from_tree

    v = ispm12_view(certificate_from_tree(parse(CO_PE.read_bytes())))
    assert v.number == "123456789CO"
    assert v.exporter.splitlines()[0] == "Exporter Corp."
    assert v.consignee.splitlines()[0] == "Importer LLC"
    assert v.items[0].botanical_name == "Widgeticus"
    assert v.items[0].packages == "100 Bags of 20 Cardboard Boxes"
    assert "8 Packets" in v.items[0].quantity
    assert v.import_permit.splitlines() == ["DFGG1111", "DFGG 1111"]
    assert v.authorized_officer == "John Doe"
    assert v.place_of_issue == "Bogota D.C"
    assert v.replacement is not None
    assert v.replacement.replaced_certificate == "3214356"
    assert v.replacement.reason == "Change in consignee"
    (t,) = v.treatments
    types = bundled().get("treatment_types")
    assert t.treatment == f"{types.label('CHT')} / {types.label('OP')}"
    assert t.duration_and_temperature == "3 h, 32 °C"  # 32.0000 reads as 32
    assert t.concentration == "2.5 KX"
    assert "No AdditionalInformation available" in t.additional_information
    assert v.reexport == ()  # RPC* notes on an 851 are not a re-export statement


# --- languages, country names, treatment names -----------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (None, "en"),
        ("es", "es"),
        ("ES", "es"),
        (" zh ", "zh"),
        ("pt-BR", "pt-br"),
        ("", "en"),
        ("<script>", "en"),  # not a language tag: no language
        ("e" * 300, "en"),
    ],
)
def test_certificate_language_is_its_names_language(language: str | None, expected: str) -> None:
    assert certificate_language(certificate(language=language)) == expected


def test_countries_are_short_names_in_the_certificate_language() -> None:
    v = ispm12_view(certificate(language="es"), lists())
    assert v.organization_of == "Chile (CL), Servicio Agrícola y Ganadero (SAG)"
    assert v.to_organizations_of == "China (CN)"
    # Inside addresses too, where the address gives the country only by its code.
    assert v.exporter.splitlines()[1] == "Camino a Talca 1200, Curicó, Chile"
    v = ispm12_view(certificate(language="es", export_country=m.Country("NL")), lists())
    assert v.organization_of.startswith("Países Bajos (NL), ")
    v = ispm12_view(certificate(language="zh"), lists())
    assert v.to_organizations_of == "中国 (CN)"
    assert v.consignee.splitlines()[1] == "Chaoyang District, Beijing, 中国"
    # A regional tag falls back on its language's names.
    v = ispm12_view(certificate(language="es-CL", export_country=m.Country("NL")), lists())
    assert v.organization_of.startswith("Países Bajos (NL)")


def test_list_name_wins_over_a_name_in_another_language() -> None:
    russia = m.Country("RU", (m.Text("Россия", "ru"),))
    v = ispm12_view(certificate(import_country=russia), lists())
    assert v.to_organizations_of == "Russia (RU)"
    # Even the certificate's English long form: the inspector reads the short name.
    nl = m.Country("NL", (m.Text("Netherlands, Kingdom of the"),))
    assert ispm12_view(certificate(export_country=nl), lists()).organization_of.startswith(
        "Netherlands (NL)"
    )


def test_certificate_name_in_its_language_where_the_list_has_none() -> None:
    # The test list has no Spanish name for Russia: the certificate's own Spanish one.
    russia = m.Country("RU", (m.Text("Russia"), m.Text("Rusia", "es")))
    v = ispm12_view(certificate(language="es", import_country=russia), lists())
    assert v.to_organizations_of == "Russia (RU)"  # a name without languageID is the cert's
    russia = m.Country("RU", (m.Text("Rusia", "es"), m.Text("Russia", "en")))
    v = ispm12_view(certificate(language="es", import_country=russia), lists())
    assert v.to_organizations_of == "Rusia (RU)"
    # Nor a name in that language: the list's English one.
    russia = m.Country("RU", (m.Text("Россия", "ru"),))
    v = ispm12_view(certificate(language="es", import_country=russia), lists())
    assert v.to_organizations_of == "Russia (RU)"


def test_codes_no_list_names() -> None:
    kosovo = m.Country("XK", (m.Text("Kosovo"), m.Text("Kosova", "sq")))
    v = ispm12_view(certificate(import_country=kosovo), lists())
    assert v.to_organizations_of == "Kosovo (XK)"
    only_albanian = m.Country("XK", (m.Text("Kosova", "sq"),))
    v = ispm12_view(certificate(import_country=only_albanian), lists())
    assert v.to_organizations_of == "Kosova (XK)"
    v = ispm12_view(certificate(import_country=m.Country("QQ")), lists())
    assert v.to_organizations_of == "QQ"


def test_address_country_name_as_written_wins_over_the_code() -> None:
    cert = certificate(language="es")
    written = m.Address(line_one="Chaoyang District", country_id="CN", country_name="P.R. China")
    consignee = m.Party(name=m.Text("Importer"), address=written)
    cert = replace(cert, consignment=replace(cert.consignment, consignee=consignee))
    assert ispm12_view(cert, lists()).consignee.splitlines()[1] == "Chaoyang District, P.R. China"


def _treated(value: str, language: str | None = None) -> str:
    cert = certificate(language=language)
    (item,) = cert.consignment.items
    (treatment,) = item.treatments
    named = replace(
        treatment,
        characteristics=(m.ProcessCharacteristic((m.Text("TTL1"), m.Text(value))),),
    )
    cert = replace(
        cert,
        consignment=replace(cert.consignment, items=(replace(item, treatments=(named,)),)),
    )
    (t,) = ispm12_view(cert, lists()).treatments
    return t.treatment


def test_treatment_is_named_not_coded() -> None:
    assert _treated("PHT") == "Physical treatment"
    assert _treated("PHT", "es") == "Tratamiento físico"
    assert _treated("CHT", "es") == "Chemical treatment"  # no Spanish name: English
    assert _treated("XYZ") == "(XYZ)"  # a code no list names stays visible as a code
    assert _treated("Hot water dip") == "Hot water dip"  # words are the name as given
    assert _treated("  ") == ""


def test_items_left_to_the_annex() -> None:
    v = ispm12_view(certificate(12), lists())
    rows = dict(sections(v, shown_items=3)[1][1])
    assert rows["Botanical name of plants"].splitlines() == [
        "1. Malus domestica",
        "2. Malus domestica",
        "3. Malus domestica",
        "Items 4 to 12: see the annex",
    ]
    assert rows["Distinguishing marks"].splitlines()[-1] == "Items 4 to 12: see the annex"
    one_left = dict(sections(v, shown_items=11)[1][1])
    assert one_left["Place of origin"].splitlines()[-1] == "Item 12: see the annex"
    # Out of range asks for what there is: all items, or none.
    assert dict(sections(v, shown_items=99)[1][1]) == dict(sections(v)[1][1])
    assert dict(sections(v, shown_items=-1)[1][1])["Botanical name of plants"] == (
        "Items 1 to 12: see the annex"
    )
    assert dict(item_rows(v.items[11])) == {
        "Name of produce and quantity declared": "Fresh apples lot 12, Apple: 18012 kg net weight",
        "Botanical name of plants": "Malus domestica",
        "Number and description of packages": "1212 x Carton",
        "Distinguishing marks": "CL-LOT-012",
        "Place of origin": "Chile (CL), Región del Maule",
    }
