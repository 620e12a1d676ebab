"""What the hub does for each DeliveryService operation, for an authenticated caller.

The caller is the NPPO the TLS layer and the directory say it is (node.hub.web); here
every operation is held to it: an envelope is sent only as the caller (`From`), to an
active NPPO of the directory; inboxes, pulls and acknowledgements are only the caller's
own, tracking only for the sender (the store enforces these, answering "not found" for
another NPPO's envelope so that existence does not leak).

Raises RefusedError for a request the hub will not carry out, and the errors of
node.hub.records and node.directory; node.hub.web turns each into a SOAP Fault.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from node.certificate.findings import Finding, Level
from node.certificate.validate import Report
from node.clock import Clock
from node.directory import Directory, DirectoryError, NppoEntry
from node.errors import InputError
from node.hub import records
from node.hub.accounts import AccountPolicy
from node.hub.codelists import LOOKUPS, CodeListAnswers
from node.hub.store import HubStore
from node.ippc import (
    REQUESTS,
    AcknowledgeEnvelopeReceipt,
    AcknowledgeEnvelopeReceiptResponse,
    AcknowledgeFailedEnvelopeReceipt,
    AcknowledgeFailedEnvelopeReceiptResponse,
    AdvancedAcknowledgeEnvelopeReceipt,
    AdvancedAcknowledgeEnvelopeReceiptResponse,
    DeliverCountryResponseEnvelope,
    DeliverCountryResponseEnvelopeResponse,
    DeliverEnvelope,
    DeliverEnvelopeResponse,
    DeliverPhytoEnvelope,
    DeliverPhytoEnvelopeResponse,
    Envelope,
    EnvelopeHeader,
    GetActiveNppos,
    GetActiveNpposResponse,
    GetAvailableChannels,
    GetAvailableChannelsResponse,
    GetEnvelopeTrackingInfo,
    GetEnvelopeTrackingInfoResponse,
    GetImportEnvelopeHeaders,
    GetImportEnvelopeHeadersResponse,
    GetProfile,
    GetProfileResponse,
    GetUnderDeliveryEnvelope,
    GetUnderDeliveryEnvelopeResponse,
    HubRequest,
    HubResponse,
    Nppo,
    PULLImportEnvelope,
    PULLImportEnvelopeResponse,
    PULLSingleImportEnvelope,
    PULLSingleImportEnvelopeResponse,
    SetTrackingInfoUpdate,
    ValidateAndDeliverEnvelope,
    ValidateAndDeliverEnvelopeResponse,
    ValidatePhytoXML,
    ValidatePhytoXMLResponse,
    ValidationArea,
    ValidationLevel,
    ValidationResult,
)

# PULLImportEnvelope answers with as many waiting envelopes as fit in this much content,
# so the answer stays well inside what a SOAP client (ours: 24 MiB) reads; call again
# for the rest. One envelope always goes, whatever its size.
PULL_ALL_BUDGET = 16 * 1024 * 1024
PULL_ALL_MAX = 100
# GetImportEnvelopeHeaders lists the oldest this many: a receiver that fell far behind
# still gets an answer it can read, and the rest on its next call.
HEADERS_MAX = 1000
MAX_FINDINGS_SHOWN = 5

Validate = Callable[[bytes], Awaitable[Report]]

NOT_SERVED = frozenset({"SetTrackingInfoUpdate"})
"""Operations of the contract the hub reads but refuses (a Client fault): hub to hub only."""


def served_operations() -> frozenset[str]:
    """The operations of the contract this hub carries out."""
    return frozenset(REQUESTS) - NOT_SERVED


class RefusedError(InputError):
    """The request is well formed but the hub will not carry it out (a Client fault)."""


class HubRelay:
    """The operations of the hub on its store, for one caller at a time."""

    def __init__(
        self,
        store: HubStore,
        *,
        clock: Clock,
        validate: Validate,
        code_lists: CodeListAnswers,
        default_policy: AccountPolicy | None,
        delivered: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._delivered = delivered
        self._clock = clock
        self._validate = validate
        self._code_lists = code_lists
        self._default_policy = default_policy

    async def handle(
        self, caller: NppoEntry, directory: Directory, request: HubRequest
    ) -> HubResponse:
        """The response to `request` from `caller`, judged by `directory`."""
        now = self._clock.now()
        me = caller.country
        store = self._store
        match request:
            case DeliverEnvelope(env=env):
                return DeliverEnvelopeResponse(await self._deliver(me, directory, env, now))
            case ValidateAndDeliverEnvelope(envelope=env):
                warnings = await self._check_ephyto(env.content)
                header = await self._deliver(me, directory, env, now)
                if warnings:
                    header = _with_message(header, warnings)
                return ValidateAndDeliverEnvelopeResponse(header)
            case DeliverCountryResponseEnvelope(envelope=env):
                # Relayed as any envelope: the receiver pulls the SPSAcknowledgement XML
                # as Content and tells it from a certificate by its root element.
                reply = _tree(env.sps_acknowledgement, "SPSAcknowledgement")
                header = await self._deliver(me, directory, Envelope.of(env.header, reply), now)
                return DeliverCountryResponseEnvelopeResponse(header)
            case DeliverPhytoEnvelope(envelope=env):
                ephyto = _tree(env.sps_certificate, "SPSCertificate")
                warnings = await self._check_ephyto(ephyto)
                header = await self._deliver(me, directory, Envelope.of(env.header, ephyto), now)
                if warnings:
                    header = _with_message(header, warnings)
                return DeliverPhytoEnvelopeResponse(header)
            case GetEnvelopeTrackingInfo(hub_tracking_number=tn):
                header = _header(await store.tracking(me, tn))
                return GetEnvelopeTrackingInfoResponse(header)
            case GetUnderDeliveryEnvelope():
                sent = await store.under_delivery(me)
                return GetUnderDeliveryEnvelopeResponse(tuple(_header(h) for h in sent))
            case SetTrackingInfoUpdate():
                raise RefusedError(
                    "SetTrackingInfoUpdate is for hubs forwarding to each other; this hub "
                    "exchanges with no other hub"
                )
            case GetImportEnvelopeHeaders(country_code=sender):
                waiting = await store.import_headers(me, limit=HEADERS_MAX)
                return GetImportEnvelopeHeadersResponse(
                    tuple(_header(h) for h in waiting if sender in (None, "", h.sender))
                )
            case PULLImportEnvelope():
                envelopes = await store.pull_all(me, limit=PULL_ALL_MAX)
                return PULLImportEnvelopeResponse(tuple(_envelope(e) for e in _budget(envelopes)))
            case PULLSingleImportEnvelope(hub_tracking_number=tn):
                return PULLSingleImportEnvelopeResponse(_envelope(await store.pull(me, tn)))
            case AcknowledgeEnvelopeReceipt(hub_tracking_number=tn):
                await self._acknowledge(me, tn, now, "Delivered", None)
                return AcknowledgeEnvelopeReceiptResponse()
            case AdvancedAcknowledgeEnvelopeReceipt(hub_tracking_number=tn, warning_message=m):
                state = await self._acknowledge(me, tn, now, "DeliveredWithWarnings", m)
                return AdvancedAcknowledgeEnvelopeReceiptResponse(state)
            case AcknowledgeFailedEnvelopeReceipt(hub_tracking_number=tn, message=m):
                state = await self._acknowledge(me, tn, now, "Failed", m)
                return AcknowledgeFailedEnvelopeReceiptResponse(state)
            case GetActiveNppos():
                active = (n for n in directory.nppos if n.status == "active")
                return GetActiveNpposResponse(tuple(_nppo(n) for n in active))
            case GetProfile():
                return GetProfileResponse(_nppo(caller))
            case GetAvailableChannels():
                return GetAvailableChannelsResponse(())
            case ValidatePhytoXML(e_phyto_xml=xml):
                report = await self._validate(xml.encode("utf-8"))
                return ValidatePhytoXMLResponse(tuple(_result(f) for f in report.findings))
            case _ if isinstance(request, LOOKUPS):
                answer: HubResponse = self._code_lists.answer(request)
                return answer
        raise RefusedError(f"operation {type(request).__name__} is not served here")

    async def _deliver(
        self, me: str, directory: Directory, env: Envelope, now: datetime
    ) -> EnvelopeHeader:
        if env.from_ != me:
            raise RefusedError(
                f"From is {env.from_!r:.10} but the TLS client is {me}: an NPPO sends only"
                " as itself"
            )
        try:
            directory.active_nppo(env.to)
        except DirectoryError:
            raise RefusedError(
                f"To {env.to!r:.10} is not an active NPPO in directory version {directory.version}"
            ) from None
        content = (env.content or "").encode("utf-8")

        async def deliver() -> tuple[records.Delivery, records.EnvelopeHeader]:
            return await self._store.deliver_tracked(
                me, env.to, env.certificate_type, env.certificate_status,
                env.nppo_certificate_number, content, now,
            )  # fmt: skip

        try:
            delivery, header = await deliver()
        except records.UnknownNppoError:
            if not await self._open_default_accounts(now, me, env.to):
                raise
            delivery, header = await deliver()
        if not delivery.duplicate:
            self._delivered()
        return _header(header)

    async def _acknowledge(
        self, me: str, tn: str, now: datetime, outcome: records.Outcome, message: str | None
    ) -> str:
        try:
            ack = await self._store.acknowledge(me, tn, now, outcome, message)
        except records.UnknownNppoError:  # the receiver pays and has no account yet
            if not await self._open_default_accounts(now, me):
                raise
            ack = await self._store.acknowledge(me, tn, now, outcome, message)
        return ack.state

    async def _open_default_accounts(self, now: datetime, *nppos: str) -> bool:
        """Open the hub-wide default account for those without one; False if there is none.

        Only NPPOs the directory lists as active get here (the caller, and a recipient
        checked in `_deliver`), so the default never opens an account for a stranger.
        """
        if self._default_policy is None:
            return False
        for nppo in nppos:
            await self._store.open_account(nppo, self._default_policy, now)
        return True

    async def _check_ephyto(self, content: str | None) -> str | None:
        """Refuse invalid ePhyto XML with its findings; the warnings of a valid one, if any."""
        report = await self._validate((content or "").encode("utf-8"))
        if not report.valid:
            severe = [f for f in report.findings if f.level is Level.SEVERE] or report.findings
            raise RefusedError(f"the ePhyto is not valid: {_summary(severe)}")
        warnings = [f for f in report.findings if f.level is Level.WARNING]
        return f"valid with warnings: {_summary(warnings)}" if warnings else None


def _tree(tree: str | None, name: str) -> str:
    # Optional in the WSDL's type, but an envelope without it carries nothing to relay.
    if not tree:
        raise RefusedError(f"the envelope carries no {name}")
    return tree


def _header(h: records.EnvelopeHeader) -> EnvelopeHeader:
    return EnvelopeHeader(
        from_=h.sender,
        to=h.recipient,
        certificate_type=h.certificate_type,
        certificate_status=h.certificate_status,
        nppo_certificate_number=h.certificate_number,
        hub_delivery_number=h.tracking_number,
        hub_tracking_info=h.state,
        hub_delivery_error_message=h.message,
    )


def _with_message(header: EnvelopeHeader, message: str) -> EnvelopeHeader:
    return replace(header, hub_delivery_error_message=message)


def _envelope(e: records.Envelope) -> Envelope:
    # Stored as the UTF-8 of the string received, so it decodes to that very string.
    return Envelope.of(_header(e.header), e.content.decode("utf-8"))


def _budget(envelopes: list[records.Envelope]) -> list[records.Envelope]:
    taken: list[records.Envelope] = []
    total = 0
    for e in envelopes:
        total += len(e.content)
        if taken and total > PULL_ALL_BUDGET:
            break
        taken.append(e)
    return taken


def _nppo(entry: NppoEntry) -> Nppo:
    # Every NPPO in the directory both sends and receives through the hub; the
    # contract carries these as the strings "true" and "false".
    return Nppo(country=entry.country, receive="true", send="true")


def _result(finding: Finding) -> ValidationResult:
    return ValidationResult(
        area=ValidationArea(finding.area.value),
        field_=finding.xpath,
        level=ValidationLevel(finding.level.value),
        msg=finding.message,
    )


def _summary(findings: Sequence[Finding]) -> str:
    shown = "; ".join(str(f) for f in findings[:MAX_FINDINGS_SHOWN])
    more = len(findings) - MAX_FINDINGS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")
