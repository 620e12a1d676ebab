"""The importer's answer as the IPPC Hub carries it: a UN/CEFACT SPSAcknowledgement.

Between two nodes an answer travels sealed, as an `ephyto-response` document
(node.envelope.response). An NPPO outside the directory (on GeNS or its own system)
reads and writes only what the IPPC Hub carries: `DeliverCountryResponseEnvelope`
with an SPSAcknowledgement (D17A) document. This module converts one into the other
(docs/protocol.md, Part G, "Answers through the hub"):

- `39` (approved) is `accepted`; `41` (rejected) is `rejected`, its reason the
  document's `ReasonInformation`;
- SPSAcknowledgement has no status for "correct it and send it again", so a
  correction request is a `41` whose reason begins `Correction requested: ` (what a
  person reading it at a GeNS desk understands), and is read back as one;
- the certificate answered is `ReferenceSPSReferencedDocument/ID`, with its type
  (851 or 657) as `TypeCode`.

Pure core: values in, bytes out; bytes in, an Acknowledgement or
MalformedAcknowledgementError out. Hostile XML is refused by node.hostile_xml first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from node.certificate.xml_build import format_datetime
from node.certificate.xmlns import RAM, UDT
from node.envelope.errors import MalformedError
from node.envelope.header import MAX_CERTIFICATE_NUMBER_CHARS
from node.envelope.response import MAX_TEXT_CHARS, Decision
from node.errors import UnsafeXmlError
from node.hostile_xml import XmlLimits, parse_any

ACK_NS = "urn:un:unece:uncefact:data:standard:SPSAcknowledgement:17"
ROOT_TAG = f"{{{ACK_NS}}}SPSAcknowledgement"
APPROVED = "39"
REJECTED = "41"
CORRECTION_PREFIX = "Correction requested: "
# An acknowledgement is a few hundred bytes; a generous cap still refuses a flood.
MAX_ACKNOWLEDGEMENT_BYTES = 64 * 1024
_LIMITS = XmlLimits(max_bytes=MAX_ACKNOWLEDGEMENT_BYTES, max_depth=8, max_elements=200)
_NSMAP = {"rsm": ACK_NS, "ram": RAM, "udt": UDT}
_SPACE = re.compile(r"\s+")


class MalformedAcknowledgementError(MalformedError):
    """Bytes that are not an SPSAcknowledgement this node can read as an answer."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """An importer's answer to one certificate, as SPSAcknowledgement says it."""

    certificate_number: str
    certificate_type: str  # "851" or "657"
    decision: Decision
    issued_at: datetime
    text: str | None = None  # the reason of a rejection, or the correction requested


def acknowledgement_xml(answer: Acknowledgement) -> bytes:
    """The SPSAcknowledgement document of `answer` (UTF-8, with an XML declaration)."""
    return bytes(etree.tostring(_tree(answer), xml_declaration=True, encoding="UTF-8"))


def acknowledgement_text(answer: Acknowledgement) -> str:
    """The same document as text without a declaration (how a SOAP body embeds it)."""
    return str(etree.tostring(_tree(answer), encoding="unicode"))


def _tree(answer: Acknowledgement) -> etree._Element:
    root = etree.Element(ROOT_TAG, nsmap=_NSMAP)
    document = etree.SubElement(root, f"{{{ACK_NS}}}SPSAcknowledgementDocument")
    issued = etree.SubElement(document, f"{{{RAM}}}IssueDateTime")
    etree.SubElement(issued, f"{{{UDT}}}DateTimeString").text = format_datetime(
        answer.issued_at.astimezone(UTC).replace(microsecond=0)
    )
    accepted = answer.decision is Decision.ACCEPTED
    etree.SubElement(document, f"{{{RAM}}}StatusCode").text = APPROVED if accepted else REJECTED
    if answer.text is not None:
        prefix = CORRECTION_PREFIX if answer.decision is Decision.CORRECTION_REQUESTED else ""
        etree.SubElement(document, f"{{{RAM}}}ReasonInformation").text = prefix + answer.text
    reference = etree.SubElement(document, f"{{{RAM}}}ReferenceSPSReferencedDocument")
    etree.SubElement(reference, f"{{{RAM}}}TypeCode").text = answer.certificate_type
    etree.SubElement(reference, f"{{{RAM}}}ID").text = answer.certificate_number
    return root


def is_acknowledgement(data: bytes) -> bool:
    """Whether `data` looks like an SPSAcknowledgement (cheaply: its namespace is there).

    Tells an answer from a certificate among the plain XML a hub hands over; parsing
    then decides."""
    return ACK_NS.encode("ascii") in data[:4096]


def parse_acknowledgement(data: bytes) -> Acknowledgement:
    """The answer an SPSAcknowledgement document gives; raises
    MalformedAcknowledgementError saying what is wrong (hostile XML included)."""
    try:
        root = parse_any(data, _LIMITS)
    except UnsafeXmlError as e:
        raise MalformedAcknowledgementError(f"not a readable SPSAcknowledgement: {e}") from None
    if root.tag != ROOT_TAG:
        raise MalformedAcknowledgementError(
            f"the root element is {_local(root.tag)}, not SPSAcknowledgement"
        )
    document = _one(root, f"{{{ACK_NS}}}SPSAcknowledgementDocument", "SPSAcknowledgementDocument")
    status = _text(_one(document, f"{{{RAM}}}StatusCode", "StatusCode"), "StatusCode")
    reasons = [
        _SPACE.sub(" ", "".join(str(t) for t in el.itertext())).strip()
        for el in document.iterchildren(f"{{{RAM}}}ReasonInformation")
    ]
    reason = " ".join(r for r in reasons if r) or None
    if status == APPROVED:
        decision, text = Decision.ACCEPTED, None
    elif status == REJECTED and reason is not None and reason.startswith(CORRECTION_PREFIX):
        decision = Decision.CORRECTION_REQUESTED
        text = reason.removeprefix(CORRECTION_PREFIX).strip() or "no text given"
    elif status == REJECTED:
        decision, text = Decision.REJECTED, reason or "no reason given"
    else:
        raise MalformedAcknowledgementError(
            f"StatusCode {status[:20]!r} is neither {APPROVED} (approved) nor {REJECTED}"
            " (rejected): no answer this node records"
        )
    reference = _one(
        document, f"{{{RAM}}}ReferenceSPSReferencedDocument", "ReferenceSPSReferencedDocument"
    )
    number = _text(_one(reference, f"{{{RAM}}}ID", "ReferenceSPSReferencedDocument/ID"), "ID")
    if len(number) > MAX_CERTIFICATE_NUMBER_CHARS or not number.isprintable():
        raise MalformedAcknowledgementError(
            f"the certificate number must be 1 to {MAX_CERTIFICATE_NUMBER_CHARS} printable"
            " characters"
        )
    type_code = reference.find(f"{{{RAM}}}TypeCode")
    certificate_type = "" if type_code is None else (type_code.text or "").strip()
    issued = _one(document, f"{{{RAM}}}IssueDateTime", "IssueDateTime")
    stamp = next(issued.iterchildren(f"{{{UDT}}}DateTimeString", f"{{{UDT}}}DateTime"), issued)
    try:
        issued_at = datetime.fromisoformat((stamp.text or "").strip())
    except ValueError:
        raise MalformedAcknowledgementError(
            f"IssueDateTime {(stamp.text or '')[:40]!r} is not an ISO 8601 date-time"
        ) from None
    if issued_at.tzinfo is None:
        issued_at = issued_at.replace(tzinfo=UTC)  # no offset given: read as UTC
    return Acknowledgement(
        certificate_number=number,
        certificate_type=certificate_type,
        decision=decision,
        issued_at=issued_at.astimezone(UTC),
        text=None if text is None else text[:MAX_TEXT_CHARS],
    )


def _one(parent: etree._Element, tag: str, name: str) -> etree._Element:
    found = parent.find(tag)
    if found is None:
        raise MalformedAcknowledgementError(f"{name} is missing")
    return found


def _text(element: etree._Element, name: str) -> str:
    text = (element.text or "").strip()
    if not text:
        raise MalformedAcknowledgementError(f"{name} is empty")
    return text


def _local(tag: object) -> str:
    return str(tag).rpartition("}")[2][:60]
