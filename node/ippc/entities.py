"""The hub's entities as the DeliveryService WSDL defines them (namespace HUB.Entities).

Python names are the WSDL's in snake case; `xml` metadata keeps the exact wire names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum

from node.ippc.codec import XmlTree, attribute, element
from node.ippc.names import HUB, SPS_ACKNOWLEDGEMENT, SPS_CERTIFICATE, UNQUALIFIED


class TrackingState(StrEnum):
    """The WSDL's HUBTrackingInfo enumeration: where an envelope is on its way.

    The header's HUBTrackingInfo element is typed xs:string, so a header carries these
    as plain strings; compare with these members.
    """

    PENDING_DELIVERY = "PendingDelivery"
    DELIVERED = "Delivered"
    FAILED_DELIVERY = "FailedDelivery"
    ENVELOPE_NOT_EXISTS = "EnvelopeNotExists"
    DELIVERED_WITH_WARNINGS = "DeliveredWithWarnings"
    DELIVERED_NOT_READABLE = "DeliveredNotReadable"


@dataclass(frozen=True, slots=True)
class EnvelopeForwarding:
    """A hop of an envelope forwarded to another channel (hub), with that hub's number."""

    code: str = field(metadata=element(HUB, "Code"))
    hub_delivery_number: str | None = field(
        default=None, metadata=element(HUB, "HubDeliveryNumber")
    )


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """Who sends what to whom, and, once the hub has it, its number and tracking state.

    `hub_delivery_number` is the hub's tracking number: the `hubTrackingNumber` every
    follow-up operation takes. `hub_tracking_info` holds a TrackingState value.
    """

    from_: str = field(metadata=element(HUB, "From"))
    to: str = field(metadata=element(HUB, "To"))
    certificate_type: int = field(metadata=element(HUB, "CertificateType"))
    certificate_status: int = field(metadata=element(HUB, "CertificateStatus"))
    nppo_certificate_number: str = field(metadata=element(HUB, "NPPOCertificateNumber"))
    hub_delivery_number: str | None = field(
        default=None, metadata=element(HUB, "hubDeliveryNumber")
    )
    hub_tracking_info: str | None = field(default=None, metadata=element(HUB, "HUBTrackingInfo"))
    hub_delivery_error_message: str | None = field(
        default=None, metadata=element(HUB, "hubDeliveryErrorMessage")
    )
    forwardings: tuple[EnvelopeForwarding, ...] = field(
        default=(), metadata=element(HUB, "Forwardings", item="EnvelopeForwarding")
    )


@dataclass(frozen=True, slots=True)
class Envelope(EnvelopeHeader):
    """A header and its payload; the WSDL's Envelope extends EnvelopeHeader the same way.

    `content` is opaque text: a sealed envelope (base64) between nodes, or ePhyto XML
    as a string for NPPOs that send it in clear.
    """

    content: str | None = field(default=None, metadata=element(HUB, "Content"))

    @classmethod
    def of(cls, header: EnvelopeHeader, content: str | None) -> Envelope:
        """The envelope carrying `content` under `header`."""
        values = {f.name: getattr(header, f.name) for f in fields(EnvelopeHeader)}
        return cls(**values, content=content)

    @property
    def header(self) -> EnvelopeHeader:
        """The header alone, without the content."""
        return EnvelopeHeader(**{f.name: getattr(self, f.name) for f in fields(EnvelopeHeader)})


@dataclass(frozen=True, slots=True)
class CountryResponseEnvelope(EnvelopeHeader):
    """A header and the importing country's answer to a certificate, as a typed tree.

    `sps_acknowledgement` is an SPSAcknowledgement document (UN/CEFACT, namespace
    SPSAcknowledgement:17), held whole as XML text.
    """

    sps_acknowledgement: XmlTree | None = field(
        default=None, metadata=element(SPS_ACKNOWLEDGEMENT, "SPSAcknowledgement")
    )

    @property
    def header(self) -> EnvelopeHeader:
        """The header alone."""
        return EnvelopeHeader(**{f.name: getattr(self, f.name) for f in fields(EnvelopeHeader)})


@dataclass(frozen=True, slots=True)
class EPhytoEnvelope(EnvelopeHeader):
    """A header and an ePhyto in clear as a typed tree (the WSDL's ePhytoEnvelope).

    `sps_certificate` is the SPSCertificate document, held whole as XML text.
    """

    sps_certificate: XmlTree | None = field(
        default=None, metadata=element(SPS_CERTIFICATE, "SPSCertificate")
    )

    @property
    def header(self) -> EnvelopeHeader:
        """The header alone."""
        return EnvelopeHeader(**{f.name: getattr(self, f.name) for f in fields(EnvelopeHeader)})


# --- NPPOs (GetActiveNppos, GetProfile) ---------------------------------------------


class ChannelRuleType(StrEnum):
    FORWARD = "FORWARD"
    DELEGATE = "DELEGATE"


class ChannelDirection(StrEnum):
    OUT = "OUT"
    INC = "INC"


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """A certificate type or status: a number (851, 657; 70, 40...) and its name."""

    number: int = field(metadata=attribute("number"))
    value: str | None = field(default=None, metadata=attribute("value"))


@dataclass(frozen=True, slots=True)
class AllowedDocument:
    """A kind of document an NPPO exchanges through the hub."""

    active: bool = field(metadata=attribute("active"))
    certificate_type: DocumentKind | None = field(
        default=None, metadata=element(UNQUALIFIED, "certificateType")
    )
    certificate_status: DocumentKind | None = field(
        default=None, metadata=element(UNQUALIFIED, "certificateStatus")
    )


@dataclass(frozen=True, slots=True)
class SigningCertificate:
    """The certificate an NPPO signs with: its distinguished name and the certificate text."""

    dn: str | None = field(default=None, metadata=element(UNQUALIFIED, "dn"))
    certificate: str | None = field(default=None, metadata=element(UNQUALIFIED, "certificate"))


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """A routing rule of an NPPO towards another channel (all attributes on the wire)."""

    id: int = field(metadata=attribute("id"))
    active: bool = field(metadata=attribute("active"))
    certificate_type: int = field(metadata=attribute("certificateType"))
    certificate_status: int = field(metadata=attribute("certificateStatus"))
    rule_type: ChannelRuleType | None = field(default=None, metadata=attribute("ruleType"))
    country_code: str | None = field(default=None, metadata=attribute("countryCode"))
    direction: ChannelDirection | None = field(default=None, metadata=attribute("direction"))


@dataclass(frozen=True, slots=True)
class Nppo:
    """An NPPO on the hub. Receive and Send are strings in the WSDL (the hub says "true")."""

    country: str | None = field(default=None, metadata=element(HUB, "Country"))
    receive: str | None = field(default=None, metadata=element(HUB, "Receive"))
    send: str | None = field(default=None, metadata=element(HUB, "Send"))
    allowed_documents: tuple[AllowedDocument, ...] = field(
        default=(), metadata=element(HUB, "AllowedDocument")
    )
    signature: SigningCertificate | None = field(default=None, metadata=element(HUB, "Signature"))
    channel_rules: tuple[ChannelRule, ...] = field(
        default=(), metadata=element(HUB, "ChannelRules", item="ChannelRule")
    )


@dataclass(frozen=True, slots=True)
class Channel:
    """Another hub (channel) this hub exchanges with (GetAvailableChannels)."""

    receive: bool = field(metadata=attribute("Receive"))
    send: bool = field(metadata=attribute("Send"))
    code: str | None = field(default=None, metadata=element(HUB, "Code"))
    name: str | None = field(default=None, metadata=element(HUB, "Name"))


# --- ValidatePhytoXML -----------------------------------------------------------------


class ValidationArea(StrEnum):
    MANDATORY_ELEMENTS = "MandatoryElements"
    MAPPING = "Mapping"
    SCHEMA = "Schema"


class ValidationLevel(StrEnum):
    SEVERE = "SEVERE"
    WARNING = "WARNING"
    INFO = "INFO"


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """One finding on an ePhyto: its area, the field (an XPath), its level and message."""

    area: ValidationArea | None = field(default=None, metadata=element(UNQUALIFIED, "area"))
    field_: str | None = field(default=None, metadata=element(UNQUALIFIED, "field"))
    level: ValidationLevel | None = field(default=None, metadata=element(UNQUALIFIED, "level"))
    msg: str | None = field(default=None, metadata=element(UNQUALIFIED, "msg"))
