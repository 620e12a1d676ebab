"""Layer 3 of validation: the content ISPM 12 requires of a certificate.

The schema says what may appear; this layer says what a phytosanitary certificate
(851) or re-export certificate (657) must say, box by box of the ISPM 12 model
certificates. It reads the tree, not the model, so findings carry exact locations and
so it still reports on documents the model cannot hold.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from node.certificate.findings import Area, Finding, Level, finding_at
from node.certificate.model import REEXPORT
from node.certificate.xml_parse import parse_datetime
from node.certificate.xmlns import ram, rsm, udt

_E = etree._Element

# Re-export boxes that come as pairs of ticks: exactly one of each pair should be true.
_REEXPORT_PAIRS = (
    ("RPCOR", "RPCTC", "original certificate or certified true copy"),
    ("RPCPK", "RPCRP", "packed or repacked"),
    ("RPCOC", "RPCNC", "original or new containers"),
)
_QUANTITY_TAGS = tuple(
    ram(t)
    for t in ("NetWeightMeasure", "GrossWeightMeasure", "NetVolumeMeasure", "GrossVolumeMeasure")
)


def mandatory_findings(root: _E) -> list[Finding]:
    """What ISPM 12 requires and the document lacks, each finding located."""
    findings: list[Finding] = []
    doc = root.find(rsm("SPSExchangedDocument"))
    consignment = root.find(rsm("SPSConsignment"))
    if doc is not None:
        findings.extend(_document(doc))
    if consignment is not None:
        type_code = _text_at(doc, "TypeCode") if doc is not None else ""
        findings.extend(_consignment(consignment, reexport=type_code == REEXPORT))
    return findings


def _document(doc: _E) -> Iterator[Finding]:
    yield from _require_text(doc, "ID", "certificate number")
    yield from _require_text(doc, "TypeCode", "certificate type (851 or 657)")
    yield from _require_text(doc, "StatusCode", "certificate status")
    issued = doc.find(ram("IssueDateTime"))
    if issued is not None:
        yield from _check_datetime(issued, "date of issue")
    issuer = doc.find(ram("IssuerSPSParty"))
    if issuer is not None:
        yield from _require_text(issuer, "Name", "issuing plant protection organization")
    for signatory in doc.iterchildren(ram("SignatorySPSAuthentication")):
        place = signatory.find(ram("IssueSPSLocation"))
        if place is not None:
            yield from _require_text(place, "Name", "place of issue")
        officer = signatory.find(f"{ram('ProviderSPSParty')}/{ram('SpecifiedSPSPerson')}")
        if officer is None or not _text_at(officer, "Name"):
            yield finding_at(
                signatory, Level.SEVERE, Area.MANDATORY, "name of authorized officer is missing"
            )
        if signatory.find(ram("IncludedSPSClause")) is None:
            yield finding_at(
                signatory,
                Level.WARNING,
                Area.MANDATORY,
                "no certifying statement (IncludedSPSClause)",
            )
    yield from _replacement(doc)


def _replacement(doc: _E) -> Iterator[Finding]:
    """A replacement certificate says which certificate it replaces (ADRP notes)."""
    subjects = {_text_at(n, "Subject"): n for n in doc.iterchildren(ram("IncludedSPSNote"))}
    replacement = [s for s in subjects if s.startswith("ADRP") or s == "ADRD"]
    if replacement and "ADRPN" not in subjects:
        yield finding_at(
            subjects[replacement[0]],
            Level.SEVERE,
            Area.MANDATORY,
            "replacement notes without ADRPN (number of the replaced certificate)",
        )
    if "ADRPN" in subjects and "ADRPR" not in subjects:
        yield finding_at(
            subjects["ADRPN"],
            Level.WARNING,
            Area.MANDATORY,
            "replacement without ADRPR (reason for replacement)",
        )


def _consignment(c: _E, *, reexport: bool) -> Iterator[Finding]:
    consignor = c.find(ram("ConsignorSPSParty"))
    if consignor is not None:
        yield from _require_text(consignor, "Name", "name of exporter (consignor)")
        if consignor.find(ram("SpecifiedSPSAddress")) is None:
            yield finding_at(
                consignor,
                Level.WARNING,
                Area.MANDATORY,
                "address of exporter (consignor) is missing",
            )
    consignee = c.find(ram("ConsigneeSPSParty"))
    if consignee is not None:
        yield from _require_text(consignee, "Name", "declared name of consignee")
    for tag, what in (
        ("ExportSPSCountry", "exporting country"),
        ("ImportSPSCountry", "importing country"),
    ):
        country = c.find(ram(tag))
        if country is not None:
            yield from _require_text(country, "ID", what)
    if c.find(ram("UnloadingBaseportSPSLocation")) is None:
        yield finding_at(
            c,
            Level.WARNING,
            Area.MANDATORY,
            "declared point of entry (UnloadingBaseportSPSLocation) is missing",
        )
    if c.find(ram("MainCarriageSPSTransportMovement")) is None:
        yield finding_at(
            c,
            Level.WARNING,
            Area.MANDATORY,
            "declared means of conveyance (MainCarriageSPSTransportMovement) is missing",
        )
    items = c.findall(f"{ram('IncludedSPSConsignmentItem')}/{ram('IncludedSPSTradeLineItem')}")
    if not items:
        yield finding_at(c, Level.SEVERE, Area.MANDATORY, "consignment lists no commodity")
    for item in items:
        yield from _item(item, reexport=reexport)


def _item(item: _E, *, reexport: bool) -> Iterator[Finding]:
    yield from _require_text(item, "Description", "name of produce")
    if not _text_at(item, "ScientificName"):
        yield finding_at(
            item,
            Level.SEVERE,
            Area.MANDATORY,
            "botanical name of plants (ScientificName) is missing",
        )
    notes = {
        _text_at(n, "Subject"): n for n in item.iterchildren(ram("AdditionalInformationSPSNote"))
    }
    has_quantity = any(item.find(t) is not None for t in _QUANTITY_TAGS) or "OQV" in notes
    if not has_quantity:
        yield finding_at(
            item,
            Level.SEVERE,
            Area.MANDATORY,
            "quantity declared is missing (a weight, a volume, or OQV/OQU)",
        )
    if "OQV" in notes and "OQU" not in notes:
        yield finding_at(
            notes["OQV"],
            Level.WARNING,
            Area.MANDATORY,
            "other quantity (OQV) without its unit (OQU)",
        )
    if item.find(ram("PhysicalSPSPackage")) is None and "OPTND" not in notes:
        yield finding_at(
            item, Level.WARNING, Area.MANDATORY, "number and description of packages is missing"
        )
    if item.find(ram("OriginSPSCountry")) is None:
        yield finding_at(
            item, Level.SEVERE, Area.MANDATORY, "place of origin (OriginSPSCountry) is missing"
        )
    for process in item.iterchildren(ram("AppliedSPSProcess")):
        yield from _treatment(process)
    if reexport:
        yield from _reexport(item, notes)


def _treatment(process: _E) -> Iterator[Finding]:
    kinds = {
        _text_at(ch, "Description")
        for ch in process.iterchildren(ram("ApplicableSPSProcessCharacteristic"))
    }
    if "TTL1" not in kinds and "TTFT" not in kinds:
        yield finding_at(
            process,
            Level.WARNING,
            Area.MANDATORY,
            "treatment without a type (TTL1) or full text (TTFT)",
        )
    start = process.find(f"{ram('CompletionSPSPeriod')}/{ram('StartDateTime')}")
    if start is not None:
        yield from _check_datetime(start, "treatment date")


def _reexport(item: _E, notes: dict[str, _E]) -> Iterator[Finding]:
    for subject, what in (
        ("RPCCO", "country of origin of the re-exported goods"),
        ("RPCRF", "reference of the original phytosanitary certificate"),
    ):
        if subject not in notes:
            yield finding_at(
                item,
                Level.SEVERE,
                Area.MANDATORY,
                f"re-export certificate without {subject} ({what})",
            )
    for first, second, what in _REEXPORT_PAIRS:
        ticks = [_text_at(notes[s], "Content") == "true" for s in (first, second) if s in notes]
        if sum(ticks) != 1:
            yield finding_at(
                item,
                Level.WARNING,
                Area.MANDATORY,
                f"re-export box '{what}': tick exactly one of {first}, {second}",
            )


def _require_text(parent: _E, local: str, what: str) -> Iterator[Finding]:
    el = parent.find(ram(local))
    if el is None:
        # The schema layer reports absent required elements; avoid saying it twice.
        return
    if not (el.text or "").strip():
        yield finding_at(el, Level.SEVERE, Area.MANDATORY, f"{what} is empty")


def _check_datetime(el: _E, what: str) -> Iterator[Finding]:
    inner = el.find(udt("DateTimeString"))
    source = el if inner is None else inner
    try:
        parse_datetime(source.text or "")
    except ValueError:
        yield finding_at(
            source,
            Level.SEVERE,
            Area.MANDATORY,
            f"{what} is not an ISO 8601 date-time: {(source.text or '')!r}",
        )


def _text_at(parent: _E, local: str) -> str:
    el = parent.find(ram(local))
    return (el.text or "").strip() if el is not None else ""
