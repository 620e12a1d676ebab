"""The envelope is bound to its document: what the header says must be what the ePhyto says.

A receiver lists, routes and acts on a certificate by its header (number, type, status,
sender), so a header that says other than the document it carries would make the node
show one certificate and hold another: a withdrawal that is not one, a certificate under
a number it does not bear, or one NPPO's certificate sent as another's. The receiver
checks the binding once the payload has been judged and before anything is stored
(docs/protocol.md, Part E, "Receiving"; vectors in tests/vectors/binding-v1.json).

Pure: values in, nothing or `DocumentMismatchError` out.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from node.certificate.xml_parse import Routing
from node.envelope.errors import EnvelopeError
from node.envelope.header import EnvelopeHeader

# Longer values are cut: a document's number is the sender's text, and only its start
# is needed to see which certificate it was.
MAX_SHOWN_CHARS = 64
# Cc (C0, DEL, C1), Cf (bidirectional overrides, zero-width), Zl, Zp (U+2028, U+2029),
# Cs: a value written into a log line or a problem detail must stay one honest line.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One header field that differs from the document: its name and both values."""

    field: str  # the header member: certificate_number, certificate_type, ... or from
    header: str
    document: str


class DocumentMismatchError(EnvelopeError):
    """Authentic and addressed to us, but its header says other than its document (422)."""

    def __init__(self, mismatches: tuple[Mismatch, ...]) -> None:
        self.mismatches = mismatches
        super().__init__(
            "the envelope header does not match its document: "
            + "; ".join(
                f"{m.field} is {shown(m.header)} in the header but {shown(m.document)}"
                f" in the document ({SOURCES[m.field]})"
                for m in mismatches
            )
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """The header members that differ, in the order they are checked."""
        return tuple(m.field for m in self.mismatches)


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """What an envelope says about the document it carries, and who sends it."""

    sender: str
    certificate_number: str
    certificate_type: str
    certificate_status: str

    @classmethod
    def of(cls, header: EnvelopeHeader) -> Claim:
        """The claim of a sealed envelope's (verified) header."""
        return cls(
            sender=header.from_country,
            certificate_number=header.certificate_number,
            certificate_type=header.certificate_type,
            certificate_status=header.certificate_status,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentFields:
    """What the document says of itself: the values a header must repeat."""

    number: str
    type_code: str
    status_code: str
    issuing_country: str

    @classmethod
    def of(cls, routing: Routing) -> DocumentFields:
        """The fields of a readable document (`Routing.of(certificate)` for a model)."""
        return cls(
            number=routing.number,
            type_code=routing.type_code,
            status_code=routing.status_code,
            # An 851 is issued by the exporting country's NPPO, a 657 by the re-exporting
            # country's, and D17A puts each in ExportSPSCountry: a 657's goods came from
            # elsewhere, which it says in RPCCO (country of origin) and RPCRF (original
            # certificate), not in ExportSPSCountry. Our API sends only certificates whose
            # ExportSPSCountry is the node's own country, 851 and 657 alike.
            issuing_country=routing.export_country,
        )


# Header member -> where the document says it (rsm:SPSCertificate/...).
SOURCES = {
    "certificate_number": "rsm:SPSExchangedDocument/ram:ID",
    "certificate_type": "rsm:SPSExchangedDocument/ram:TypeCode",
    "certificate_status": "rsm:SPSExchangedDocument/ram:StatusCode",
    "from": "rsm:SPSConsignment/ram:ExportSPSCountry/ram:ID",
}


def check_binding(claim: Claim, document: DocumentFields) -> None:
    """Raise DocumentMismatchError naming every field in which `claim` is not `document`.

    Values are compared as the exact strings read (no trimming, no case folding): a
    sender copies them from its own document, so any difference is a different value.
    """
    pairs = (
        ("certificate_number", claim.certificate_number, document.number),
        ("certificate_type", claim.certificate_type, document.type_code),
        ("certificate_status", claim.certificate_status, document.status_code),
        ("from", claim.sender, document.issuing_country),
    )
    mismatches = tuple(Mismatch(name, said, is_) for name, said, is_ in pairs if said != is_)
    if mismatches:
        raise DocumentMismatchError(mismatches)


def shown(value: str) -> str:
    """A value for an error message: invisible and line-breaking characters dropped, cut
    short, quoted."""
    head = value[: MAX_SHOWN_CHARS * 4]  # bound the work on a huge value before cleaning
    text = "".join(ch for ch in head if unicodedata.category(ch) not in _HIDDEN)
    if len(text) > MAX_SHOWN_CHARS or len(head) < len(value):
        text = text[: MAX_SHOWN_CHARS - 3] + "..."
    return repr(text)
