"""Read an SPSCertificate element tree into the model.

The tree comes from `safe_xml.parse` and should have passed the schema layer; what
the model cannot hold (a missing mandatory element, a date that is not ISO 8601)
raises `ModelError` located at the element.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar, cast

from lxml import etree

from node.certificate import model as m
from node.certificate.children import Children
from node.certificate.findings import xpath_of
from node.certificate.xmlns import RAM, ROOT_TAG, RSM, udt
from node.errors import InputError

_E = etree._Element
_T = TypeVar("_T")
_XML_LANG = "languageID"
_RAM = f"{{{RAM}}}"
_DATETIME_STRING, _DATETIME = udt("DateTimeString"), udt("DateTime")
_SUBJECT, _CONTENT = _RAM + "Subject", _RAM + "Content"
_CONTENT_CODE, _SUBJECT_CODE = _RAM + "ContentCode", _RAM + "SubjectCode"
_XSD_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class ModelError(InputError):
    """The XML cannot be read into a certificate; the message says where."""

    def __init__(self, element: _E, message: str) -> None:
        self.xpath = xpath_of(element)
        self.line = cast("int | None", element.sourceline)  # lxml-stubs mistype it
        super().__init__(f"line {self.line} {self.xpath}: {message}")


def certificate_from_tree(root: _E) -> m.Certificate:
    """The certificate held by an rsm:SPSCertificate element."""
    if root.tag != ROOT_TAG:
        raise ModelError(root, f"expected rsm:SPSCertificate, found {etree.QName(root).localname}")
    top = _Kids(root)
    doc_el = top.one("SPSExchangedDocument", RSM)
    doc = _Kids(doc_el)
    return m.Certificate(
        number=doc.string("ID"),
        type_code=doc.string("TypeCode"),
        status_code=doc.string("StatusCode"),
        issue_datetime=_datetime_of(doc.one("IssueDateTime")),
        issuer=_party(doc.one("IssuerSPSParty")),
        signatories=doc.each("SignatorySPSAuthentication", _authentication),
        consignment=_consignment(top.one("SPSConsignment", RSM)),
        names=doc.texts("Name"),
        descriptions=doc.texts("Description"),
        notes=doc.each("IncludedSPSNote", _note),
        references=doc.each("ReferenceSPSReferencedDocument", _reference),
    )


@dataclass(frozen=True, slots=True)
class Routing:
    """What the exchange needs of a certificate to route it: a fraction of the model."""

    number: str
    type_code: str
    status_code: str
    export_country: str
    import_country: str

    @classmethod
    def of(cls, cert: m.Certificate) -> Routing:
        return cls(
            number=cert.number,
            type_code=cert.type_code,
            status_code=cert.status_code,
            export_country=cert.consignment.export_country.id,
            import_country=cert.consignment.import_country.id,
        )


def routing_from_tree(root: _E) -> Routing:
    """The routing values of an rsm:SPSCertificate, without reading the whole model
    (which costs about as much as validating the document)."""
    if root.tag != ROOT_TAG:
        raise ModelError(root, f"expected rsm:SPSCertificate, found {etree.QName(root).localname}")
    top = _Kids(root)
    doc = _Kids(top.one("SPSExchangedDocument", RSM))
    consignment = _Kids(top.one("SPSConsignment", RSM))
    return Routing(
        number=doc.string("ID"),
        type_code=doc.string("TypeCode"),
        status_code=doc.string("StatusCode"),
        export_country=_Kids(consignment.one("ExportSPSCountry")).string("ID"),
        import_country=_Kids(consignment.one("ImportSPSCountry")).string("ID"),
    )


def _consignment(el: _E) -> m.Consignment:
    k = _Kids(el)
    items = tuple(
        _trade_line_item(item)
        for group in k.all("IncludedSPSConsignmentItem")
        for item in _Kids(group).all("IncludedSPSTradeLineItem")
    )
    event = _Kids(k.one("ExaminationSPSEvent"))
    return m.Consignment(
        consignor=_party(k.one("ConsignorSPSParty")),
        consignee=_party(k.one("ConsigneeSPSParty")),
        export_country=_country(k.one("ExportSPSCountry")),
        import_country=_country(k.one("ImportSPSCountry")),
        examination_location=_location(event.one("OccurrenceSPSLocation")),
        items=items,
        reexport_countries=k.each("ReExportSPSCountry", _country),
        transit_countries=k.each("TransitSPSCountry", _country),
        loading_location=k.read("LoadingBaseportSPSLocation", _location),
        unloading_location=k.read("UnloadingBaseportSPSLocation", _location),
        transport_movements=k.each("MainCarriageSPSTransportMovement", _movement),
        transport_equipment=k.each("UtilizedSPSTransportEquipment", _equipment),
    )


def _trade_line_item(el: _E) -> m.TradeLineItem:
    k = _Kids(el)
    sequence = k.one("SequenceNumeric")
    try:
        number = int(_plain(sequence))
    except ValueError:
        raise ModelError(sequence, "SequenceNumeric is not a whole number") from None
    return m.TradeLineItem(
        sequence=number,
        descriptions=k.texts("Description"),
        common_names=k.texts("CommonName"),
        scientific_names=k.texts("ScientificName"),
        production_batch_ids=k.each("ProductionBatchID", _plain),
        intended_uses=k.texts("IntendedUse"),
        net_weight=k.read("NetWeightMeasure", _measure),
        gross_weight=k.read("GrossWeightMeasure", _measure),
        net_volume=k.read("NetVolumeMeasure", _measure),
        gross_volume=k.read("GrossVolumeMeasure", _measure),
        notes=k.each("AdditionalInformationSPSNote", _note),
        classifications=k.each("ApplicableSPSClassification", _classification),
        packages=k.each("PhysicalSPSPackage", _package),
        origin_countries=k.each("OriginSPSCountry", _country),
        origin_locations=k.each("OriginSPSLocation", _location),
        treatments=k.each("AppliedSPSProcess", _treatment),
    )


def _treatment(el: _E) -> m.Treatment:
    k = _Kids(el)
    period_el = k.first("CompletionSPSPeriod")
    start = end = duration = None
    if period_el is not None:
        period = _Kids(period_el)
        start = period.read("StartDateTime", _datetime_of)
        end = period.read("EndDateTime", _datetime_of)
        duration = period.read("DurationMeasure", _measure)
    return m.Treatment(
        type_code=k.string("TypeCode"),
        start=start,
        end=end,
        duration=duration,
        characteristics=k.each("ApplicableSPSProcessCharacteristic", _characteristic),
    )


def _characteristic(el: _E) -> m.ProcessCharacteristic:
    k = _Kids(el)
    return m.ProcessCharacteristic(
        descriptions=k.texts("Description"), value=k.read("ValueMeasure", _measure)
    )


def _party(el: _E) -> m.Party:
    k = _Kids(el)
    person = k.first("SpecifiedSPSPerson")
    return m.Party(
        id=k.opt_str("ID"),
        name=k.read("Name", _text),
        role_code=k.opt_str("RoleCode"),
        address=k.read("SpecifiedSPSAddress", _address),
        person_name=None if person is None else _Kids(person).read("Name", _text),
    )


def _address(el: _E) -> m.Address:
    k = _Kids(el)
    return m.Address(
        postcode=k.opt_str("PostcodeCode"),
        line_one=k.opt_str("LineOne"),
        line_two=k.opt_str("LineTwo"),
        line_three=k.opt_str("LineThree"),
        line_four=k.opt_str("LineFour"),
        line_five=k.opt_str("LineFive"),
        city_name=k.opt_str("CityName"),
        country_id=k.opt_str("CountryID"),
        country_name=k.opt_str("CountryName"),
        country_subdivision_name=k.opt_str("CountrySubDivisionName"),
    )


def _country(el: _E) -> m.Country:
    k = _Kids(el)
    return m.Country(
        id=k.string("ID"),
        names=k.texts("Name"),
        subdivisions=tuple(
            name
            for sub in k.all("SubordinateSPSCountrySubDivision")
            for name in _Kids(sub).texts("Name")
        ),
    )


def _location(el: _E) -> m.Location:
    k = _Kids(el)
    return m.Location(id=k.opt_str("ID"), names=k.texts("Name"))


def _note(el: _E) -> m.Note:
    # Notes are most of an ePhyto's elements (every IPPC tag acronym is one): read them
    # in a single pass over their few children.
    subject = subject_code = None
    contents: list[m.Text] = []
    codes: list[str] = []
    for child in el:
        tag = child.tag
        if tag == _CONTENT:
            contents.append(_text(child))
        elif tag == _SUBJECT:
            subject = _plain(child) if subject is None else subject
        elif tag == _CONTENT_CODE:
            codes.append(_plain(child))
        elif tag == _SUBJECT_CODE:
            subject_code = _plain(child) if subject_code is None else subject_code
    return m.Note(subject, tuple(contents), tuple(codes), subject_code)


def _classification(el: _E) -> m.Classification:
    k = _Kids(el)
    return m.Classification(
        system_name=k.string("SystemName"),
        class_code=k.opt_str("ClassCode"),
        class_names=k.texts("ClassName"),
    )


def _package(el: _E) -> m.Package:
    k = _Kids(el)
    return m.Package(
        level_code=k.string("LevelCode"),
        type_code=k.string("TypeCode"),
        quantity=_decimal(k.one("ItemQuantity")),
        marks=tuple(_Kids(marks).string("Marking") for marks in k.all("PhysicalSPSShippingMarks")),
    )


def _reference(el: _E) -> m.ReferencedDocument:
    k = _Kids(el)
    return m.ReferencedDocument(
        issue_datetime=k.read("IssueDateTime", _datetime_of),
        type_code=k.opt_str("TypeCode"),
        relationship_type_code=k.opt_str("RelationshipTypeCode"),
        id=k.opt_str("ID"),
        attachments=k.each("AttachmentBinaryObject", _attachment),
        information=k.read("Information", _text),
    )


def _attachment(el: _E) -> m.Attachment:
    try:
        data = base64.b64decode("".join(_plain(el).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ModelError(el, "attachment is not valid Base64") from None
    return m.Attachment(data=data, mime_code=el.get("mimeCode"), filename=el.get("filename"))


def _authentication(el: _E) -> m.Authentication:
    k = _Kids(el)
    provider_el = k.first("ProviderSPSParty")
    provider = None if provider_el is None else _Kids(provider_el)
    officer = None if provider is None else provider.first("SpecifiedSPSPerson")
    return m.Authentication(
        issue_location=_location(k.one("IssueSPSLocation")),
        officer_name=None if officer is None else _Kids(officer).read("Name", _text),
        actual_datetime=k.read("ActualDateTime", _datetime_of),
        provider_name=None if provider is None else provider.read("Name", _text),
        clauses=k.each("IncludedSPSClause", _clause),
    )


def _clause(el: _E) -> m.Clause:
    k = _Kids(el)
    return m.Clause(id=k.string("ID"), contents=k.texts("Content"))


def _movement(el: _E) -> m.TransportMovement:
    k = _Kids(el)
    means = k.first("UsedSPSTransportMeans")
    return m.TransportMovement(
        mode_code=k.string("ModeCode"),
        id=k.opt_str("ID"),
        means_name=None if means is None else _Kids(means).read("Name", _text),
    )


def _equipment(el: _E) -> m.TransportEquipment:
    k = _Kids(el)
    return m.TransportEquipment(
        id=k.opt_str("ID"),
        seal_ids=tuple(_Kids(seal).string("ID") for seal in k.all("AffixedSPSSeal")),
    )


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date or date-time, `Z` allowed; raises ValueError otherwise."""
    return datetime.fromisoformat(text.strip())


def _datetime_of(el: _E) -> datetime:
    # udt:DateTimeType is a choice of DateTimeString (what ePhytos use) and DateTime.
    source = next(el.iterchildren(_DATETIME_STRING, _DATETIME), el)
    try:
        return parse_datetime(_plain(source))
    except ValueError:
        raise ModelError(source, f"not an ISO 8601 date-time: {_plain(source)!r}") from None


def _measure(el: _E) -> m.Measure:
    return m.Measure(value=_decimal(el), unit=el.get("unitCode"))


def _decimal(el: _E) -> Decimal:
    text = _plain(el).strip()
    if _XSD_DECIMAL.fullmatch(text) is None:
        # xsd:decimal has no exponent; 1E999999999 written out is a gigabyte.
        raise ModelError(el, f"not a decimal number: {text[:40]!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ModelError(el, f"not a decimal number: {_plain(el)!r}") from None
    if not value.is_finite():
        raise ModelError(el, f"not a finite decimal number: {_plain(el)!r}")
    return value


class _Kids(Children):
    """Children, plus the readers that raise ModelError where the model needs a value."""

    __slots__ = ()

    def one(self, local: str, namespace: str = RAM) -> _E:
        found = self.by_tag.get(f"{{{namespace}}}{local}")
        if not found:
            prefix = "ram" if namespace == RAM else "rsm"
            raise ModelError(self.element, f"missing mandatory element {prefix}:{local}")
        return found[0]

    def string(self, local: str) -> str:
        return _plain(self.one(local))

    def opt_str(self, local: str) -> str | None:
        found = self.first(local)
        return None if found is None else _plain(found)

    def texts(self, local: str) -> tuple[m.Text, ...]:
        return tuple(_text(c) for c in self.all(local))

    def read(self, local: str, read: Callable[[_E], _T]) -> _T | None:
        found = self.first(local)
        return None if found is None else read(found)

    def each(self, local: str, read: Callable[[_E], _T]) -> tuple[_T, ...]:
        return tuple(read(c) for c in self.all(local))


def _plain(el: _E) -> str:
    return el.text or ""


def _text(el: _E) -> m.Text:
    return m.Text(_plain(el), el.get(_XML_LANG))
