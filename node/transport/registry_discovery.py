"""Zeroconf (mDNS/DNS-SD) discovery of a registry on the local network; it never grants trust.

A registry (a lab's, a training room's) announces `_ephyto-registry._tcp.local.`: SRV and
A/AAAA records say where it serves the directory over HTTP, the TXT record its path, the
fingerprint of its maintainer set (node/directory/fingerprint.py) and, optionally, a
name. All of it is a claim by whoever is on the link. A node uses an announcement only
to find where to fetch a directory; it trusts that directory only if its own maintainer
set has the fingerprint the operator confirmed by another channel and a threshold of
that set signed it (`directory_confirmed_by`). A rogue announcement can at worst offer a
directory that is refused.

Built on node/transport/discovery.py: the same strict TXT parsing, address rules,
interface handling and MdnsUnavailable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from node.directory.fingerprint import FINGERPRINT_RE, PREFIX
from node.transport.discovery import (
    MalformedAnnouncement,
    ServiceAnnouncer,
    announced_fields,
    announced_service,
    browse_services,
    check_address,
    check_announced_name,
    service_address,
    txt_record,
)

SERVICE_TYPE: Final = "_ephyto-registry._tcp.local."
TXT_VERSION: Final = "1"
# TXT keys, written in this order; "name" only when the registry has one.
_KEYS: Final = ("txtvers", "path", "fingerprint", "name")
_REQUIRED: Final = ("txtvers", "path", "fingerprint")
# Plain segments only: no query, fragment, escapes, "." or ".." to reinterpret.
_PATH_RE: Final = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}){1,8}")


@dataclass(frozen=True, slots=True)
class RegistryAnnouncement:
    """What one registry says about itself on mDNS; checked on construction, trusted by nobody."""

    host: str  # an IP address literal, IPv6 without brackets
    port: int
    path: str
    fingerprint: str  # the claimed maintainer-set fingerprint, sha256:<hex>
    name: str | None = None

    def __post_init__(self) -> None:
        check_address(self.host, self.port)
        if not _PATH_RE.fullmatch(self.path):
            raise MalformedAnnouncement(
                f"path {self.path[:80]!r} is not an absolute path of plain segments"
            )
        if not FINGERPRINT_RE.fullmatch(self.fingerprint):
            raise MalformedAnnouncement(
                f"fingerprint {self.fingerprint[:80]!r} is not sha256:<64 lowercase hex digits>"
            )
        if self.name is not None:
            check_announced_name(self.name)

    @property
    def url(self) -> str:
        """The announced `http://host:port/path` of the directory: a claim, see module doc."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    @property
    def instance_name(self) -> str:
        """The DNS-SD instance name asked for: the fingerprint tells registries apart, and
        the port a registry from its mirror on the same host."""
        return f"ephyto-registry-{self.fingerprint[len(PREFIX) :][:12]}-{self.port}"

    def to_txt(self) -> bytes:
        """The TXT record data (RFC 6763 section 6)."""
        values = [TXT_VERSION, self.path, self.fingerprint]
        if self.name is not None:
            values.append(self.name)
        return txt_record(zip(_KEYS, values, strict=False))

    @classmethod
    def from_txt(cls, text: bytes, *, host: str | None, port: int | None) -> RegistryAnnouncement:
        """Parse TXT data plus the SRV port and an address; MalformedAnnouncement.

        Strict as discovery.Announcement.from_txt: each key once, with a UTF-8 value,
        `txtvers=1`; `name` optional; unknown keys ignored (RFC 6763 section 6.4).
        """
        fields, host, port = announced_fields(
            text, keys=_KEYS, required=_REQUIRED, version=TXT_VERSION, host=host, port=port
        )
        return cls(
            host=host,
            port=port,
            path=fields["path"],
            fingerprint=fields["fingerprint"],
            name=fields.get("name"),
        )

    @classmethod
    def from_service_info(cls, info: ServiceInfo) -> RegistryAnnouncement:
        """The announcement in a resolved ServiceInfo; MalformedAnnouncement."""
        return cls.from_txt(info.text or b"", host=service_address(info), port=info.port)


class RegistryAnnouncer(ServiceAnnouncer[RegistryAnnouncement]):
    """Announces one registry (`_ephyto-registry._tcp`); see discovery.ServiceAnnouncer."""

    def service_info(self) -> AsyncServiceInfo:
        a = self.announcement
        return announced_service(
            SERVICE_TYPE, a.instance_name, a, server=f"{a.instance_name}.local."
        )


async def async_browse_registries(
    timeout: float,
    interfaces: Sequence[str] | None = None,
    *,
    zeroconf: AsyncZeroconf | None = None,
    resolve_timeout: float = 1.0,
    on_ignored: Callable[[str, str], None] | None = None,
) -> list[RegistryAnnouncement]:
    """The well-formed registry announcements seen within `timeout` seconds, sorted by URL.

    Malformed or unresolvable ones are skipped with a log line; `on_ignored(instance,
    reason)` hears of each. Arguments as discovery.async_browse; raises MdnsUnavailable.
    """
    found = await browse_services(
        SERVICE_TYPE,
        RegistryAnnouncement.from_service_info,
        timeout,
        interfaces,
        zeroconf=zeroconf,
        resolve_timeout=resolve_timeout,
        on_ignored=on_ignored,
    )
    return sorted(set(found), key=lambda a: (a.url, a.fingerprint, a.name or ""))
