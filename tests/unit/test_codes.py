"""The harmonised-codes ("Mapping") layer: unknown codes found and located."""

from __future__ import annotations

import pathlib

import pytest
from lxml import etree

from node.certificate.codes import code_findings
from node.certificate.findings import Area, Finding, Level
from node.certificate.xmlns import NSMAP, RAM, RSM
from node.codelists.lists import CodeList, bundled

SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
SAMPLE = SHARED / "samples" / "intercom_SPSCertificate_CO-PE_annotated-es.xml"
COUNTRIES_VERSION = bundled().get("countries").version

# A small certificate of our own, so the layer is tested where ../shared is absent.
OWN = f"""<rsm:SPSCertificate xmlns:rsm="{RSM}" xmlns:ram="{RAM}">
  <rsm:SPSExchangedDocument>
    <ram:ID>NL-2025-1</ram:ID>
    <ram:TypeCode>851</ram:TypeCode>
    <ram:StatusCode>70</ram:StatusCode>
    <ram:IncludedSPSNote><ram:Subject>ADEDL</ram:Subject><ram:Content>Free</ram:Content></ram:IncludedSPSNote>
    <ram:SignatorySPSAuthentication>
      <ram:IncludedSPSClause><ram:ID>1</ram:ID></ram:IncludedSPSClause>
    </ram:SignatorySPSAuthentication>
  </rsm:SPSExchangedDocument>
  <rsm:SPSConsignment>
    <ram:ConsignorSPSParty>
      <ram:Name>Grower</ram:Name>
      <ram:SpecifiedSPSAddress><ram:CountryID>NL</ram:CountryID></ram:SpecifiedSPSAddress>
    </ram:ConsignorSPSParty>
    <ram:ExportSPSCountry><ram:ID>NL</ram:ID></ram:ExportSPSCountry>
    <ram:ImportSPSCountry><ram:ID>CN</ram:ID></ram:ImportSPSCountry>
    <ram:MainCarriageSPSTransportMovement><ram:ModeCode>1</ram:ModeCode></ram:MainCarriageSPSTransportMovement>
    <ram:IncludedSPSConsignmentItem>
      <ram:IncludedSPSTradeLineItem>
        <ram:IntendedUse>Planting</ram:IntendedUse>
        <ram:NetWeightMeasure unitCode="KGM">100</ram:NetWeightMeasure>
        <ram:AdditionalInformationSPSNote><ram:Subject>RPCPK</ram:Subject><ram:Content>true</ram:Content></ram:AdditionalInformationSPSNote>
        <ram:ApplicableSPSClassification><ram:SystemName>HS</ram:SystemName><ram:ClassCode>0601</ram:ClassCode></ram:ApplicableSPSClassification>
        <ram:ApplicableSPSClassification><ram:SystemName>IPPCPCVP</ram:SystemName><ram:ClassName>Bulbs</ram:ClassName></ram:ApplicableSPSClassification>
        <ram:PhysicalSPSPackage><ram:LevelCode>1</ram:LevelCode><ram:TypeCode>CT</ram:TypeCode></ram:PhysicalSPSPackage>
        <ram:OriginSPSCountry><ram:ID>NL</ram:ID></ram:OriginSPSCountry>
        <ram:AppliedSPSProcess>
          <ram:ApplicableSPSProcessCharacteristic><ram:Description>TTL1</ram:Description><ram:Description>PHT</ram:Description></ram:ApplicableSPSProcessCharacteristic>
          <ram:ApplicableSPSProcessCharacteristic>
            <ram:Description>TTTM</ram:Description>
            <ram:ValueMeasure unitCode="CEL">46</ram:ValueMeasure>
          </ram:ApplicableSPSProcessCharacteristic>
        </ram:AppliedSPSProcess>
      </ram:IncludedSPSTradeLineItem>
    </ram:IncludedSPSConsignmentItem>
  </rsm:SPSConsignment>
</rsm:SPSCertificate>
"""


def _own() -> etree._Element:
    return etree.fromstring(OWN.encode())


def _sample() -> etree._Element:
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} is absent: the third-party conformance files are not here")
    return etree.parse(str(SAMPLE)).getroot()


def _one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NSMAP)
    assert isinstance(found, list) and len(found) == 1
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def _line(element: etree._Element) -> int | None:
    # lxml-stubs mistype sourceline; this is what finding_at records.
    line: int | None = getattr(element, "sourceline")  # noqa: B009
    return line


def _only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [str(f) for f in findings]
    return findings[0]


def test_own_certificate_is_clean() -> None:
    assert code_findings(_own(), bundled()) == []


def test_not_a_certificate_gives_nothing() -> None:
    assert code_findings(etree.fromstring(b"<other/>"), bundled()) == []


def test_comments_are_ignored() -> None:
    root = _own()
    _one(root, "//ram:ExportSPSCountry").insert(0, etree.Comment(" a comment "))
    assert code_findings(root, bundled()) == []


@pytest.mark.parametrize(
    ("path", "value", "level", "message"),
    [
        (
            "//ram:ExportSPSCountry/ram:ID",
            "XX",
            Level.SEVERE,
            f"unknown country code 'XX' (ISO 3166-1 alpha-2, version {COUNTRIES_VERSION})",
        ),
        ("//ram:ImportSPSCountry/ram:ID", "cn", Level.SEVERE, "unknown country code 'cn'"),
        ("//ram:OriginSPSCountry/ram:ID", "", Level.SEVERE, "unknown country code ''"),
        ("//ram:CountryID", "UK", Level.SEVERE, "unknown country code 'UK'"),
        (
            "//rsm:SPSExchangedDocument/ram:TypeCode",
            "380",
            Level.SEVERE,
            "unknown document type code '380' (UN/CEFACT 1001",
        ),
        (
            "//rsm:SPSExchangedDocument/ram:StatusCode",
            "99",
            Level.SEVERE,
            "unknown status code '99' (UN/CEFACT 4405",
        ),
        (
            "//ram:MainCarriageSPSTransportMovement/ram:ModeCode",
            "X",
            Level.SEVERE,
            "unknown transport mode code 'X' (UN/ECE Rec 19",
        ),
        (
            "//ram:PhysicalSPSPackage/ram:TypeCode",
            "Q9",
            Level.WARNING,
            "unknown package type code 'Q9' (UN/ECE Rec 21",
        ),
        ("//ram:IncludedSPSNote/ram:Subject", "NOPE", Level.WARNING, "unknown note subject 'NOPE'"),
        (
            "//ram:ApplicableSPSClassification[1]/ram:SystemName",
            "CN8",
            Level.WARNING,
            "unknown classification system 'CN8'",
        ),
        ("//ram:ClassCode", "06A1", Level.WARNING, "HS class code '06A1' must be 4 to 10 digits"),
        ("//ram:ClassCode", "060", Level.WARNING, "must be 4 to 10 digits"),
        ("//ram:ClassCode", "06011000000", Level.WARNING, "must be 4 to 10 digits"),
        ("//ram:ClassName", "Moon rocks", Level.WARNING, "unknown commodity class 'Moon rocks'"),
        ("//ram:IntendedUse", "Juggling", Level.WARNING, "unknown intended use 'Juggling'"),
        (
            "//ram:ApplicableSPSProcessCharacteristic[1]/ram:Description[2]",
            "ZZT",
            Level.WARNING,
            "unknown treatment type 'ZZT'",
        ),
        (
            "//ram:IncludedSPSClause/ram:ID",
            "77",
            Level.WARNING,
            "unknown certifying statement '77'",
        ),
        (
            "//ram:AdditionalInformationSPSNote/ram:Content",
            "yes",
            Level.SEVERE,
            "RPCPK note content must be 'true' or 'false', not 'yes'",
        ),
    ],
)
def test_own_certificate_mutations(path: str, value: str, level: Level, message: str) -> None:
    root = _own()
    element = _one(root, path)
    element.text = value
    finding = _only(code_findings(root, bundled()))
    assert finding.level is level
    assert finding.area is Area.MAPPING
    assert message in finding.message
    assert finding.line == _line(element)
    assert _one(root, finding.xpath) is element


def test_unknown_unit_is_located_at_the_measure() -> None:
    root = _own()
    measure = _one(root, "//ram:ValueMeasure")
    measure.set("unitCode", "DEGC")
    finding = _only(code_findings(root, bundled()))
    assert finding.level is Level.SEVERE
    assert finding.message.startswith("unknown unit code 'DEGC' (UN/ECE Rec 20, version ")
    assert _one(root, finding.xpath) is measure


def test_ippc_terms_ignore_case_but_codes_do_not() -> None:
    root = _own()
    _one(root, "//ram:IntendedUse").text = "PLANTING"
    _one(root, "//ram:ClassName").text = "bulbs"
    assert code_findings(root, bundled()) == []
    _one(root, "//ram:PhysicalSPSPackage/ram:TypeCode").text = "ct"
    assert "unknown package type code 'ct'" in _only(code_findings(root, bundled())).message


def test_values_are_compared_after_trimming() -> None:
    root = _own()
    _one(root, "//ram:ExportSPSCountry/ram:ID").text = "  NL\n"
    assert code_findings(root, bundled()) == []


def test_updated_lists_change_the_verdict() -> None:
    root = _own()
    _one(root, "//ram:IntendedUse").text = "Juggling"
    uses = bundled().get("intended_uses")
    newer = CodeList(
        "intended_uses", uses.version + ".1", "operator", {**uses.codes, "Juggling": "Juggling"}
    )
    assert code_findings(root, bundled().updated_with(newer)) == []


def test_a_clause_outside_the_signatory_is_not_a_certifying_statement() -> None:
    root = _own()
    clause = _one(root, "//ram:IncludedSPSClause")
    _one(root, "//rsm:SPSExchangedDocument").append(clause)  # moved out of the signatory
    _one(root, "//ram:IncludedSPSClause/ram:ID").text = "77"
    assert code_findings(root, bundled()) == []


# -- the third-party sample (oracle) ------------------------------------------------------


@pytest.mark.shared
def test_shared_sample_has_no_severe_finding() -> None:
    findings = code_findings(_sample(), bundled())
    assert [f for f in findings if f.level is Level.SEVERE] == []
    assert all(f.area is Area.MAPPING for f in findings)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("path", "attribute", "value", "level", "message"),
    [
        ("//ram:TransitSPSCountry/ram:ID", None, "ZZ", Level.SEVERE, "unknown country code 'ZZ'"),
        (
            "//ram:AdditionalInformationSPSNote[ram:Subject='RPCCO']/ram:Content",
            None,
            "QQ",
            Level.SEVERE,
            "unknown country code 'QQ'",
        ),
        (
            "//rsm:SPSExchangedDocument/ram:StatusCode",
            None,
            "71",
            Level.SEVERE,
            "unknown status code '71'",
        ),
        ("//ram:DurationMeasure", "unitCode", "HRS", Level.SEVERE, "unknown unit code 'HRS'"),
        (
            "//ram:AdditionalInformationSPSNote[ram:Subject='RPCAI']/ram:Content",
            None,
            "TRUE",
            Level.SEVERE,
            "RPCAI note content must be 'true' or 'false', not 'TRUE'",
        ),
        (
            "//ram:PhysicalSPSPackage/ram:TypeCode",
            None,
            "99",
            Level.WARNING,
            "unknown package type code '99'",
        ),
    ],
)
def test_shared_sample_mutations(
    path: str, attribute: str | None, value: str, level: Level, message: str
) -> None:
    root = _sample()
    baseline = {str(f) for f in code_findings(root, bundled())}
    element = _one(root, path)
    if attribute is None:
        element.text = value
    else:
        element.set(attribute, value)
    new = [f for f in code_findings(root, bundled()) if str(f) not in baseline]
    finding = _only(new)
    assert finding.level is level
    assert finding.area is Area.MAPPING
    assert message in finding.message
    assert finding.line == _line(element)
    assert _one(root, finding.xpath) is element
