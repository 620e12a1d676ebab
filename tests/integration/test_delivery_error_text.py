"""What a failed delivery says (it goes into the message's events): one readable line,
"TYPE: message", never the repr of an object such as aiohttp's connection key.

Real clients over real loopback sockets: a port nobody listens on, and a TLS server that
is not the one pinned.
"""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.identity.config import load_config
from node.identity.store import init_node
from node.transport.client import DeliveryClient, TransientDeliveryError
from node.transport.hub_client import HubClient, HubUnavailable

NOW = datetime.now(UTC).replace(microsecond=0)
REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>|object at 0x")


def _closed_port() -> int:
    """A loopback port that refuses connections (bound, not listening)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _identity(tmp_path: Path) -> tuple[Path, Path]:
    result = init_node(
        tmp_path / "nl", country="NL", name="NL", endpoint=None, now=NOW - timedelta(hours=1)
    )
    config = load_config(result.config)
    return result.certificate, config.path(config.keys.tls_key)


def _readable(text: str) -> None:
    assert REPR.search(text) is None, text
    assert "\n" not in text, text


@pytest.mark.asyncio
async def test_a_refused_connection_is_told_without_reprs(tmp_path: Path) -> None:
    certificate, key = _identity(tmp_path)
    port = _closed_port()
    async with DeliveryClient(tls_certificate=certificate, tls_key=key) as client:
        with pytest.raises(TransientDeliveryError) as caught:
            await client.deliver(f"https://127.0.0.1:{port}", b"{}", pins=frozenset({"pin"}))
    text = str(caught.value)
    _readable(text)
    assert text.startswith(f"https://127.0.0.1:{port}/ephyto/v1/envelopes: ClientConnectorError: ")
    assert f"cannot connect to 127.0.0.1:{port}" in text


@pytest.mark.asyncio
async def test_a_hub_that_cannot_be_reached_is_told_without_reprs(tmp_path: Path) -> None:
    certificate, key = _identity(tmp_path)
    port = _closed_port()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(certificate.read_bytes())
    client = HubClient(
        f"https://127.0.0.1:{port}/hub/DeliveryService",
        tls_certificate=certificate,
        tls_key=key,
        ca_file=ca,
    )
    async with client:
        with pytest.raises(HubUnavailable) as caught:
            await client.tracking("T-1")
    _readable(str(caught.value))
    assert "ClientConnectorError: cannot connect to" in str(caught.value)
