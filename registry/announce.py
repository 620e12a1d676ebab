"""`ephyto registry serve --announce`: serve the directory and announce it by mDNS.

The announcement (node/transport/registry_discovery.py) tells nodes in a lab where the
directory is and which maintainer-set fingerprint to expect; it grants nothing. A node
operator still confirms the fingerprint with a maintainer by another channel, and the
node checks the maintainers' signatures on what it fetches.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path

from node.directory.fingerprint import maintainer_fingerprint
from node.directory.model import MaintainerSet
from node.transport.registry_discovery import RegistryAnnouncement, RegistryAnnouncer
from registry.publish import RegistryError
from registry.web import CURRENT_PATH


def announced_host(listen_host: str, interfaces: Sequence[str]) -> str:
    """The address to announce for a registry listening on `listen_host`; RegistryError.

    Where it listens, if that is one address; the first `--announce IP` if it listens on
    all of them. Announcing an address it does not listen on would send every node in
    the lab to a dead end, so that is refused rather than announced.
    """
    try:
        listen = ipaddress.ip_address(listen_host)
        on = [ipaddress.ip_address(i) for i in interfaces]
    except ValueError as e:
        raise RegistryError(f"--host/--announce: {e}: announcing needs IP addresses") from None
    where = ", ".join(map(str, on))
    if listen.is_unspecified:
        if not on:
            raise RegistryError(
                f"--host {listen_host} listens on every address: name the one to announce,"
                " --announce IP"
            )
        return str(on[0])
    # Loopback may be announced on loopback only (a lab on one machine, the tests).
    reachable = all(ip.is_loopback for ip in on) if listen.is_loopback else listen in on
    if on and not reachable:
        raise RegistryError(
            f"--host {listen_host} is not reachable where it would be announced ({where}):"
            " listen on 0.0.0.0 or on the announced address"
        )
    return str(listen)


def registry_announcement(
    maintainers: MaintainerSet, host: str, port: int, name: str | None
) -> RegistryAnnouncement:
    """What a registry with `maintainers` serving on host:port announces."""
    return RegistryAnnouncement(
        host=host,
        port=port,
        path=CURRENT_PATH,
        fingerprint=maintainer_fingerprint(maintainers),
        name=name,
    )


async def serve_announced(
    root: Path,
    host: str,
    port: int,
    announcement: RegistryAnnouncement,
    interfaces: Sequence[str],
    *,
    stop: asyncio.Event,
    ready: Callable[[str], None],
) -> None:
    """Serve the registry at `root` on host:port and announce it until `stop` is set.

    Announced only once the socket listens, so a node that finds it can fetch at once;
    withdrawn (mDNS goodbye) before the listener closes. Raises MdnsUnavailable, OSError.
    """
    from aiohttp import web

    from registry.web import create_registry_app

    runner = web.AppRunner(create_registry_app(root), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        async with RegistryAnnouncer(announcement, interfaces=list(interfaces) or None) as a:
            ready(a.instance_name or announcement.instance_name)
            await stop.wait()
    finally:
        await runner.cleanup()
