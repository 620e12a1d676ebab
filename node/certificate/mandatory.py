"""Layer 3 of validation: the content ISPM 12 requires of a certificate.

The schema says what may appear; this layer says what a phytosanitary certificate
(851) or re-export certificate (657) must say, box by box of the ISPM 12 model
certificates, and that the values the model reads (dates, sequence numbers) are
readable. It reads the tree, not the model, so findings carry exact locations and it
still reports on documents the model cannot hold.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from node.certificate.children import Children, child_text
from node.certificate.findings import Area, Finding, Level, finding_at
from node.certificate.model import REEXPORT
from node.certificate.xml_parse import parse_datetime
from node.certificate.xmlns import rsm, udt

_E = etree._Element

# Re-export boxes that come as pairs of ticks: exactly one of each pair should be true.
_REEXPORT_PAIRS = (
    ("RPCOR", "RPCTC", "original certificate or certified true copy"),
    ("RPCPK", "RPCRP", "packed or repacked"),
    ("RPCOC", "RPCNC", "original or new containers"),
)
_QUANTITIES = ("NetWeightMeasure", "GrossWeightMeasure", "NetVolumeMeasure", "GrossVolumeMeasure")
_DOCUMENT, _CONSIGNMENT = rsm("SPSExchangedDocument"), rsm("SPSConsignment")
_DATETIME_TAGS = (udt("DateTimeString"),)


def mandatory_findings(root: _E) -> list[Finding]:
    """What ISPM 12 requires and the document lacks, each finding located."""
    findings: list[Finding] = []
    doc = consignment = None
    for child in root:
        if child.tag == _DOCUMENT:
            doc = Children(child)
        elif child.tag == _CONSIGNMENT:
            consignment = Children(child)
    if doc is not None:
        findings.extend(_document(doc))
    if consignment is not None:
        reexport = doc is not None and doc.text("TypeCode") == REEXPORT
        findings.extend(_consignment(consignment, reexport=reexport))
    findings.extend(_unreadable_dates(root))
    return findings


def _document(doc: Children) -> Iterator[Finding]:
    yield from _require_text(doc, "ID", "certificate number")
    yield from _require_text(doc, "TypeCode", "certificate type (851 or 657)")
    yield from _require_text(doc, "StatusCode", "certificate status")
    issuer = doc.first("IssuerSPSParty")
    if issuer is not None:
        yield from _require_text(Children(issuer), "Name", "issuing plant protection organization")
    for signatory_el in doc.all("SignatorySPSAuthentication"):
        signatory = Children(signatory_el)
        place = signatory.first("IssueSPSLocation")
        if place is not None:
            yield from _require_text(Children(place), "Name", "place of issue")
        provider = signatory.first("ProviderSPSParty")
        person = None if provider is None else Children(provider).first("SpecifiedSPSPerson")
        if person is None or not child_text(person, "Name"):
            yield _severe(signatory_el, "name of authorized officer is missing")
        if not signatory.has("IncludedSPSClause"):
            yield _warning(signatory_el, "no certifying statement (IncludedSPSClause)")
    yield from _replacement(doc)


def _replacement(doc: Children) -> Iterator[Finding]:
    """A replacement certificate says which certificate it replaces (ADRP notes)."""
    notes = _notes_by_subject(doc.all("IncludedSPSNote"))
    replacement = [s for s in notes if s.startswith("ADRP") or s == "ADRD"]
    if replacement and "ADRPN" not in notes:
        yield _severe(
            notes[replacement[0]],
            "replacement notes without ADRPN (number of the replaced certificate)",
        )
    if "ADRPN" in notes and "ADRPR" not in notes:
        yield _warning(notes["ADRPN"], "replacement without ADRPR (reason for replacement)")


def _consignment(c: Children, *, reexport: bool) -> Iterator[Finding]:
    consignor = c.first("ConsignorSPSParty")
    if consignor is not None:
        party = Children(consignor)
        yield from _require_text(party, "Name", "name of exporter (consignor)")
        if not party.has("SpecifiedSPSAddress"):
            yield _warning(consignor, "address of exporter (consignor) is missing")
    consignee = c.first("ConsigneeSPSParty")
    if consignee is not None:
        yield from _require_text(Children(consignee), "Name", "declared name of consignee")
    for tag, what in (
        ("ExportSPSCountry", "exporting country"),
        ("ImportSPSCountry", "importing country"),
    ):
        country = c.first(tag)
        if country is not None:
            yield from _require_text(Children(country), "ID", what)
    if not c.has("UnloadingBaseportSPSLocation"):
        yield _warning(
            c.element, "declared point of entry (UnloadingBaseportSPSLocation) is missing"
        )
    if not c.has("MainCarriageSPSTransportMovement"):
        yield _warning(
            c.element, "declared means of conveyance (MainCarriageSPSTransportMovement) is missing"
        )
    items = [
        item
        for group in c.all("IncludedSPSConsignmentItem")
        for item in Children(group).all("IncludedSPSTradeLineItem")
    ]
    if not items:
        yield _severe(c.element, "consignment lists no commodity")
    for item in items:
        yield from _item(Children(item), reexport=reexport)


def _item(item: Children, *, reexport: bool) -> Iterator[Finding]:
    yield from _require_text(item, "Description", "name of produce")
    sequence = item.first("SequenceNumeric")
    if sequence is not None and not (sequence.text or "").strip().isdigit():
        yield _severe(sequence, "line item number (SequenceNumeric) is not a whole number")
    if not item.text("ScientificName"):
        yield _severe(item.element, "botanical name of plants (ScientificName) is missing")
    notes = _notes_by_subject(item.all("AdditionalInformationSPSNote"))
    if not any(item.has(q) for q in _QUANTITIES) and "OQV" not in notes:
        yield _severe(item.element, "quantity declared is missing (a weight, a volume, or OQV/OQU)")
    if "OQV" in notes and "OQU" not in notes:
        yield _warning(notes["OQV"], "other quantity (OQV) without its unit (OQU)")
    if not item.has("PhysicalSPSPackage") and "OPTND" not in notes:
        yield _warning(item.element, "number and description of packages is missing")
    if not item.has("OriginSPSCountry"):
        yield _severe(item.element, "place of origin (OriginSPSCountry) is missing")
    for process in item.all("AppliedSPSProcess"):
        yield from _treatment(Children(process))
    if reexport:
        yield from _reexport(item.element, notes)


def _treatment(process: Children) -> Iterator[Finding]:
    kinds = {
        Children(ch).text("Description") for ch in process.all("ApplicableSPSProcessCharacteristic")
    }
    if "TTL1" not in kinds and "TTFT" not in kinds:
        yield _warning(process.element, "treatment without a type (TTL1) or full text (TTFT)")


def _reexport(item: _E, notes: dict[str, _E]) -> Iterator[Finding]:
    for subject, what in (
        ("RPCCO", "country of origin of the re-exported goods"),
        ("RPCRF", "reference of the original phytosanitary certificate"),
    ):
        if subject not in notes:
            yield _severe(item, f"re-export certificate without {subject} ({what})")
    for first, second, what in _REEXPORT_PAIRS:
        ticks = [
            Children(notes[s]).text("Content") == "true" for s in (first, second) if s in notes
        ]
        if sum(ticks) != 1:
            yield _warning(item, f"re-export box '{what}': tick exactly one of {first}, {second}")


def _unreadable_dates(root: _E) -> Iterator[Finding]:
    """Every date-time must be ISO 8601: the model, and the importing NPPO, read them."""
    for el in root.iter(_DATETIME_TAGS):
        try:
            parse_datetime(el.text or "")
        except ValueError:
            parent = el.getparent()
            what = "date" if parent is None else etree.QName(parent).localname
            yield _severe(el, f"{what} is not an ISO 8601 date-time: {(el.text or '')!r}")


def _notes_by_subject(notes: list[_E]) -> dict[str, _E]:
    """Notes by IPPC tag acronym; the first note of a subject wins."""
    by_subject: dict[str, _E] = {}
    for note in notes:
        by_subject.setdefault(child_text(note, "Subject"), note)
    return by_subject


def _require_text(parent: Children, local: str, what: str) -> Iterator[Finding]:
    el = parent.first(local)
    # An absent required element is the schema layer's finding; avoid saying it twice.
    if el is not None and not (el.text or "").strip():
        yield _severe(el, f"{what} is empty")


def _severe(el: _E, message: str) -> Finding:
    return finding_at(el, Level.SEVERE, Area.MANDATORY, message)


def _warning(el: _E, message: str) -> Finding:
    return finding_at(el, Level.WARNING, Area.MANDATORY, message)
