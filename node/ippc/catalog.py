"""Which operations we speak: each request class, by its operation name, and its response."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import TypeAlias

from node.ippc import lookups as lk
from node.ippc import operations as op

HubRequest: TypeAlias = (
    op.DeliverEnvelope
    | op.ValidateAndDeliverEnvelope
    | op.DeliverCountryResponseEnvelope
    | op.DeliverPhytoEnvelope
    | op.GetEnvelopeTrackingInfo
    | op.GetUnderDeliveryEnvelope
    | op.SetTrackingInfoUpdate
    | op.GetImportEnvelopeHeaders
    | op.PULLImportEnvelope
    | op.PULLSingleImportEnvelope
    | op.AcknowledgeEnvelopeReceipt
    | op.AdvancedAcknowledgeEnvelopeReceipt
    | op.AcknowledgeFailedEnvelopeReceipt
    | op.GetActiveNppos
    | op.GetProfile
    | op.GetAvailableChannels
    | op.ValidatePhytoXML
    | lk.GetAdditionalDeclarations
    | lk.GetConditions
    | lk.GetIntendedUses
    | lk.GetMeanOfTransports
    | lk.GetPackageTypes
    | lk.GetPesticides
    | lk.GetProductDescriptions
    | lk.GetStatements
    | lk.GetTreatmentTypes
    | lk.GetUnitMeasures
)

HubResponse: TypeAlias = (
    op.DeliverEnvelopeResponse
    | op.ValidateAndDeliverEnvelopeResponse
    | op.DeliverCountryResponseEnvelopeResponse
    | op.DeliverPhytoEnvelopeResponse
    | op.GetEnvelopeTrackingInfoResponse
    | op.GetUnderDeliveryEnvelopeResponse
    | op.SetTrackingInfoUpdateResponse
    | op.GetImportEnvelopeHeadersResponse
    | op.PULLImportEnvelopeResponse
    | op.PULLSingleImportEnvelopeResponse
    | op.AcknowledgeEnvelopeReceiptResponse
    | op.AdvancedAcknowledgeEnvelopeReceiptResponse
    | op.AcknowledgeFailedEnvelopeReceiptResponse
    | op.GetActiveNpposResponse
    | op.GetProfileResponse
    | op.GetAvailableChannelsResponse
    | op.ValidatePhytoXMLResponse
    | lk.GetAdditionalDeclarationsResponse
    | lk.GetConditionsResponse
    | lk.GetIntendedUsesResponse
    | lk.GetMeanOfTransportsResponse
    | lk.GetPackageTypesResponse
    | lk.GetPesticidesResponse
    | lk.GetProductDescriptionsResponse
    | lk.GetStatementsResponse
    | lk.GetTreatmentTypesResponse
    | lk.GetUnitMeasuresResponse
)


def _pairs() -> dict[type, type]:
    pairs = {}
    for request in typing.get_args(HubRequest):
        module = lk if request.__module__ == lk.__name__ else op
        pairs[request] = getattr(module, request.__name__ + "Response")
    return pairs


RESPONSE_OF: Mapping[type, type] = _pairs()
"""The response class of each request class."""

REQUESTS: Mapping[str, type] = {r.__name__: r for r in RESPONSE_OF}
"""Each request class by its operation (and body element) name."""

RESPONSES: Mapping[str, type] = {r.__name__: r for r in RESPONSE_OF.values()}
"""Each response class by its body element name."""


def operation_name(request: HubRequest) -> str:
    """The operation `request` calls (its body element's local name)."""
    return type(request).__name__
