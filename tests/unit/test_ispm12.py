"""The ISPM 12 reading of the bundled samples and of the shared third-party sample."""

from __future__ import annotations

import pathlib
from importlib.resources import files

import pytest

from node.certificate.ispm12 import (
    STATEMENT_851,
    TITLE_PHYTO,
    TITLE_REEXPORT,
    Ispm12View,
    ispm12_view,
    sections,
)
from node.certificate.jsonmodel import certificate_from_json

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
    assert v.organization_of.startswith("Netherlands Food and Consumer Product Safety")
    assert "China" in v.to_organizations_of and "中国" in v.to_organizations_of
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
    assert t.treatment == "CHT"
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
    assert t.treatment == "CHT / OP"
    assert t.duration_and_temperature == "3 h, 32 °C"  # 32.0000 reads as 32
    assert t.concentration == "2.5 KX"
    assert "No AdditionalInformation available" in t.additional_information
    assert v.reexport == ()  # RPC* notes on an 851 are not a re-export statement
