"""The bundled ePhyto XSD set and its loader (node.certificate.schema)."""

from __future__ import annotations

import pathlib
import re
import shutil
from collections.abc import Callable

import pytest
from lxml import etree

from node.certificate.findings import Area, Finding, Level
from node.certificate.schema import (
    SchemaSetError,
    bundled_schema_dir,
    load_schema,
    schema_findings,
)
from node.certificate.xmlns import RSM
from node.errors import ConfigError

SHARED = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
SAMPLE = "intercom_SPSCertificate_CO-PE.xml"

# A small ePhyto with every mandatory element; values match the shared CO-PE sample on the
# lines the mutations below touch, so the same mutations apply to both.
MINIMAL = """\
<rsm:SPSCertificate
    xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSCertificate:17"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21">
  <rsm:SPSExchangedDocument>
    <ram:ID>123456789CO</ram:ID>
    <ram:TypeCode>851</ram:TypeCode>
    <ram:StatusCode>70</ram:StatusCode>
    <ram:IssueDateTime><udt:DateTimeString>2024-02-26T10:15:00Z</udt:DateTimeString></ram:IssueDateTime>
    <ram:IssuerSPSParty><ram:Name>NPPO of Colombia</ram:Name></ram:IssuerSPSParty>
    <ram:SignatorySPSAuthentication>
      <ram:IssueSPSLocation><ram:Name>Bogota</ram:Name></ram:IssueSPSLocation>
    </ram:SignatorySPSAuthentication>
  </rsm:SPSExchangedDocument>
  <rsm:SPSConsignment>
    <ram:ConsignorSPSParty><ram:Name>Exporter</ram:Name></ram:ConsignorSPSParty>
    <ram:ConsigneeSPSParty><ram:Name>Importer</ram:Name></ram:ConsigneeSPSParty>
    <ram:ExportSPSCountry>
      <ram:ID>CO</ram:ID>
    </ram:ExportSPSCountry>
    <ram:ImportSPSCountry><ram:ID>PE</ram:ID></ram:ImportSPSCountry>
    <ram:ExaminationSPSEvent>
      <ram:OccurrenceSPSLocation><ram:Name>Bogota</ram:Name></ram:OccurrenceSPSLocation>
    </ram:ExaminationSPSEvent>
    <ram:IncludedSPSConsignmentItem>
      <ram:IncludedSPSTradeLineItem>
        <ram:SequenceNumeric>1</ram:SequenceNumeric>
        <ram:Description>Rice</ram:Description>
        <ram:NetWeightMeasure>1000</ram:NetWeightMeasure>
      </ram:IncludedSPSTradeLineItem>
    </ram:IncludedSPSConsignmentItem>
  </rsm:SPSConsignment>
</rsm:SPSCertificate>
"""

DS_SIGNATURE = (
    '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
    "<ds:SignedInfo><ds:Anything/></ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue>"
    "</ds:Signature>"
)


def shared_dir() -> pathlib.Path:
    """../shared/conformance, or skip the test where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared/conformance is absent: no third-party samples/XSDs at {SHARED}")
    return SHARED


def tree_of(text: str) -> etree._ElementTree:
    """Parse a certificate text, keeping source lines."""
    return etree.ElementTree(etree.fromstring(text.encode("utf-8")))


def findings_of(text: str) -> list[Finding]:
    return schema_findings(tree_of(text), load_schema())


def line_of(text: str, marker: str) -> int:
    """The line libxml2 gives an element: where its start tag (found by a marker) ends."""
    tag_end = text.index(">", text.index(marker))
    return text[:tag_end].count("\n") + 1


def source_text(source: str) -> str:
    if source == "minimal":
        return MINIMAL
    return (shared_dir() / "samples" / SAMPLE).read_text(encoding="utf-8")


# --- the bundled schema set ---------------------------------------------------------


def test_minimal_certificate_is_valid() -> None:
    assert findings_of(MINIMAL) == []


@pytest.mark.shared
def test_every_shared_sample_validates_with_bundled_schema() -> None:
    samples = sorted((shared_dir() / "samples").glob("*.xml"))
    assert samples
    for sample in samples:
        tree = etree.parse(str(sample))
        assert schema_findings(tree, load_schema()) == [], sample.name


def test_bundled_dir_holds_one_xsd_per_namespace() -> None:
    names = {p.name for p in bundled_schema_dir().glob("*.xsd")}
    assert names == {"SPSCertificate_17p0_ephyto.xsd", "ram.xsd", "udt.xsd", "qdt.xsd"}


def test_bundled_xsds_say_they_are_written_for_the_project() -> None:
    for xsd in bundled_schema_dir().glob("*.xsd"):
        head = xsd.read_text(encoding="utf-8")[:1500]
        assert "Written for this project" in head, xsd.name
        assert "not a copy" in head, xsd.name


# --- located findings for broken certificates -----------------------------------------

Mutation = Callable[[str], str]


def drop_consignment(text: str) -> str:
    return re.sub(r"<rsm:SPSConsignment>.*</rsm:SPSConsignment>", "", text, flags=re.DOTALL)


def drop_document_id(text: str) -> str:
    return text.replace("<ram:ID>123456789CO</ram:ID>", "", 1)


def swap_type_and_status(text: str) -> str:
    return re.sub(
        r"(<ram:TypeCode>851</ram:TypeCode>)(\s*)(<ram:StatusCode>70</ram:StatusCode>)",
        r"\3\2\1",
        text,
        count=1,
    )


def non_decimal_weight(text: str) -> str:
    return text.replace("<ram:NetWeightMeasure>1000<", "<ram:NetWeightMeasure>heavy<", 1)


def unknown_element(text: str) -> str:
    return text.replace("<ram:ID>CO</ram:ID>", "<ram:ID>CO</ram:ID><ram:Colour>red</ram:Colour>", 1)


# (mutation, readable xpath expected, marker on the reported line, words in the message)
CASES: list[tuple[Mutation, str, str, tuple[str, ...]]] = [
    (
        drop_consignment,
        "/rsm:SPSCertificate",
        "<rsm:SPSCertificate",
        ("Missing child", "rsm:SPSConsignment"),
    ),
    (
        drop_document_id,
        "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:TypeCode",
        "<ram:TypeCode>851",
        ("ram:TypeCode", "not expected", "ram:ID"),
    ),
    (
        swap_type_and_status,
        "/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:StatusCode",
        "<ram:StatusCode>70",
        ("ram:StatusCode", "not expected", "ram:TypeCode"),
    ),
    (
        non_decimal_weight,
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem"
        "/ram:IncludedSPSTradeLineItem/ram:NetWeightMeasure",
        "<ram:NetWeightMeasure>heavy",
        ("ram:NetWeightMeasure", "'heavy'", "decimal"),
    ),
    (
        unknown_element,
        "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ExportSPSCountry/ram:Colour",
        "<ram:Colour>",
        ("ram:Colour", "not expected"),
    ),
]


@pytest.mark.parametrize("source", ["minimal", pytest.param("shared", marks=pytest.mark.shared)])
@pytest.mark.parametrize(
    ("mutate", "xpath", "marker", "words"), CASES, ids=[c[0].__name__ for c in CASES]
)
def test_mutation_gives_located_schema_finding(
    source: str, mutate: Mutation, xpath: str, marker: str, words: tuple[str, ...]
) -> None:
    original = source_text(source)
    text = mutate(original)
    assert text != original, "the mutation did not apply"

    findings = findings_of(text)

    assert len(findings) == 1, findings
    finding = findings[0]
    assert finding.level is Level.SEVERE
    assert finding.area is Area.SCHEMA
    assert finding.xpath == xpath
    assert finding.line == line_of(text, marker)
    for word in words:
        assert word in finding.message
    assert "{urn:" not in finding.message


def test_default_namespace_document_still_gets_readable_xpath() -> None:
    # libxml2 names default-namespace elements `*`; the finding must still say where.
    text = (
        '<SPSCertificate xmlns="urn:un:unece:uncefact:data:standard:SPSCertificate:17">\n'
        "  <SPSExchangedDocument/>\n"
        "</SPSCertificate>\n"
    )
    by_xpath = {f.xpath: f for f in findings_of(text)}
    assert set(by_xpath) == {"/rsm:SPSCertificate", "/rsm:SPSCertificate/rsm:SPSExchangedDocument"}
    assert by_xpath["/rsm:SPSCertificate/rsm:SPSExchangedDocument"].line == 2


def test_other_prefixes_are_reported_with_standard_prefixes() -> None:
    def renamed(text: str) -> str:
        return text.replace("ram:", "x:").replace("xmlns:ram=", "xmlns:x=")

    assert findings_of(renamed(MINIMAL)) == []
    findings = findings_of(renamed(non_decimal_weight(MINIMAL)))
    assert [f.xpath.rsplit("/", 1)[-1] for f in findings] == ["ram:NetWeightMeasure"]


def test_wrong_root_is_a_finding() -> None:
    text = f'<rsm:SPSAcknowledgement xmlns:rsm="{RSM}"/>'
    findings = findings_of(text)
    assert len(findings) == 1
    assert findings[0].xpath == "/rsm:SPSAcknowledgement"
    assert "No matching global declaration" in findings[0].message


def test_several_errors_give_several_findings() -> None:
    findings = findings_of(non_decimal_weight(unknown_element(MINIMAL)))
    assert [f.xpath.rsplit("/", 1)[-1] for f in findings] == [
        "ram:Colour",
        "ram:NetWeightMeasure",
    ]


# --- what the profile allows -------------------------------------------------------------


def test_trailing_ds_signature_is_allowed_once_and_last() -> None:
    end = "</rsm:SPSCertificate>"
    signed = MINIMAL.replace(end, DS_SIGNATURE + end)
    assert findings_of(signed) == []
    assert findings_of(MINIMAL.replace(end, DS_SIGNATURE + DS_SIGNATURE + end))
    misplaced = MINIMAL.replace("<rsm:SPSConsignment>", DS_SIGNATURE + "<rsm:SPSConsignment>")
    assert findings_of(misplaced)


def test_code_values_are_not_enumerated_in_the_schema() -> None:
    # Harmonised code checks are a separate layer; the schema takes any token.
    text = MINIMAL.replace(">851<", ">999<").replace("<ram:ID>PE</ram:ID>", "<ram:ID>ZZ</ram:ID>")
    assert findings_of(text) == []


def test_date_time_is_a_string_or_an_xsd_date_time() -> None:
    string_form = "<udt:DateTimeString>2024-02-26T10:15:00Z</udt:DateTimeString>"
    good = MINIMAL.replace(string_form, "<udt:DateTime>2024-02-26T10:15:00Z</udt:DateTime>")
    assert findings_of(good) == []
    assert findings_of(good.replace("2024-02-26T10:15:00Z", "26 Feb 2024"))
    with_format = string_form.replace("String>", 'String format="205">', 1)
    assert findings_of(MINIMAL.replace(string_form, with_format)) == []
    assert findings_of(MINIMAL.replace(string_form, ""))


@pytest.mark.parametrize(("value", "valid"), [("true", True), ("false", True), ("yes", False)])
def test_indicator_string_is_true_or_false(value: str, valid: bool) -> None:
    indicator = (
        "<ram:ShipStoresIndicator><udt:IndicatorString>"
        f"{value}</udt:IndicatorString></ram:ShipStoresIndicator>"
    )
    text = MINIMAL.replace("<ram:ConsignorSPSParty>", indicator + "<ram:ConsignorSPSParty>", 1)
    assert (findings_of(text) == []) is valid


def test_supplementary_attributes_are_declared() -> None:
    text = MINIMAL.replace(
        "<ram:NetWeightMeasure>1000<", '<ram:NetWeightMeasure unitCode="KGM">1000<'
    ).replace("<ram:ID>123456789CO<", '<ram:ID schemeID="ePhyto">123456789CO<')
    assert findings_of(text) == []
    findings = findings_of(
        MINIMAL.replace("<ram:ID>123456789CO<", '<ram:ID colour="x">123456789CO<')
    )
    assert len(findings) == 1
    assert "colour" in findings[0].message


# --- loading schema sets -------------------------------------------------------------------


def test_loading_twice_returns_the_cached_schema() -> None:
    assert load_schema() is load_schema()
    assert load_schema() is load_schema(bundled_schema_dir())


def test_a_copy_of_our_layout_loads(tmp_path: pathlib.Path) -> None:
    for xsd in bundled_schema_dir().glob("*.xsd"):
        shutil.copy(xsd, tmp_path / xsd.name)
    schema = load_schema(tmp_path)
    assert schema is not load_schema()
    assert schema_findings(tree_of(MINIMAL), schema) == []


@pytest.mark.shared
def test_point_validation_at_an_official_layout_set_on_disk() -> None:
    intercom = shared_dir() / "xsd" / "nonofficial-intercom-estandar"
    schema = load_schema(intercom)
    assert schema is load_schema(intercom)
    for sample in sorted((shared_dir() / "samples").glob("*.xml")):
        assert schema_findings(etree.parse(str(sample)), schema) == [], sample.name
    broken = schema_findings(tree_of(non_decimal_weight(MINIMAL)), schema)
    assert [f.line for f in broken] == [line_of(MINIMAL, "<ram:NetWeightMeasure>")]


@pytest.mark.shared
def test_incomplete_official_set_is_a_schema_set_error() -> None:
    official = shared_dir() / "xsd" / "uncefact-D17A"
    with pytest.raises(SchemaSetError) as caught:
        load_schema(official)
    message = str(caught.value)
    assert str(official) in message
    assert "does not resolve" in message
    assert "ReusableAggregateBusinessInformationEntity_21p0.xsd" in message
    assert "\n" not in message


def test_nonexistent_directory_is_a_schema_set_error(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SchemaSetError, match="not a directory"):
        load_schema(missing)


def test_directory_without_a_root_module_is_a_schema_set_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SchemaSetError, match=r"has no data/standard/SPSCertificate_17p0\.xsd"):
        load_schema(tmp_path)


def test_unreadable_xsd_is_a_schema_set_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "SPSCertificate_17p0_ephyto.xsd").write_text("<xsd:schema", encoding="utf-8")
    with pytest.raises(SchemaSetError, match="cannot be read"):
        load_schema(tmp_path)


def test_schema_set_error_is_a_config_error() -> None:
    assert issubclass(SchemaSetError, ConfigError)
