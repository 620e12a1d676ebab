"""The hub client: the IPPC ePhyto Hub's SOAP contract over mutual TLS, for our hub or theirs.

Our hub is known by the TLS pins the directory lists for it (self-signed, like every
node); the IPPC Hub has a CA-issued certificate, checked against a CA file. Either way
the node presents its own TLS certificate as the client certificate: that is how a hub
knows who is calling. While the node's TLS key rotates that certificate changes halfway
through the overlap (node.identity.tls_choice), and the next call presents the new one.

Errors are translated here, once: a SOAP Fault is a HubRefusal carrying the hub's
message; anything that keeps the request from being answered is HubUnavailable.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

import aiohttp

from node.clock import Clock
from node.directory import Directory, DirectoryError
from node.errors import ConfigError, EphytoError
from node.identity.config import NodeConfig
from node.identity.tls_choice import PresentedTls, TlsIdentity
from node.ippc import (
    CONTENT_TYPE,
    SERVICE_PATH,
    AcknowledgeEnvelopeReceipt,
    AcknowledgeEnvelopeReceiptResponse,
    AcknowledgeFailedEnvelopeReceipt,
    AcknowledgeFailedEnvelopeReceiptResponse,
    AdvancedAcknowledgeEnvelopeReceipt,
    AdvancedAcknowledgeEnvelopeReceiptResponse,
    CountryResponseEnvelope,
    DeliverCountryResponseEnvelope,
    DeliverCountryResponseEnvelopeResponse,
    DeliverEnvelope,
    DeliverEnvelopeResponse,
    DeliverPhytoEnvelope,
    DeliverPhytoEnvelopeResponse,
    Envelope,
    EnvelopeHeader,
    EPhytoEnvelope,
    FaultCode,
    GetEnvelopeTrackingInfo,
    GetEnvelopeTrackingInfoResponse,
    GetImportEnvelopeHeaders,
    GetImportEnvelopeHeadersResponse,
    HubFault,
    HubRequest,
    HubResponse,
    PULLSingleImportEnvelope,
    PULLSingleImportEnvelopeResponse,
    SoapError,
    TrackingState,
    build_request,
    operation_name,
    parse_response,
    soap_action,
)
from node.transport.client import (
    error_text,
    pinned_context,
    presented_identity,
    read_at_most,
    request_body,
)

R = TypeVar("R", bound=HubResponse)

# The largest answer worth reading: a pulled envelope, base64, with SOAP around it.
MAX_RESPONSE_BYTES: Final = 24 * 1024 * 1024


class HubError(EphytoError):
    """The hub did not do what was asked."""


class HubUnavailable(HubError):
    """No answer from the hub (network, TLS, HTTP, an unreadable reply): try again later."""


class HubRefusal(HubError):
    """The hub answered with a SOAP Fault; the message is the hub's own reason.

    `fault_code` is the fault's code (SOAP 1.1 section 4.4.1): `Client` when the hub
    refuses the request itself (sending it again changes nothing), `Server` when the hub
    could not process it now.
    """

    def __init__(self, operation: str, reason: str, fault_code: str = "Server") -> None:
        super().__init__(f"the hub refused {operation}: {reason}")
        self.reason = reason
        self.fault_code = fault_code

    @property
    def refuses_the_request(self) -> bool:
        """A Client fault: the same request will be refused again."""
        return self.fault_code == FaultCode.CLIENT.value

    @property
    def envelope_not_exists(self) -> bool:
        """The hub knows no envelope of the caller's by the tracking number asked about:
        a Client fault whose reason starts `EnvelopeNotExists` (docs/hub-soap.md)."""
        return self.refuses_the_request and self.reason.startswith(
            TrackingState.ENVELOPE_NOT_EXISTS.value
        )


class HubClient:
    """One hub, as `async with HubClient(...)`.

    `pins` returns the hub's TLS pins from the current directory (our hub); `ca_file`
    instead checks a CA-issued certificate and its host name (the IPPC Hub). The client
    certificate is the identity `presented` returns at each call, or else the fixed pair
    `tls_certificate` and `tls_key`.
    """

    def __init__(
        self,
        url: str | Callable[[], str],
        *,
        tls_certificate: Path | None = None,
        tls_key: Path | None = None,
        presented: PresentedTls | None = None,
        pins: Callable[[], frozenset[str]] | None = None,
        ca_file: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        if (pins is None) == (ca_file is None):
            raise ConfigError("a hub is trusted by its directory pins or by a CA file, not both")
        self._url = url
        self._presented = presented_identity(tls_certificate, tls_key, presented)
        self._pins = pins
        self._ca_file = ca_file
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        # The last context made, with what it was made for (pins or CA file, and our
        # identity): aiohttp pools connections by context, so a new one per call would mean
        # a new TLS handshake per call, and a new one per identity means that no
        # connection made with our old certificate is used after it changes.
        self._made: tuple[frozenset[str] | Path, TlsIdentity, ssl.SSLContext] | None = None
        if ca_file is not None:
            self._context()  # a bad CA or key file fails here, not at the first call

    async def __aenter__(self) -> HubClient:
        # trust_env: HTTPS_PROXY and NO_PROXY are honoured, as an operator behind an
        # egress proxy expects (and as `ephyto study emulate` imposes its links).
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """Where the hub is now (a callable URL follows the directory; it may raise
        HubUnavailable when no hub is listed)."""
        return self._url if isinstance(self._url, str) else self._url()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, envelope: Envelope) -> str:
        """DeliverEnvelope; the hub's tracking number (its hubDeliveryNumber)."""
        answer = await self.call(DeliverEnvelope(env=envelope), DeliverEnvelopeResponse)
        if answer.result is None or not answer.result.hub_delivery_number:
            raise HubUnavailable("the hub accepted the envelope without a tracking number")
        return answer.result.hub_delivery_number

    async def deliver_country_response(self, envelope: CountryResponseEnvelope) -> str:
        """DeliverCountryResponseEnvelope; the hub's tracking number."""
        answer = await self.call(
            DeliverCountryResponseEnvelope(envelope), DeliverCountryResponseEnvelopeResponse
        )
        return _tracking_number(answer.result, "country response")

    async def deliver_phyto(self, envelope: EPhytoEnvelope) -> str:
        """DeliverPhytoEnvelope (an ePhyto in clear, as a typed tree); the tracking number."""
        answer = await self.call(DeliverPhytoEnvelope(envelope), DeliverPhytoEnvelopeResponse)
        return _tracking_number(answer.result, "ePhyto envelope")

    async def tracking(self, tracking_number: str) -> EnvelopeHeader:
        answer = await self.call(
            GetEnvelopeTrackingInfo(hub_tracking_number=tracking_number),
            GetEnvelopeTrackingInfoResponse,
        )
        if answer.result is None:
            raise HubUnavailable(f"the hub gave no tracking information for {tracking_number}")
        return answer.result

    async def import_headers(self) -> tuple[EnvelopeHeader, ...]:
        answer = await self.call(GetImportEnvelopeHeaders(), GetImportEnvelopeHeadersResponse)
        return answer.headers

    async def pull(self, tracking_number: str) -> Envelope:
        answer = await self.call(
            PULLSingleImportEnvelope(hub_tracking_number=tracking_number),
            PULLSingleImportEnvelopeResponse,
        )
        if answer.result is None:
            raise HubUnavailable(f"the hub returned no envelope for {tracking_number}")
        return answer.result

    async def acknowledge(self, tracking_number: str) -> None:
        await self.call(
            AcknowledgeEnvelopeReceipt(hub_tracking_number=tracking_number),
            AcknowledgeEnvelopeReceiptResponse,
        )

    async def acknowledge_with_warnings(self, tracking_number: str, warnings: str) -> None:
        await self.call(
            AdvancedAcknowledgeEnvelopeReceipt(
                hub_tracking_number=tracking_number, warning_message=warnings
            ),
            AdvancedAcknowledgeEnvelopeReceiptResponse,
        )

    async def acknowledge_failed(self, tracking_number: str, reason: str) -> None:
        await self.call(
            AcknowledgeFailedEnvelopeReceipt(hub_tracking_number=tracking_number, message=reason),
            AcknowledgeFailedEnvelopeReceiptResponse,
        )

    async def call(self, request: HubRequest, response_type: type[R]) -> R:
        """One SOAP exchange; raises HubRefusal (a Fault) or HubUnavailable."""
        if self._session is None:
            raise RuntimeError("HubClient is used outside `async with`")
        operation = operation_name(request)
        url = self.url
        try:
            async with self._session.post(
                url,
                data=request_body(build_request(request)),
                # SOAP 1.1 (section 6.1.1) quotes the URI; clients from the WSDL do too.
                headers={"Content-Type": CONTENT_TYPE, "SOAPAction": f'"{soap_action(operation)}"'},
                ssl=self._context(),
                allow_redirects=False,
            ) as response:
                # Read to the end (StreamReader.read(n) returns what is buffered, which
                # cut large answers short), but never more than the cap.
                body = await read_at_most(response, MAX_RESPONSE_BYTES + 1)
                status = response.status
        except aiohttp.ClientError as e:
            raise HubUnavailable(f"{url}: {error_text(e)}") from e
        except TimeoutError as e:
            raise HubUnavailable(f"{url}: no answer to {operation} in time") from e
        except (ssl.SSLError, OSError) as e:
            raise HubUnavailable(f"{url}: {e}") from e
        if len(body) > MAX_RESPONSE_BYTES:
            raise HubUnavailable(f"{url}: the answer to {operation} is too large")
        try:
            return parse_response(response_type, body)
        except HubFault as e:
            raise HubRefusal(operation, str(e), e.fault_code) from e
        except SoapError as e:
            raise HubUnavailable(
                f"{url}: unreadable answer to {operation} (HTTP {status}): {e}"
            ) from e

    def _context(self) -> ssl.SSLContext:
        identity = self._presented()
        trust: frozenset[str] | Path
        if self._ca_file is not None:
            trust = self._ca_file
        else:
            assert self._pins is not None
            trust = self._pins()
            if not trust:
                raise HubUnavailable("the directory lists no TLS pin for the hub")
        if self._made is not None and self._made[:2] == (trust, identity):
            return self._made[2]
        if isinstance(trust, Path):
            context = _ca_context(trust, identity)
        else:
            context = pinned_context(trust, identity.certificate, identity.key, identity.password)
        self._made = (trust, identity, context)
        return context


def _tracking_number(result: EnvelopeHeader | None, what: str) -> str:
    if result is None or not result.hub_delivery_number:
        raise HubUnavailable(f"the hub accepted the {what} without a tracking number")
    return result.hub_delivery_number


def _ca_context(ca_file: Path, identity: TlsIdentity) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.load_cert_chain(identity.certificate, identity.key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot set up TLS to the hub with CA file {ca_file}: {e}") from e
    return context


def node_hub_client(
    config: NodeConfig,
    directory: Callable[[], Directory],
    clock: Clock,
    *,
    url: str | None = None,
    presented: PresentedTls | None = None,
) -> HubClient:
    """A node's hub: the one its config names (the IPPC Hub, trusted by a CA file), or
    else the directory's, trusted by the directory's pins for it. `url` aims at one hub
    process among several sharing that identity (tests, benchmarks). The node's client
    certificate is the one `presented` returns (a running node's TlsHolder), or else its
    current one."""
    if presented is None:
        presented = presented_identity(
            config.path(config.keys.tls_certificate), config.path(config.keys.tls_key), None
        )
    if config.hub_url is not None:
        assert config.hub_ca_file is not None  # the config refuses a URL without one
        return HubClient(
            url or config.hub_url, presented=presented, ca_file=config.path(config.hub_ca_file)
        )

    def pins() -> frozenset[str]:
        try:
            return directory().hub_tls_pins(clock.now())
        except DirectoryError as e:
            raise HubUnavailable(f"no TLS pin for the hub: {e}") from e

    def listed_url() -> str:
        try:
            hub = directory().hub
        except DirectoryError as e:
            raise HubUnavailable(f"no usable directory: {e}") from e
        if hub is None:
            raise HubUnavailable("the directory lists no hub")
        # The directory lists where the hub is (`https://host:port`, the form every
        # endpoint has there); its SOAP service is at SERVICE_PATH on it.
        return hub.endpoint.rstrip("/") + SERVICE_PATH

    return HubClient(url or listed_url, presented=presented, pins=pins)
