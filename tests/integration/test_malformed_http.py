"""A request that is not well-formed HTTP: a short 400, nothing of it echoed, no traceback.

Both listeners of a node as `run_node` serves them (node.serving.serve): the API over
plain HTTP, and the exchange over real mutual TLS with a client certificate the node
trusts, so the request reaches the HTTP parser. The requests are written to a raw
socket, since no HTTP client sends them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from node.api.app import ApiContext, create_api_app
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.directory import Directory, DirectoryError
from node.identity.config import load_config
from node.identity.store import InitResult, init_node
from node.runtime import NodeRuntime
from node.serving import bound_port, serve
from node.store.store import Store
from node.web.exchange import create_exchange_app
from node.web.tls import server_ssl_context

NOW = datetime.now(UTC).replace(microsecond=0)  # OpenSSL checks validity on the real clock
MARKER = b"Q" * 70_000  # what an echo would send back
BAD_CHUNK_SIZE = (
    b"POST /api/v1/certificates HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer t\r\n"
    b"Content-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\nzz" + MARKER + b"\r\n"
)
BAD_REQUEST_LINE = b"GET /" + MARKER + b" HTTP/1.1 extra\r\nHost: node\r\n\r\n"
BAD_HEADER = b"GET / HTTP/1.1\r\nHost: node\r\nX-" + MARKER[:4000] + b"\x01: v\r\n\r\n"


@dataclass
class Listeners:
    api_port: int
    exchange_port: int
    client_tls: ssl.SSLContext


def _no_directory() -> Directory:
    raise DirectoryError("no directory in this test")


@pytest_asyncio.fixture
async def listeners(tmp_path: Path, validator: Validator) -> AsyncIterator[Listeners]:
    nl: InitResult = init_node(
        tmp_path / "nl", country="NL", name="NL", endpoint="https://127.0.0.1:1",
        now=NOW - timedelta(hours=1),
    )  # fmt: skip
    ke: InitResult = init_node(
        tmp_path / "ke", country="KE", name="KE", endpoint=None, now=NOW - timedelta(hours=1)
    )
    store = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'nl.db'}")
    await store.migrate()
    clock = FixedClock(NOW)
    trusted = [ke.certificate.read_bytes()]
    runtime = NodeRuntime.from_config(
        load_config(nl.config), directory=_no_directory, store=store, clock=clock,
        validator=validator, trusted_client_certs=lambda: trusted,
    )  # fmt: skip
    assert runtime.tls_certificate is not None and runtime.tls_key is not None
    server_tls = server_ssl_context(
        runtime.tls_certificate, runtime.tls_key, trusted_client_certs=lambda: trusted
    )
    ke_config = load_config(ke.config)
    client_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_tls.load_verify_locations(cadata=nl.certificate.read_text())
    client_tls.load_cert_chain(ke.certificate, ke_config.path(ke_config.keys.tls_key))
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        context = ApiContext(
            country="NL", api_token="t", store=store, validator=validator, clock=clock
        )
        api = await serve(
            stack, create_api_app(context), "127.0.0.1", 0, ssl_context=None, access_log=False
        )
        exchange = await serve(
            stack, create_exchange_app(runtime), "127.0.0.1", 0,
            ssl_context=server_tls, access_log=True,
        )  # fmt: skip
        yield Listeners(bound_port(api), bound_port(exchange), client_tls)


async def _exchange(port: int, request: bytes, tls: ssl.SSLContext | None) -> bytes:
    """Write `request` as it is, read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("listener", ["api", "exchange"])
@pytest.mark.parametrize("request_bytes", [BAD_CHUNK_SIZE, BAD_REQUEST_LINE, BAD_HEADER])
async def test_a_malformed_request_gets_a_short_400_and_no_traceback(
    listeners: Listeners,
    listener: str,
    request_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    if listener == "api":
        answer = await _exchange(listeners.api_port, request_bytes, None)
    else:
        answer = await _exchange(listeners.exchange_port, request_bytes, listeners.client_tls)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400"), answer[:200]
    assert b"application/problem+json" in head
    assert b"QQQQ" not in answer and b"zz" not in answer, "the request was echoed back"
    assert len(body) < 300
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("refused a malformed HTTP request" in r.getMessage() for r in caplog.records)
    # One line, and none of the request's bytes in it.
    for record in caplog.records:
        assert "\n" not in record.getMessage() and "QQQQ" not in record.getMessage()


@pytest.mark.asyncio
async def test_a_well_formed_request_is_still_answered(listeners: Listeners) -> None:
    answer = await _exchange(
        listeners.api_port,
        b"GET /api/v1/openapi.yaml HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n",
        None,
    )
    assert answer.startswith(b"HTTP/1.1 200")
