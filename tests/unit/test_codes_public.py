"""What the real public editions change in the codes layer: deleted and deprecated codes
named with their edition, and the ports of loading and entry checked against UN/LOCODE,
whose locations load only for a certificate that carries one."""

from __future__ import annotations

from lxml import etree

from node.certificate.codes import code_findings
from node.certificate.findings import Area, Finding, Level
from node.certificate.xmlns import NSMAP, RAM
from node.codelists.lists import CodeLists, bundled
from node.codelists.locations import Location, Locations, LocationSource
from tests.unit.test_codes import OWN

PORTS = f"""
<ram:LoadingBaseportSPSLocation xmlns:ram="{RAM}">
  <ram:ID>NLRTM</ram:ID><ram:Name>Rotterdam</ram:Name>
</ram:LoadingBaseportSPSLocation>
<ram:UnloadingBaseportSPSLocation xmlns:ram="{RAM}">
  <ram:ID>CNSHA</ram:ID><ram:Name>Shanghai</ram:Name>
</ram:UnloadingBaseportSPSLocation>
"""


def _certificate(unit: str = "KGM", package: str = "CT", ports: str = "") -> etree._Element:
    text = OWN.replace('unitCode="KGM"', f'unitCode="{unit}"')
    text = text.replace(
        "<ram:TypeCode>CT</ram:TypeCode>", f"<ram:TypeCode>{package}</ram:TypeCode>"
    )
    # The ports go after the import country, where D17A has them.
    marker = "</ram:ImportSPSCountry>"
    return etree.fromstring(text.replace(marker, marker + ports, 1).encode())


def _only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [str(f) for f in findings]
    return findings[0]


def test_a_deleted_unit_is_one_warning_naming_the_revision() -> None:
    finding = _only(code_findings(_certificate(unit="GK"), bundled()))
    assert (finding.level, finding.area) == (Level.WARNING, Area.MAPPING)
    assert finding.message == (
        "unit code 'GK' (gram per kilogram) was deleted from UN/ECE Rec 20 in "
        "Revision 17 (2021) or before"
    )


def test_a_deprecated_unit_is_one_warning_naming_the_revision() -> None:
    finding = _only(code_findings(_certificate(unit="HAR"), bundled()))
    assert finding.level is Level.WARNING
    assert finding.message == (
        "unit code 'HAR' (hectare) is deprecated (UN/ECE Rec 20, Revision 17 (2021) or before)"
    )


def test_a_deleted_package_type_names_its_revision() -> None:
    finding = _only(code_findings(_certificate(package="SX"), bundled()))
    assert finding.level is Level.WARNING
    assert "'SX' (Set) was deleted from UN/ECE Rec 21 in Revision 12 (2021)" in finding.message


def test_a_package_type_newer_than_2006_passes_and_an_unknown_unit_stays_severe() -> None:
    assert code_findings(_certificate(package="O1"), bundled()) == []  # newer than 2006
    finding = _only(code_findings(_certificate(unit="XXX"), bundled()))
    assert finding.level is Level.SEVERE and "unknown unit code 'XXX'" in finding.message


def test_ports_that_are_un_locodes_pass() -> None:
    assert code_findings(_certificate(ports=PORTS), bundled()) == []


def test_a_port_that_is_no_un_locode_is_a_warning_at_its_id() -> None:
    root = _certificate(ports=PORTS.replace("CNSHA", "PE"))
    finding = _only(code_findings(root, bundled()))
    assert (finding.level, finding.area) == (Level.WARNING, Area.MAPPING)
    version = bundled().locations.version  # type: ignore[union-attr]
    assert finding.message == (
        "point of entry 'PE' is not a UN/LOCODE location with a transport function "
        f"(UN/LOCODE, version {version})"
    )
    (element,) = root.xpath("//ram:UnloadingBaseportSPSLocation/ram:ID", namespaces=NSMAP)
    assert finding.line == element.sourceline
    loading = _only(code_findings(_certificate(ports=PORTS.replace("NLRTM", "NLRT0")), bundled()))
    assert loading.message.startswith("port of loading 'NLRT0' is not a UN/LOCODE")


class _CountingRead:
    def __init__(self, data: bytes) -> None:
        self.data, self.calls = data, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.data


def test_locations_load_only_for_a_certificate_that_carries_a_port() -> None:
    places = Locations.of(
        "1", "t", "", [Location("NLRTM", "Rotterdam", "", "", "1-------", "", "")]
    )
    read = _CountingRead(places.to_asset_bytes())
    lists = CodeLists(bundled().lists, LocationSource("test", read))
    assert code_findings(_certificate(), lists) == []
    assert read.calls == 0
    findings = code_findings(_certificate(ports=PORTS), lists)
    assert [f.message.split(" is ")[0] for f in findings] == ["point of entry 'CNSHA'"]
    code_findings(_certificate(ports=PORTS), lists)
    assert read.calls == 2  # the file once, the header (for the message's version) once


def test_without_locations_the_ports_are_not_checked() -> None:
    lists = CodeLists(bundled().lists)
    assert code_findings(_certificate(ports=PORTS.replace("CNSHA", "PE")), lists) == []
