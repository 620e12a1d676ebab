"""Zeroconf (mDNS/DNS-SD) discovery of ePhyto nodes on the local network; it never grants trust.

A node announces `_ephyto._tcp.local.`: SRV and A/AAAA records say where it listens, the
TXT record (RFC 6763 section 6) its country, name, TLS pin, signing key id and software
version. Anyone on the link can announce anything, so an announcement is only a hint:
`trusted_endpoint` uses it only if the directory lists the country as active with the
announced TLS pin, and the node still pins the TLS connection itself to the directory's
pins when it connects. A lying announcement can therefore at worst point at a host that
fails the TLS handshake; it can never redirect traffic to an impostor.

The pure part (Announcement, trusted_endpoint) is bytes and values in, values or an
error out. The shell part (Announcer, async_browse) runs on the asyncio loop through
zeroconf's AsyncZeroconf, and translates zeroconf's errors into MdnsUnavailable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Final, Generic, Protocol, Self, TypeVar

from zeroconf import Error as ZeroconfError
from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from node.directory.errors import UnknownKey, UntrustedPeer
from node.directory.model import Directory
from node.errors import EphytoError, InputError
from node.identity.enrolment import check_country, check_name

SERVICE_TYPE: Final = "_ephyto._tcp.local."
TXT_VERSION: Final = "1"
# TXT keys, written in this order; keys are compared case-insensitively (RFC 6763 6.4).
_KEYS: Final = ("txtvers", "country", "name", "tls_pin", "signing_key_id", "version")
_MAX_NAME_BYTES: Final = 255 - len("name=")
_PIN_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
_KEYID_RE: Final = re.compile(r"[0-9a-f]{32}")
_VERSION_RE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,31}")

_log = logging.getLogger(__name__)
T = TypeVar("T")


class Announced(Protocol):
    """What an announcer announces: where the service listens and its TXT record."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    def to_txt(self) -> bytes: ...


A = TypeVar("A", bound=Announced)


class DiscoveryError(EphytoError):
    """Discovery failed or saw something unusable; no trust decision depends on it."""


class MalformedAnnouncement(DiscoveryError, InputError):
    """An announcement is not well-formed: it is ignored, never half-used."""


class MdnsUnavailable(DiscoveryError):
    """mDNS cannot run on these interfaces (socket, address, name): check --interface."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """What one node says about itself on mDNS; checked on construction, trusted by nobody."""

    country: str
    name: str
    host: str  # an IP address literal, IPv6 without brackets
    port: int
    tls_pin: str
    signing_key_id: str
    version: str

    def __post_init__(self) -> None:
        _check(self)

    @property
    def endpoint(self) -> str:
        """The announced `https://host:port`: a claim, see trusted_endpoint."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def to_txt(self) -> bytes:
        """The TXT record data: length-prefixed `key=value` strings (RFC 6763 section 6)."""
        values = (
            TXT_VERSION, self.country, self.name, self.tls_pin, self.signing_key_id, self.version
        )  # fmt: skip
        return txt_record(zip(_KEYS, values, strict=True))

    @classmethod
    def from_txt(cls, text: bytes, *, host: str | None, port: int | None) -> Announcement:
        """Parse TXT data plus the SRV port and an address; MalformedAnnouncement.

        Strict: every key present once (case-insensitively), with a value, in UTF-8, and
        `txtvers=1`. Keys this version does not know are ignored (RFC 6763 section 6.4),
        so a later version can add some; none of them could ever grant trust.
        """
        fields, host, port = announced_fields(
            text, keys=_KEYS, required=_KEYS, version=TXT_VERSION, host=host, port=port
        )
        return cls(
            country=fields["country"],
            name=fields["name"],
            host=host,
            port=port,
            tls_pin=fields["tls_pin"],
            signing_key_id=fields["signing_key_id"],
            version=fields["version"],
        )

    @classmethod
    def from_service_info(cls, info: ServiceInfo) -> Announcement:
        """The announcement in a resolved ServiceInfo; MalformedAnnouncement naming it."""
        try:
            return cls.from_txt(info.text or b"", host=service_address(info), port=info.port)
        except MalformedAnnouncement as e:
            raise MalformedAnnouncement(f"{info.name}: {e}") from None


def trusted_endpoint(announcement: Announcement, directory: Directory, at: datetime) -> str | None:
    """The announced https URL if the directory vouches for it at `at`, else None.

    Vouches: the country is an active NPPO and the announced TLS pin is one of its pins
    valid at `at`. The caller must still pin the TLS connection to `directory.tls_pins`
    (not to the announced pin) when it connects: this check only decides whether the
    address is worth trying, and the announcement cannot change who answers there.
    """
    try:
        return require_trusted(announcement, directory, at)
    except UntrustedPeer:
        return None


def require_trusted(announcement: Announcement, directory: Directory, at: datetime) -> str:
    """As trusted_endpoint, but say why not: UnknownNppo, NppoNotActive, KeyNotValid, UnknownKey."""
    pins = directory.tls_pins(announcement.country, at)
    if announcement.tls_pin not in pins:
        raise UnknownKey(
            f"announced TLS pin {announcement.tls_pin} is not a pin of NPPO "
            f"{announcement.country} in directory version {directory.version}"
        )
    return announcement.endpoint


class ServiceAnnouncer(Generic[A]):
    """Announces `announcement` as one DNS-SD service on mDNS from `async_register` until
    `async_close`.

    Subclasses say under which names, in `service_info`. `interfaces`: IP addresses to bind mDNS to
    (tests: ["127.0.0.1"]); None for all IPv4 interfaces. A given `zeroconf` is used and
    left open; otherwise one is opened and closed here. Use on the loop only; raises
    MdnsUnavailable.
    """

    def __init__(
        self,
        announcement: A,
        *,
        interfaces: Sequence[str] | None = None,
        zeroconf: AsyncZeroconf | None = None,
    ) -> None:
        self.announcement = announcement
        self._interfaces = interfaces
        self._zeroconf = zeroconf
        self._owned = zeroconf is None
        self._info: AsyncServiceInfo | None = None

    @property
    def instance_name(self) -> str | None:
        """The registered DNS-SD instance name (zeroconf renames on a clash), or None."""
        return None if self._info is None else self._info.name

    def service_info(self) -> AsyncServiceInfo:
        """The service to announce: type, instance name, address, port, TXT record."""
        raise NotImplementedError

    async def async_register(self) -> None:
        """Probe for the name and announce the service; returns once it is announced."""
        if self._info is not None:
            return
        info = self.service_info()
        if self._zeroconf is None:
            self._zeroconf = open_zeroconf(self._interfaces)
        try:
            await (await self._zeroconf.async_register_service(info, allow_name_change=True))
        except (ZeroconfError, OSError) as e:
            raise MdnsUnavailable(f"cannot announce {info.name}: {e}") from e
        self._info = info

    async def async_unregister(self) -> None:
        """Say goodbye (TTL 0) so browsers drop the node now rather than at expiry."""
        info, self._info = self._info, None
        if info is None or self._zeroconf is None:
            return
        try:
            await (await self._zeroconf.async_unregister_service(info))
        except (ZeroconfError, OSError) as e:
            raise MdnsUnavailable(f"cannot withdraw {info.name}: {e}") from e

    async def async_close(self) -> None:
        """Unregister, and close the zeroconf instance if this announcer opened it."""
        try:
            await self.async_unregister()
        finally:
            zc, self._zeroconf = self._zeroconf, (None if self._owned else self._zeroconf)
            if self._owned and zc is not None:
                await zc.async_close()

    async def __aenter__(self) -> Self:
        try:
            await self.async_register()
        except BaseException:
            await self.async_close()  # the sockets opened for it
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.async_close()


class Announcer(ServiceAnnouncer[Announcement]):
    """Announces one node (`_ephyto._tcp`); see ServiceAnnouncer."""

    def service_info(self) -> AsyncServiceInfo:
        a = self.announcement
        return announced_service(
            SERVICE_TYPE,
            instance_name(a.country, a.signing_key_id),
            a,
            server=f"ephyto-{a.country.lower()}-{a.signing_key_id[:12]}.local.",
        )


def announced_service(
    service_type: str, instance: str, announcement: Announced, *, server: str
) -> AsyncServiceInfo:
    """The DNS-SD service `instance`.`service_type` on host `server`, where `announcement`
    listens, with its TXT record."""
    return AsyncServiceInfo(
        service_type,
        f"{instance}.{service_type}",
        addresses=[ipaddress.ip_address(announcement.host).packed],
        port=announcement.port,
        properties=announcement.to_txt(),
        server=server,
    )


async def async_browse(
    timeout: float,
    interfaces: Sequence[str] | None = None,
    *,
    zeroconf: AsyncZeroconf | None = None,
    resolve_timeout: float = 1.0,
    on_ignored: Callable[[str, str], None] | None = None,
) -> list[Announcement]:
    """The well-formed announcements seen within `timeout` seconds, sorted by country.

    Malformed or unresolvable ones are skipped; `on_ignored(instance, reason)` hears of
    each. `interfaces` and `zeroconf` as for Announcer. Raises MdnsUnavailable.
    """
    found = await browse_services(
        SERVICE_TYPE,
        lambda info: Announcement.from_txt(
            info.text or b"", host=service_address(info), port=info.port
        ),
        timeout,
        interfaces,
        zeroconf=zeroconf,
        resolve_timeout=resolve_timeout,
        on_ignored=on_ignored,
    )
    return sorted(set(found), key=lambda a: (a.country, a.name, a.host, a.port, a.tls_pin))


async def browse_services(
    service_type: str,
    parse: Callable[[ServiceInfo], T],
    timeout: float,
    interfaces: Sequence[str] | None = None,
    *,
    zeroconf: AsyncZeroconf | None = None,
    resolve_timeout: float = 1.0,
    on_ignored: Callable[[str, str], None] | None = None,
) -> list[T]:
    """What `parse` makes of each instance of `service_type` seen within `timeout` seconds.

    In instance-name order. `parse` raises MalformedAnnouncement for what it refuses: that
    instance, and any that does not resolve, is skipped with a log line and a call of
    `on_ignored(instance, reason)`. Raises MdnsUnavailable.
    """
    zc = open_zeroconf(interfaces) if zeroconf is None else zeroconf
    try:
        names: set[str] = set()

        def on_change(
            zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change is ServiceStateChange.Removed:
                names.discard(name)
            else:
                names.add(name)

        try:
            browser = AsyncServiceBrowser(zc.zeroconf, [service_type], handlers=[on_change])
        except (ZeroconfError, OSError) as e:
            raise MdnsUnavailable(f"cannot browse {service_type}: {e}") from e
        try:
            await asyncio.sleep(timeout)
        finally:
            await browser.async_cancel()
        pending = sorted(names)
        found = await asyncio.gather(
            *(_resolve(zc, service_type, n, resolve_timeout, parse) for n in pending)
        )
    finally:
        if zeroconf is None:
            await zc.async_close()
    result: list[T] = []
    for name, item in zip(pending, found, strict=True):
        if not isinstance(item, _Ignored):
            result.append(item)
            continue
        _log.info("ignored mDNS announcement %s: %s", name, item.reason)
        if on_ignored is not None:
            on_ignored(name, item.reason)
    return result


def instance_name(country: str, signing_key_id: str) -> str:
    """The DNS-SD instance name a node asks for (zeroconf renames it on a clash).

    The key id tells two nodes of one country apart (a standby, a test run), so they
    never depend on mDNS conflict resolution, which simultaneous probes can defeat.
    """
    return f"ephyto-{country}-{signing_key_id[:12]}"


def _check(a: Announcement) -> None:
    try:
        check_country(a.country)
    except InputError as e:
        raise MalformedAnnouncement(str(e)) from None
    check_announced_name(a.name)
    check_address(a.host, a.port)
    if not _PIN_RE.fullmatch(a.tls_pin):
        raise MalformedAnnouncement(f"tls_pin {a.tls_pin!r} is not sha256:<64 hex digits>")
    if not _KEYID_RE.fullmatch(a.signing_key_id):
        raise MalformedAnnouncement(
            f"signing_key_id {a.signing_key_id!r} is not 32 lowercase hex digits"
        )
    if not _VERSION_RE.fullmatch(a.version):
        raise MalformedAnnouncement(f"version {a.version!r} is not a version string")


def txt_record(pairs: Iterable[tuple[str, str]]) -> bytes:
    """TXT record data: length-prefixed `key=value` strings, in the order given."""
    items = [f"{k}={v}".encode() for k, v in pairs]
    if too_long := [item for item in items if len(item) > 255]:
        # A length is one byte: a longer string would corrupt the record, not shorten it.
        raise MalformedAnnouncement(f"TXT string {too_long[0][:40]!r}... exceeds 255 bytes")
    return b"".join(bytes((len(item),)) + item for item in items)


def check_announced_name(name: str) -> None:
    """An announced name: an NPPO-style name, untrimmed, that fits one TXT string."""
    try:
        trimmed = check_name(name)
    except InputError as e:
        raise MalformedAnnouncement(str(e)) from None
    if trimmed != name:
        raise MalformedAnnouncement(f"name {name!r} has surrounding spaces")
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise MalformedAnnouncement(
            f"name is longer than {_MAX_NAME_BYTES} bytes in UTF-8 (one TXT string)"
        )


def check_address(host: str, port: int) -> None:
    """An announced host and port: a unicast IP literal in canonical form, 1..65535."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise MalformedAnnouncement(f"host {host!r} is not an IP address") from None
    if str(ip) != host or ip.is_unspecified or ip.is_multicast:
        raise MalformedAnnouncement(f"host {host!r} is not a unicast address in canonical form")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise MalformedAnnouncement(f"port {port!r} is outside 1..65535")


def announced_fields(
    text: bytes,
    *,
    keys: Sequence[str],
    required: Sequence[str],
    version: str,
    host: str | None,
    port: int | None,
) -> tuple[dict[str, str], str, int]:
    """The fields of TXT data (as txt_fields), the address and the port of an announcement;
    MalformedAnnouncement unless every `required` key is there, `txtvers` is `version`, and
    the service resolved to an address and a port."""
    fields = txt_fields(text, keys)
    if missing := [k for k in required if k not in fields]:
        raise MalformedAnnouncement(f"TXT record has no {missing[0]!r}")
    if fields["txtvers"] != version:
        raise MalformedAnnouncement(
            f"TXT record version {fields['txtvers']!r} is not the supported {version!r}"
        )
    if host is None:
        raise MalformedAnnouncement("no usable address (A/AAAA record)")
    if port is None:
        raise MalformedAnnouncement("no port (SRV record)")
    return fields, host, port


def txt_fields(text: bytes, keys: Sequence[str] = _KEYS) -> dict[str, str]:
    """The values of `keys` in TXT data, strictly (RFC 6763 section 6); MalformedAnnouncement.

    Every string well-formed, every key once (case-insensitively), keys of `keys` with a
    UTF-8 value; other keys are skipped. Which keys must be present is the caller's rule.
    """
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        end = pos + 1 + text[pos]
        if end > len(text):
            raise MalformedAnnouncement("TXT record: a string runs past the end of the data")
        item, pos = text[pos + 1 : end], end
        if not item:
            continue  # RFC 6763 6.1: an empty TXT record is one empty string
        raw_key, sep, raw_value = item.partition(b"=")
        if not raw_key or any(not 0x20 <= c <= 0x7E for c in raw_key):
            raise MalformedAnnouncement(f"TXT record: {raw_key!r} is not a key")
        key = raw_key.decode("ascii").lower()
        if key in fields:
            # RFC 6763 keeps the first; for a record about trust, two values is a lie.
            raise MalformedAnnouncement(f"TXT record: {key!r} appears twice")
        if key not in keys:
            continue
        if not sep:
            raise MalformedAnnouncement(f"TXT record: {key!r} has no value")
        try:
            fields[key] = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedAnnouncement(f"TXT record: {key!r} is not UTF-8") from None
    return fields


def service_address(info: ServiceInfo) -> str | None:
    """The address to connect to: the lowest IPv4, else a routable IPv6 one, else None."""
    v4 = info.parsed_addresses(IPVersion.V4Only)
    if v4:
        return sorted(v4)[0]
    # A link-local IPv6 address is useless without its zone, which the URL cannot carry.
    v6 = [a for a in info.parsed_addresses(IPVersion.V6Only) if "%" not in a]
    v6 = [a for a in v6 if not ipaddress.IPv6Address(a).is_link_local]
    return sorted(v6)[0] if v6 else None


def open_zeroconf(interfaces: Sequence[str] | None) -> AsyncZeroconf:
    """AsyncZeroconf bound to `interfaces` (None: all IPv4); MdnsUnavailable."""
    choice: list[str] | InterfaceChoice = list(interfaces) if interfaces else InterfaceChoice.All
    where = ", ".join(interfaces) if interfaces else "all interfaces"
    try:
        ips = [ipaddress.ip_address(i) for i in interfaces or ()]
    except ValueError as e:
        raise MdnsUnavailable(f"--interface: {e}") from None
    # IPv4 unless an IPv6 interface is named: mDNS over IPv6 fails on many hosts without it.
    for ip in ips:
        _require_local(ip)
    families = {ip.version for ip in ips}
    version = IPVersion.V4Only
    if 6 in families:
        version = IPVersion.All if 4 in families else IPVersion.V6Only
    try:
        return AsyncZeroconf(interfaces=choice, ip_version=version)
    except (ZeroconfError, OSError) as e:
        raise MdnsUnavailable(f"cannot open mDNS on {where}: {e}") from e


def _require_local(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    # zeroconf leaks its socket when an interface address is not this host's: ask first.
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(ip), 0))
    except OSError as e:
        raise MdnsUnavailable(f"{ip} is not an address of this host: {e.strerror or e}") from e


async def _resolve(
    zc: AsyncZeroconf,
    service_type: str,
    name: str,
    timeout: float,
    parse: Callable[[ServiceInfo], T],
) -> T | _Ignored:
    info = AsyncServiceInfo(service_type, name)
    try:
        if not await info.async_request(zc.zeroconf, timeout * 1000):
            return _Ignored(f"no SRV/TXT/address answer within {timeout:g}s")
        return parse(info)
    except MalformedAnnouncement as e:
        return _Ignored(str(e))
    except (ZeroconfError, OSError) as e:
        return _Ignored(f"cannot resolve: {e}")


@dataclass(frozen=True, slots=True)
class _Ignored:
    # Why an instance was skipped; a class of its own, so no parsed value can look like it.
    reason: str
