"""One request and one response dataclass per operation of the DeliveryService contract.

A request class is named as its operation and its body element; a response class adds
`Response`, as the WSDL's output elements do. Fields are TNS-qualified on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.ippc.codec import element
from node.ippc.entities import (
    Channel,
    CountryResponseEnvelope,
    Envelope,
    EnvelopeHeader,
    EPhytoEnvelope,
    Nppo,
    ValidationResult,
)
from node.ippc.names import HUB, TNS

# --- sending and following an envelope ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliverEnvelope:
    env: Envelope = field(metadata=element(TNS, "env"))


@dataclass(frozen=True, slots=True)
class DeliverEnvelopeResponse:
    result: EnvelopeHeader | None = field(
        default=None, metadata=element(TNS, "DeliverEnvelopeResult")
    )


@dataclass(frozen=True, slots=True)
class ValidateAndDeliverEnvelope:
    envelope: Envelope = field(metadata=element(TNS, "envelope"))


@dataclass(frozen=True, slots=True)
class ValidateAndDeliverEnvelopeResponse:
    result: EnvelopeHeader | None = field(
        default=None, metadata=element(TNS, "ValidateAndDeliverEnvelopeResult")
    )


@dataclass(frozen=True, slots=True)
class DeliverCountryResponseEnvelope:
    """The importing country's response to a certificate, sent like an envelope."""

    envelope: CountryResponseEnvelope = field(metadata=element(TNS, "CountryResponseEnvelope"))


@dataclass(frozen=True, slots=True)
class DeliverCountryResponseEnvelopeResponse:
    result: EnvelopeHeader | None = field(
        default=None, metadata=element(TNS, "DeliverCountryResponseEnvelopeResult")
    )


@dataclass(frozen=True, slots=True)
class DeliverPhytoEnvelope:
    """An ePhyto in clear, as a typed tree rather than as Content."""

    envelope: EPhytoEnvelope = field(metadata=element(TNS, "ePhytoEnvelope"))


@dataclass(frozen=True, slots=True)
class DeliverPhytoEnvelopeResponse:
    result: EnvelopeHeader | None = field(
        default=None, metadata=element(TNS, "DeliverPhytoEnvelopeResult")
    )


@dataclass(frozen=True, slots=True)
class GetEnvelopeTrackingInfo:
    hub_tracking_number: str = field(metadata=element(TNS, "hubTrackingNumber"))


@dataclass(frozen=True, slots=True)
class GetEnvelopeTrackingInfoResponse:
    result: EnvelopeHeader | None = field(
        default=None, metadata=element(TNS, "GetEnvelopeTrackingInfoResult")
    )


@dataclass(frozen=True, slots=True)
class GetUnderDeliveryEnvelope:
    pass


@dataclass(frozen=True, slots=True)
class GetUnderDeliveryEnvelopeResponse:
    headers: tuple[EnvelopeHeader, ...] = field(
        default=(),
        metadata=element(
            TNS,
            "GetUnderDeliveryEnvelopeResult",
            item="EnvelopeHeader",
            item_ns=HUB,
            keep_empty=True,
        ),
    )


@dataclass(frozen=True, slots=True)
class SetTrackingInfoUpdate:
    header: EnvelopeHeader = field(metadata=element(TNS, "header"))


@dataclass(frozen=True, slots=True)
class SetTrackingInfoUpdateResponse:
    pass


# --- receiving an envelope ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetImportEnvelopeHeaders:
    country_code: str | None = field(default=None, metadata=element(TNS, "countryCode"))


@dataclass(frozen=True, slots=True)
class GetImportEnvelopeHeadersResponse:
    headers: tuple[EnvelopeHeader, ...] = field(
        default=(),
        metadata=element(
            TNS,
            "GetImportEnvelopeHeadersResult",
            item="EnvelopeHeader",
            item_ns=HUB,
            keep_empty=True,
        ),
    )


@dataclass(frozen=True, slots=True)
class PULLImportEnvelope:
    pass


@dataclass(frozen=True, slots=True)
class PULLImportEnvelopeResponse:
    # "Envelopes" in the element's name, unlike every other <Operation>Result.
    envelopes: tuple[Envelope, ...] = field(
        default=(),
        metadata=element(
            TNS, "PULLImportEnvelopesResult", item="Envelope", item_ns=HUB, keep_empty=True
        ),
    )


@dataclass(frozen=True, slots=True)
class PULLSingleImportEnvelope:
    hub_tracking_number: str = field(metadata=element(TNS, "hubTrackingNumber"))


@dataclass(frozen=True, slots=True)
class PULLSingleImportEnvelopeResponse:
    result: Envelope | None = field(
        default=None, metadata=element(TNS, "PULLSingleImportEnvelopeResult")
    )


@dataclass(frozen=True, slots=True)
class AcknowledgeEnvelopeReceipt:
    hub_tracking_number: str = field(metadata=element(TNS, "hubTrackingNumber"))


@dataclass(frozen=True, slots=True)
class AcknowledgeEnvelopeReceiptResponse:
    pass


@dataclass(frozen=True, slots=True)
class AdvancedAcknowledgeEnvelopeReceipt:
    """Received, with warnings the sender will see (tracking: DeliveredWithWarnings)."""

    hub_tracking_number: str = field(metadata=element(TNS, "hubTrackingNumber"))
    warning_message: str = field(metadata=element(TNS, "warningMessage"))


@dataclass(frozen=True, slots=True)
class AdvancedAcknowledgeEnvelopeReceiptResponse:
    return_: str | None = field(default=None, metadata=element(TNS, "return"))


@dataclass(frozen=True, slots=True)
class AcknowledgeFailedEnvelopeReceipt:
    """Received but not usable, for the reason in `message` (tracking: FailedDelivery)."""

    hub_tracking_number: str = field(metadata=element(TNS, "hubTrackingNumber"))
    message: str = field(metadata=element(TNS, "message"))


@dataclass(frozen=True, slots=True)
class AcknowledgeFailedEnvelopeReceiptResponse:
    return_: str | None = field(default=None, metadata=element(TNS, "return"))


# --- who is on the hub ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetActiveNppos:
    pass


@dataclass(frozen=True, slots=True)
class GetActiveNpposResponse:
    nppos: tuple[Nppo, ...] = field(
        default=(),
        metadata=element(TNS, "GetActiveNpposResult", item="Nppo", item_ns=HUB, keep_empty=True),
    )


@dataclass(frozen=True, slots=True)
class GetProfile:
    pass


@dataclass(frozen=True, slots=True)
class GetProfileResponse:
    result: Nppo | None = field(default=None, metadata=element(TNS, "GetProfileResult"))


@dataclass(frozen=True, slots=True)
class GetAvailableChannels:
    pass


@dataclass(frozen=True, slots=True)
class GetAvailableChannelsResponse:
    channels: tuple[Channel, ...] = field(
        default=(),
        metadata=element(
            TNS, "GetAvailableChannelsResult", item="Channel", item_ns=HUB, keep_empty=True
        ),
    )


# --- validation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidatePhytoXML:
    e_phyto_xml: str = field(metadata=element(TNS, "ePhytoXML"))


@dataclass(frozen=True, slots=True)
class ValidatePhytoXMLResponse:
    results: tuple[ValidationResult, ...] = field(
        default=(), metadata=element(TNS, "ValidationResult")
    )
