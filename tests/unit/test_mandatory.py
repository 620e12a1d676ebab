"""Layer 3: ISPM 12 mandatory content, each finding located."""

from __future__ import annotations

from lxml import etree

from node.certificate import safe_xml
from node.certificate.findings import Area, Finding, Level
from node.certificate.mandatory import mandatory_findings
from node.certificate.model import Certificate
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xmlns import NSMAP, ram


def _tree(cert: Certificate) -> etree._Element:
    return safe_xml.parse(to_xml_bytes(cert))


def _mutated(cert: Certificate, xpath: str, action: str, value: str = "") -> list[Finding]:
    root = _tree(cert)
    (el,) = root.xpath(xpath, namespaces=NSMAP)
    if action == "remove":
        el.getparent().remove(el)
    else:
        el.text = value
    # Serialize and parse again so that line numbers are real ones.
    return mandatory_findings(safe_xml.parse(etree.tostring(root, pretty_print=True)))


def test_bundled_samples_have_no_mandatory_findings(
    phyto: Certificate, reexport: Certificate
) -> None:
    assert mandatory_findings(_tree(phyto)) == []
    assert mandatory_findings(_tree(reexport)) == []


def test_missing_botanical_name_is_severe_and_located(phyto: Certificate) -> None:
    findings = _mutated(phyto, "//ram:IncludedSPSTradeLineItem[2]/ram:ScientificName", "remove")
    (finding,) = findings
    assert finding.level is Level.SEVERE
    assert finding.area is Area.MANDATORY
    assert "botanical name" in finding.message
    assert finding.xpath.endswith("ram:IncludedSPSTradeLineItem[2]")
    assert finding.line is not None and finding.line > 1


def test_empty_certificate_number_is_severe(phyto: Certificate) -> None:
    (finding,) = _mutated(phyto, "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ID", "set", " ")
    assert finding.level is Level.SEVERE
    assert "certificate number is empty" in finding.message
    assert finding.xpath == "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ID"


def test_missing_officer_and_bad_issue_date(phyto: Certificate) -> None:
    findings = _mutated(phyto, "//ram:SpecifiedSPSPerson", "remove")
    assert [f.message for f in findings] == ["name of authorized officer is missing"]
    findings = _mutated(
        phyto, "//rsm:SPSExchangedDocument/ram:IssueDateTime/*", "set", "20/11/2026"
    )
    (finding,) = findings
    assert "IssueDateTime is not an ISO 8601 date-time" in finding.message
    assert finding.xpath.endswith("udt:DateTimeString")


def test_missing_quantity_and_origin(phyto: Certificate) -> None:
    root = _tree(phyto)
    (item,) = root.xpath("//ram:IncludedSPSTradeLineItem[2]", namespaces=NSMAP)
    for tag in ("NetWeightMeasure", "OriginSPSCountry"):
        (el,) = item.xpath(f"ram:{tag}", namespaces=NSMAP)
        item.remove(el)
    messages = sorted(f.message for f in mandatory_findings(root))
    assert messages == [
        "place of origin (OriginSPSCountry) is missing",
        "quantity declared is missing (a weight, a volume, or OQV/OQU)",
    ]


def test_reexport_without_original_reference_is_severe(reexport: Certificate) -> None:
    findings = _mutated(
        reexport, "//ram:AdditionalInformationSPSNote[ram:Subject='RPCRF']", "remove"
    )
    (finding,) = findings
    assert finding.level is Level.SEVERE
    assert "RPCRF" in finding.message


def test_reexport_ticks_must_choose_one(reexport: Certificate) -> None:
    findings = _mutated(
        reexport,
        "//ram:AdditionalInformationSPSNote[ram:Subject='RPCTC']/ram:Content",
        "set",
        "true",
    )
    (finding,) = findings
    assert finding.level is Level.WARNING
    assert "original certificate or certified true copy" in finding.message


def test_replacement_notes_need_the_replaced_number(phyto: Certificate) -> None:
    root = _tree(phyto)
    (doc,) = root.xpath("//rsm:SPSExchangedDocument", namespaces=NSMAP)
    first_note = doc.find(ram("IncludedSPSNote"))
    note = etree.Element(ram("IncludedSPSNote"))
    etree.SubElement(note, ram("Subject")).text = "ADRP"
    etree.SubElement(note, ram("Content")).text = "1"
    first_note.addprevious(note)
    (finding,) = mandatory_findings(root)
    assert finding.level is Level.SEVERE
    assert "ADRPN" in finding.message


def test_shared_samples_meet_ispm12() -> None:
    from tests.conftest import shared_samples

    for path in shared_samples():
        findings = mandatory_findings(safe_xml.parse(path.read_bytes()))
        assert [f for f in findings if f.level is Level.SEVERE] == []
