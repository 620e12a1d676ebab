"""Build UN/CEFACT D17A SPSCertificate XML from the model.

Element order follows the D17A schema sequences; only present values are written.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree

from node.certificate import model as m
from node.certificate.xmlns import NSMAP, ROOT_TAG, ram, rsm, udt

_E = etree._Element


def to_xml_bytes(cert: m.Certificate) -> bytes:
    """The certificate as UTF-8 XML bytes with an XML declaration."""
    return bytes(
        etree.tostring(build_tree(cert), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    )


def build_tree(cert: m.Certificate) -> _E:
    """The certificate as an lxml element tree rooted at rsm:SPSCertificate."""
    root = etree.Element(ROOT_TAG, nsmap=NSMAP)
    doc = etree.SubElement(root, rsm("SPSExchangedDocument"))
    _texts(doc, "Name", cert.names)
    _text(doc, "ID", cert.number)
    _texts(doc, "Description", cert.descriptions)
    _text(doc, "TypeCode", cert.type_code)
    _text(doc, "StatusCode", cert.status_code)
    _datetime(doc, "IssueDateTime", cert.issue_datetime)
    _party(doc, "IssuerSPSParty", cert.issuer)
    for note in cert.notes:
        _note(doc, "IncludedSPSNote", note)
    for reference in cert.references:
        _reference(doc, reference)
    for signatory in cert.signatories:
        _authentication(doc, signatory)
    _consignment(etree.SubElement(root, rsm("SPSConsignment")), cert.consignment)
    return root


def format_datetime(value: datetime) -> str:
    """ISO 8601 as ePhytos write it: `Z` for UTC, the offset otherwise."""
    text = value.isoformat()
    if value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None):
        text = text.removesuffix("+00:00") + "Z"
    return text


def format_decimal(value: Decimal) -> str:
    """Plain decimal notation (never 1E+3), keeping the given precision."""
    return f"{value:f}"


def _consignment(parent: _E, c: m.Consignment) -> None:
    _party(parent, "ConsignorSPSParty", c.consignor)
    _party(parent, "ConsigneeSPSParty", c.consignee)
    _country(parent, "ExportSPSCountry", c.export_country)
    for country in c.reexport_countries:
        _country(parent, "ReExportSPSCountry", country)
    if c.loading_location is not None:
        _location(parent, "LoadingBaseportSPSLocation", c.loading_location)
    _country(parent, "ImportSPSCountry", c.import_country)
    for country in c.transit_countries:
        _country(parent, "TransitSPSCountry", country)
    if c.unloading_location is not None:
        _location(parent, "UnloadingBaseportSPSLocation", c.unloading_location)
    event = etree.SubElement(parent, ram("ExaminationSPSEvent"))
    _location(event, "OccurrenceSPSLocation", c.examination_location)
    for movement in c.transport_movements:
        el = etree.SubElement(parent, ram("MainCarriageSPSTransportMovement"))
        _opt_text(el, "ID", movement.id)
        _text(el, "ModeCode", movement.mode_code)
        if movement.means_name is not None:
            means = etree.SubElement(el, ram("UsedSPSTransportMeans"))
            _text(means, "Name", movement.means_name)
    for equipment in c.transport_equipment:
        _equipment(parent, "UtilizedSPSTransportEquipment", equipment)
    item_parent = etree.SubElement(parent, ram("IncludedSPSConsignmentItem"))
    for item in c.items:
        _trade_line_item(item_parent, item)


def _trade_line_item(parent: _E, item: m.TradeLineItem) -> None:
    el = etree.SubElement(parent, ram("IncludedSPSTradeLineItem"))
    _text(el, "SequenceNumeric", str(item.sequence))
    _texts(el, "Description", item.descriptions)
    _texts(el, "CommonName", item.common_names)
    _texts(el, "ScientificName", item.scientific_names)
    for batch in item.production_batch_ids:
        _text(el, "ProductionBatchID", batch)
    _texts(el, "IntendedUse", item.intended_uses)
    _measure(el, "NetWeightMeasure", item.net_weight)
    _measure(el, "GrossWeightMeasure", item.gross_weight)
    _measure(el, "NetVolumeMeasure", item.net_volume)
    _measure(el, "GrossVolumeMeasure", item.gross_volume)
    for note in item.notes:
        _note(el, "AdditionalInformationSPSNote", note)
    for classification in item.classifications:
        cl = etree.SubElement(el, ram("ApplicableSPSClassification"))
        _text(cl, "SystemName", classification.system_name)
        _opt_text(cl, "ClassCode", classification.class_code)
        _texts(cl, "ClassName", classification.class_names)
    for package in item.packages:
        pk = etree.SubElement(el, ram("PhysicalSPSPackage"))
        _text(pk, "LevelCode", package.level_code)
        _text(pk, "TypeCode", package.type_code)
        _text(pk, "ItemQuantity", format_decimal(package.quantity))
        for mark in package.marks:
            marks = etree.SubElement(pk, ram("PhysicalSPSShippingMarks"))
            _text(marks, "Marking", mark)
    for country in item.origin_countries:
        _country(el, "OriginSPSCountry", country)
    for location in item.origin_locations:
        _location(el, "OriginSPSLocation", location)
    for treatment in item.treatments:
        _treatment(el, treatment)


def _treatment(parent: _E, t: m.Treatment) -> None:
    el = etree.SubElement(parent, ram("AppliedSPSProcess"))
    _text(el, "TypeCode", t.type_code)
    if t.start is not None or t.end is not None or t.duration is not None:
        period = etree.SubElement(el, ram("CompletionSPSPeriod"))
        if t.start is not None:
            _datetime(period, "StartDateTime", t.start)
        if t.end is not None:
            _datetime(period, "EndDateTime", t.end)
        _measure(period, "DurationMeasure", t.duration)
    for characteristic in t.characteristics:
        ch = etree.SubElement(el, ram("ApplicableSPSProcessCharacteristic"))
        _texts(ch, "Description", characteristic.descriptions)
        _measure(ch, "ValueMeasure", characteristic.value)


def _party(parent: _E, tag: str, party: m.Party) -> None:
    el = etree.SubElement(parent, ram(tag))
    _opt_text(el, "ID", party.id)
    if party.name is not None:
        _text(el, "Name", party.name)
    _opt_text(el, "RoleCode", party.role_code)
    if party.address is not None:
        _address(el, party.address)
    if party.person_name is not None:
        person = etree.SubElement(el, ram("SpecifiedSPSPerson"))
        _text(person, "Name", party.person_name)


def _address(parent: _E, a: m.Address) -> None:
    el = etree.SubElement(parent, ram("SpecifiedSPSAddress"))
    _opt_text(el, "PostcodeCode", a.postcode)
    _opt_text(el, "LineOne", a.line_one)
    _opt_text(el, "LineTwo", a.line_two)
    _opt_text(el, "LineThree", a.line_three)
    _opt_text(el, "LineFour", a.line_four)
    _opt_text(el, "LineFive", a.line_five)
    _opt_text(el, "CityName", a.city_name)
    _opt_text(el, "CountryID", a.country_id)
    _opt_text(el, "CountryName", a.country_name)
    _opt_text(el, "CountrySubDivisionName", a.country_subdivision_name)


def _country(parent: _E, tag: str, country: m.Country) -> None:
    el = etree.SubElement(parent, ram(tag))
    _text(el, "ID", country.id)
    _texts(el, "Name", country.names)
    for name in country.subdivisions:
        sub = etree.SubElement(el, ram("SubordinateSPSCountrySubDivision"))
        _text(sub, "Name", name)


def _location(parent: _E, tag: str, location: m.Location) -> None:
    el = etree.SubElement(parent, ram(tag))
    _opt_text(el, "ID", location.id)
    _texts(el, "Name", location.names)


def _note(parent: _E, tag: str, note: m.Note) -> None:
    el = etree.SubElement(parent, ram(tag))
    _opt_text(el, "Subject", note.subject)
    for code in note.content_codes:
        _text(el, "ContentCode", code)
    _texts(el, "Content", note.contents)
    _opt_text(el, "SubjectCode", note.subject_code)


def _reference(parent: _E, r: m.ReferencedDocument) -> None:
    el = etree.SubElement(parent, ram("ReferenceSPSReferencedDocument"))
    if r.issue_datetime is not None:
        _datetime(el, "IssueDateTime", r.issue_datetime)
    _opt_text(el, "TypeCode", r.type_code)
    _opt_text(el, "RelationshipTypeCode", r.relationship_type_code)
    _opt_text(el, "ID", r.id)
    for attachment in r.attachments:
        a = etree.SubElement(el, ram("AttachmentBinaryObject"))
        a.text = base64.b64encode(attachment.data).decode("ascii")
        if attachment.mime_code is not None:
            a.set("mimeCode", attachment.mime_code)
        if attachment.filename is not None:
            a.set("filename", attachment.filename)
    if r.information is not None:
        _text(el, "Information", r.information)


def _authentication(parent: _E, auth: m.Authentication) -> None:
    el = etree.SubElement(parent, ram("SignatorySPSAuthentication"))
    if auth.actual_datetime is not None:
        _datetime(el, "ActualDateTime", auth.actual_datetime)
    _location(el, "IssueSPSLocation", auth.issue_location)
    if auth.provider_name is not None or auth.officer_name is not None:
        provider = etree.SubElement(el, ram("ProviderSPSParty"))
        if auth.provider_name is not None:
            _text(provider, "Name", auth.provider_name)
        if auth.officer_name is not None:
            person = etree.SubElement(provider, ram("SpecifiedSPSPerson"))
            _text(person, "Name", auth.officer_name)
    for clause in auth.clauses:
        cl = etree.SubElement(el, ram("IncludedSPSClause"))
        _text(cl, "ID", clause.id)
        _texts(cl, "Content", clause.contents)


def _equipment(parent: _E, tag: str, equipment: m.TransportEquipment) -> None:
    el = etree.SubElement(parent, ram(tag))
    _opt_text(el, "ID", equipment.id)
    for seal in equipment.seal_ids:
        s = etree.SubElement(el, ram("AffixedSPSSeal"))
        _text(s, "ID", seal)


def _text(parent: _E, tag: str, value: str | m.Text) -> _E:
    el = etree.SubElement(parent, ram(tag))
    if isinstance(value, m.Text):
        el.text = value.value
        if value.language is not None:
            el.set("languageID", value.language)
    else:
        el.text = value
    return el


def _opt_text(parent: _E, tag: str, value: str | None) -> None:
    if value is not None:
        _text(parent, tag, value)


def _texts(parent: _E, tag: str, values: Iterable[m.Text]) -> None:
    for value in values:
        _text(parent, tag, value)


def _measure(parent: _E, tag: str, measure: m.Measure | None) -> None:
    if measure is None:
        return
    el = _text(parent, tag, format_decimal(measure.value))
    if measure.unit is not None:
        el.set("unitCode", measure.unit)


def _datetime(parent: _E, tag: str, value: datetime) -> None:
    el = etree.SubElement(parent, ram(tag))
    etree.SubElement(el, udt("DateTimeString")).text = format_datetime(value)
