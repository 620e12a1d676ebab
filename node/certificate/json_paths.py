"""Where in the JSON model (docs/certificate-json.md) a finding on the built XML lies.

A certificate submitted as JSON is built into XML and the XML is validated, so its
findings are located by XPaths and lines of a document its author never saw.
`json_path` translates such an XPath into the JSON path of the model value the element
was built from (`$.consignment.items[0].scientific_names`), by the element names
`xml_build` writes for each field. An element with no model value of its own (a
wrapper, a missing child reported at its parent) gives the path of the nearest value
that encloses it.
"""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from typing import Any, Union

from node.certificate import model as m

# For each model class: the element names (local, in order) `xml_build` writes for a
# field, relative to the class's own element. A repeated field's index is the position
# `xpath_of` gives the one repeated step among them.
_FIELDS: dict[type, dict[tuple[str, ...], str]] = {
    m.Certificate: {
        ("SPSExchangedDocument", "Name"): "names",
        ("SPSExchangedDocument", "ID"): "number",
        ("SPSExchangedDocument", "Description"): "descriptions",
        ("SPSExchangedDocument", "TypeCode"): "type_code",
        ("SPSExchangedDocument", "StatusCode"): "status_code",
        ("SPSExchangedDocument", "IssueDateTime"): "issue_datetime",
        ("SPSExchangedDocument", "IssuerSPSParty"): "issuer",
        ("SPSExchangedDocument", "IncludedSPSNote"): "notes",
        ("SPSExchangedDocument", "ReferenceSPSReferencedDocument"): "references",
        ("SPSExchangedDocument", "SignatorySPSAuthentication"): "signatories",
        ("SPSConsignment",): "consignment",
    },
    m.Consignment: {
        ("ConsignorSPSParty",): "consignor",
        ("ConsigneeSPSParty",): "consignee",
        ("ExportSPSCountry",): "export_country",
        ("ReExportSPSCountry",): "reexport_countries",
        ("LoadingBaseportSPSLocation",): "loading_location",
        ("ImportSPSCountry",): "import_country",
        ("TransitSPSCountry",): "transit_countries",
        ("UnloadingBaseportSPSLocation",): "unloading_location",
        ("ExaminationSPSEvent", "OccurrenceSPSLocation"): "examination_location",
        ("MainCarriageSPSTransportMovement",): "transport_movements",
        ("UtilizedSPSTransportEquipment",): "transport_equipment",
        ("IncludedSPSConsignmentItem", "IncludedSPSTradeLineItem"): "items",
    },
    m.TradeLineItem: {
        ("SequenceNumeric",): "sequence",
        ("Description",): "descriptions",
        ("CommonName",): "common_names",
        ("ScientificName",): "scientific_names",
        ("ProductionBatchID",): "production_batch_ids",
        ("IntendedUse",): "intended_uses",
        ("NetWeightMeasure",): "net_weight",
        ("GrossWeightMeasure",): "gross_weight",
        ("NetVolumeMeasure",): "net_volume",
        ("GrossVolumeMeasure",): "gross_volume",
        ("AdditionalInformationSPSNote",): "notes",
        ("ApplicableSPSClassification",): "classifications",
        ("PhysicalSPSPackage",): "packages",
        ("OriginSPSCountry",): "origin_countries",
        ("OriginSPSLocation",): "origin_locations",
        ("AppliedSPSProcess",): "treatments",
    },
    m.Classification: {
        ("SystemName",): "system_name",
        ("ClassCode",): "class_code",
        ("ClassName",): "class_names",
    },
    m.Package: {
        ("LevelCode",): "level_code",
        ("TypeCode",): "type_code",
        ("ItemQuantity",): "quantity",
        ("PhysicalSPSShippingMarks", "Marking"): "marks",
    },
    m.Treatment: {
        ("TypeCode",): "type_code",
        ("CompletionSPSPeriod", "StartDateTime"): "start",
        ("CompletionSPSPeriod", "EndDateTime"): "end",
        ("CompletionSPSPeriod", "DurationMeasure"): "duration",
        ("ApplicableSPSProcessCharacteristic",): "characteristics",
    },
    m.ProcessCharacteristic: {
        ("Description",): "descriptions",
        ("ValueMeasure",): "value",
    },
    m.Party: {
        ("ID",): "id",
        ("Name",): "name",
        ("RoleCode",): "role_code",
        ("SpecifiedSPSAddress",): "address",
        ("SpecifiedSPSPerson", "Name"): "person_name",
    },
    m.Address: {
        ("PostcodeCode",): "postcode",
        ("LineOne",): "line_one",
        ("LineTwo",): "line_two",
        ("LineThree",): "line_three",
        ("LineFour",): "line_four",
        ("LineFive",): "line_five",
        ("CityName",): "city_name",
        ("CountryID",): "country_id",
        ("CountryName",): "country_name",
        ("CountrySubDivisionName",): "country_subdivision_name",
    },
    m.Country: {
        ("ID",): "id",
        ("Name",): "names",
        ("SubordinateSPSCountrySubDivision", "Name"): "subdivisions",
    },
    m.Location: {("ID",): "id", ("Name",): "names"},
    m.Note: {
        ("Subject",): "subject",
        ("ContentCode",): "content_codes",
        ("Content",): "contents",
        ("SubjectCode",): "subject_code",
    },
    m.ReferencedDocument: {
        ("IssueDateTime",): "issue_datetime",
        ("TypeCode",): "type_code",
        ("RelationshipTypeCode",): "relationship_type_code",
        ("ID",): "id",
        ("AttachmentBinaryObject",): "attachments",
        ("Information",): "information",
    },
    m.Authentication: {
        ("ActualDateTime",): "actual_datetime",
        ("IssueSPSLocation",): "issue_location",
        ("ProviderSPSParty", "Name"): "provider_name",
        ("ProviderSPSParty", "SpecifiedSPSPerson", "Name"): "officer_name",
        ("IncludedSPSClause",): "clauses",
    },
    m.Clause: {("ID",): "id", ("Content",): "contents"},
    m.TransportMovement: {
        ("ID",): "id",
        ("ModeCode",): "mode_code",
        ("UsedSPSTransportMeans", "Name"): "means_name",
    },
    m.TransportEquipment: {("ID",): "id", ("AffixedSPSSeal", "ID"): "seal_ids"},
}

_STEP = re.compile(r"^(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)(?:\[([0-9]{1,9})\])?$")
_ROOT = "SPSCertificate"


def json_path(xpath: str) -> str:
    """The JSON path of the model value an element of the built XML holds ('$' for the
    root, and for anything that is not an element of a certificate)."""
    steps = _steps(xpath)
    if not steps or steps[0][0] != _ROOT:
        return "$"
    path, model, rest = "$", m.Certificate, steps[1:]
    while rest:
        found = _field(model, rest)
        if found is None:
            break  # a wrapper, or an element of no field: the enclosing value
        name, used = found
        path += f".{name}"
        inner, repeated = _field_type(model, name)
        if repeated:
            position = next((n for _, n in rest[:used] if n is not None), 1)
            path += f"[{position - 1}]"
        rest = rest[used:]
        if inner not in _FIELDS:
            break  # a scalar, Text, Measure or Attachment: its own element is its value
        model = inner
    return path


def _steps(xpath: str) -> list[tuple[str, int | None]]:
    steps: list[tuple[str, int | None]] = []
    for raw in xpath.strip("/").split("/"):
        match = _STEP.match(raw)
        if match is None:
            return []
        steps.append((match[1], None if match[2] is None else int(match[2])))
    return steps


def _field(model: type, rest: list[tuple[str, int | None]]) -> tuple[str, int] | None:
    """The field whose elements `rest` starts with (the longest match), and how many
    steps it takes."""
    names = tuple(name for name, _ in rest)
    for length in range(min(len(names), 3), 0, -1):
        field = _FIELDS[model].get(names[:length])
        if field is not None:
            return field, length
    return None


@cache
def _field_type(model: type, name: str) -> tuple[Any, bool]:
    """The type a field holds (inside a tuple or an Optional), and whether it repeats."""
    hint = typing.get_type_hints(model, vars(m))[name]
    repeated = typing.get_origin(hint) is tuple
    if repeated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint, repeated
