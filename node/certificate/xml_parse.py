"""Read an SPSCertificate element tree into the model.

The tree comes from `safe_xml.parse` and should have passed the schema layer; what
the model cannot hold (a missing mandatory element, a date that is not ISO 8601)
raises `ModelError` located at the element.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar, cast

from lxml import etree

from node.certificate import model as m
from node.certificate.findings import xpath_of
from node.certificate.xmlns import RAM, ROOT_TAG, ram, rsm, udt
from node.errors import InputError

_E = etree._Element
_T = TypeVar("_T")
_XML_LANG = "languageID"


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
    doc = _child(root, rsm("SPSExchangedDocument"))
    consignment = _child(root, rsm("SPSConsignment"))
    return m.Certificate(
        number=_str(doc, "ID"),
        type_code=_str(doc, "TypeCode"),
        status_code=_str(doc, "StatusCode"),
        issue_datetime=_datetime_of(_child(doc, ram("IssueDateTime"))),
        issuer=_party(_child(doc, ram("IssuerSPSParty"))),
        signatories=_each(doc, "SignatorySPSAuthentication", _authentication),
        consignment=_consignment(consignment),
        names=_texts(doc, "Name"),
        descriptions=_texts(doc, "Description"),
        notes=_each(doc, "IncludedSPSNote", _note),
        references=_each(doc, "ReferenceSPSReferencedDocument", _reference),
    )


def _consignment(el: _E) -> m.Consignment:
    items = tuple(
        _trade_line_item(item)
        for group in el.iterchildren(ram("IncludedSPSConsignmentItem"))
        for item in group.iterchildren(ram("IncludedSPSTradeLineItem"))
    )
    return m.Consignment(
        consignor=_party(_child(el, ram("ConsignorSPSParty"))),
        consignee=_party(_child(el, ram("ConsigneeSPSParty"))),
        export_country=_country(_child(el, ram("ExportSPSCountry"))),
        import_country=_country(_child(el, ram("ImportSPSCountry"))),
        examination_location=_location(
            _child(_child(el, ram("ExaminationSPSEvent")), ram("OccurrenceSPSLocation"))
        ),
        items=items,
        reexport_countries=_each(el, "ReExportSPSCountry", _country),
        transit_countries=_each(el, "TransitSPSCountry", _country),
        loading_location=_opt(el, "LoadingBaseportSPSLocation", _location),
        unloading_location=_opt(el, "UnloadingBaseportSPSLocation", _location),
        transport_movements=_each(el, "MainCarriageSPSTransportMovement", _movement),
        transport_equipment=_each(el, "UtilizedSPSTransportEquipment", _equipment),
    )


def _trade_line_item(el: _E) -> m.TradeLineItem:
    sequence = _child(el, ram("SequenceNumeric"))
    try:
        number = int(_plain(sequence))
    except ValueError:
        raise ModelError(sequence, "SequenceNumeric is not a whole number") from None
    return m.TradeLineItem(
        sequence=number,
        descriptions=_texts(el, "Description"),
        common_names=_texts(el, "CommonName"),
        scientific_names=_texts(el, "ScientificName"),
        production_batch_ids=tuple(_plain(c) for c in el.iterchildren(ram("ProductionBatchID"))),
        intended_uses=_texts(el, "IntendedUse"),
        net_weight=_opt(el, "NetWeightMeasure", _measure),
        gross_weight=_opt(el, "GrossWeightMeasure", _measure),
        net_volume=_opt(el, "NetVolumeMeasure", _measure),
        gross_volume=_opt(el, "GrossVolumeMeasure", _measure),
        notes=_each(el, "AdditionalInformationSPSNote", _note),
        classifications=_each(el, "ApplicableSPSClassification", _classification),
        packages=_each(el, "PhysicalSPSPackage", _package),
        origin_countries=_each(el, "OriginSPSCountry", _country),
        origin_locations=_each(el, "OriginSPSLocation", _location),
        treatments=_each(el, "AppliedSPSProcess", _treatment),
    )


def _treatment(el: _E) -> m.Treatment:
    period = el.find(ram("CompletionSPSPeriod"))
    start = end = duration = None
    if period is not None:
        start = _opt(period, "StartDateTime", _datetime_of)
        end = _opt(period, "EndDateTime", _datetime_of)
        duration = _opt(period, "DurationMeasure", _measure)
    return m.Treatment(
        type_code=_str(el, "TypeCode"),
        start=start,
        end=end,
        duration=duration,
        characteristics=tuple(
            m.ProcessCharacteristic(
                descriptions=_texts(ch, "Description"),
                value=_opt(ch, "ValueMeasure", _measure),
            )
            for ch in el.iterchildren(ram("ApplicableSPSProcessCharacteristic"))
        ),
    )


def _party(el: _E) -> m.Party:
    person = el.find(ram("SpecifiedSPSPerson"))
    return m.Party(
        id=_opt_str(el, "ID"),
        name=_opt(el, "Name", _text),
        role_code=_opt_str(el, "RoleCode"),
        address=_opt(el, "SpecifiedSPSAddress", _address),
        person_name=None if person is None else _opt(person, "Name", _text),
    )


def _address(el: _E) -> m.Address:
    return m.Address(
        postcode=_opt_str(el, "PostcodeCode"),
        line_one=_opt_str(el, "LineOne"),
        line_two=_opt_str(el, "LineTwo"),
        line_three=_opt_str(el, "LineThree"),
        line_four=_opt_str(el, "LineFour"),
        line_five=_opt_str(el, "LineFive"),
        city_name=_opt_str(el, "CityName"),
        country_id=_opt_str(el, "CountryID"),
        country_name=_opt_str(el, "CountryName"),
        country_subdivision_name=_opt_str(el, "CountrySubDivisionName"),
    )


def _country(el: _E) -> m.Country:
    return m.Country(
        id=_str(el, "ID"),
        names=_texts(el, "Name"),
        subdivisions=tuple(
            name
            for sub in el.iterchildren(ram("SubordinateSPSCountrySubDivision"))
            for name in _texts(sub, "Name")
        ),
    )


def _location(el: _E) -> m.Location:
    return m.Location(id=_opt_str(el, "ID"), names=_texts(el, "Name"))


def _note(el: _E) -> m.Note:
    return m.Note(
        subject=_opt_str(el, "Subject"),
        contents=_texts(el, "Content"),
        content_codes=tuple(_plain(c) for c in el.iterchildren(ram("ContentCode"))),
        subject_code=_opt_str(el, "SubjectCode"),
    )


def _classification(el: _E) -> m.Classification:
    return m.Classification(
        system_name=_str(el, "SystemName"),
        class_code=_opt_str(el, "ClassCode"),
        class_names=_texts(el, "ClassName"),
    )


def _package(el: _E) -> m.Package:
    return m.Package(
        level_code=_str(el, "LevelCode"),
        type_code=_str(el, "TypeCode"),
        quantity=_decimal(_child(el, ram("ItemQuantity"))),
        marks=tuple(
            _str(marks, "Marking") for marks in el.iterchildren(ram("PhysicalSPSShippingMarks"))
        ),
    )


def _reference(el: _E) -> m.ReferencedDocument:
    return m.ReferencedDocument(
        issue_datetime=_opt(el, "IssueDateTime", _datetime_of),
        type_code=_opt_str(el, "TypeCode"),
        relationship_type_code=_opt_str(el, "RelationshipTypeCode"),
        id=_opt_str(el, "ID"),
        attachments=_each(el, "AttachmentBinaryObject", _attachment),
        information=_opt(el, "Information", _text),
    )


def _attachment(el: _E) -> m.Attachment:
    try:
        data = base64.b64decode("".join(_plain(el).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ModelError(el, "attachment is not valid Base64") from None
    return m.Attachment(data=data, mime_code=el.get("mimeCode"), filename=el.get("filename"))


def _authentication(el: _E) -> m.Authentication:
    provider = el.find(ram("ProviderSPSParty"))
    officer = provider.find(ram("SpecifiedSPSPerson")) if provider is not None else None
    return m.Authentication(
        issue_location=_location(_child(el, ram("IssueSPSLocation"))),
        officer_name=None if officer is None else _opt(officer, "Name", _text),
        actual_datetime=_opt(el, "ActualDateTime", _datetime_of),
        provider_name=None if provider is None else _opt(provider, "Name", _text),
        clauses=tuple(
            m.Clause(id=_str(c, "ID"), contents=_texts(c, "Content"))
            for c in el.iterchildren(ram("IncludedSPSClause"))
        ),
    )


def _movement(el: _E) -> m.TransportMovement:
    means = el.find(ram("UsedSPSTransportMeans"))
    return m.TransportMovement(
        mode_code=_str(el, "ModeCode"),
        id=_opt_str(el, "ID"),
        means_name=None if means is None else _opt(means, "Name", _text),
    )


def _equipment(el: _E) -> m.TransportEquipment:
    return m.TransportEquipment(
        id=_opt_str(el, "ID"),
        seal_ids=tuple(_str(s, "ID") for s in el.iterchildren(ram("AffixedSPSSeal"))),
    )


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date or date-time, `Z` allowed; raises ValueError otherwise."""
    return datetime.fromisoformat(text.strip())


def _datetime_of(el: _E) -> datetime:
    inner = el.find(udt("DateTimeString"))
    source = el if inner is None else inner
    try:
        return parse_datetime(_plain(source))
    except ValueError:
        raise ModelError(source, f"not an ISO 8601 date-time: {_plain(source)!r}") from None


def _measure(el: _E) -> m.Measure:
    return m.Measure(value=_decimal(el), unit=el.get("unitCode"))


def _decimal(el: _E) -> Decimal:
    try:
        value = Decimal(_plain(el).strip())
    except InvalidOperation:
        raise ModelError(el, f"not a decimal number: {_plain(el)!r}") from None
    if not value.is_finite():
        raise ModelError(el, f"not a finite decimal number: {_plain(el)!r}")
    return value


def _child(el: _E, tag: str) -> _E:
    found = el.find(tag)
    if found is None:
        local = etree.QName(tag).localname
        prefix = "ram" if etree.QName(tag).namespace == RAM else "rsm"
        raise ModelError(el, f"missing mandatory element {prefix}:{local}")
    return found


def _plain(el: _E) -> str:
    return el.text or ""


def _text(el: _E) -> m.Text:
    return m.Text(_plain(el), el.get(_XML_LANG))


def _texts(el: _E, local: str) -> tuple[m.Text, ...]:
    return tuple(_text(c) for c in el.iterchildren(ram(local)))


def _str(el: _E, local: str) -> str:
    return _plain(_child(el, ram(local)))


def _opt_str(el: _E, local: str) -> str | None:
    found = el.find(ram(local))
    return None if found is None else _plain(found)


def _opt(el: _E, local: str, read: Callable[[_E], _T]) -> _T | None:
    found = el.find(ram(local))
    return None if found is None else read(found)


def _each(el: _E, local: str, read: Callable[[_E], _T]) -> tuple[_T, ...]:
    return tuple(read(c) for c in el.iterchildren(ram(local)))
