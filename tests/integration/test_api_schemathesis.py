"""The API against its OpenAPI description, by a client we did not write: Schemathesis.

Schemathesis reads docs/openapi.yaml (the served node/api/openapi.yaml) and generates
requests for every operation, valid and invalid, from the description alone: its
explicit examples, the coverage of each parameter's boundaries, and random ones. Each
answer must pass its default checks, among them: no 5xx (`not_a_server_error`), a
status, content type, headers and body the description documents for that operation
(`status_code_conformance`, `content_type_conformance`, `response_headers_conformance`,
`response_schema_conformance`), invalid input refused and valid input taken
(`negative_data_rejection`, `positive_data_acceptance`), no answer without the token
(`ignored_auth`), and 405 with `Allow` for an undocumented method.

The API is served as `ephyto node serve` serves it (node.serving.serve and the
application of node.api.app) on loopback, in a thread of its own, over a real SQLite
store that holds a sent, a received and a hub-delivered certificate, so that the ids
the description gives as examples find something.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from schemathesis import Case

from node.api.app import ApiContext, create_api_app
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.clock import FixedClock
from node.serving import bound_port, serve
from node.store.store import NewMessage, Store

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
TOKEN = "schemathesis-token-0123456789"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
# Enough to cover every parameter's kinds of values; the run stays within a minute or two.
MAX_EXAMPLES = 30

# What the description cannot say in JSON Schema: a request body of the right shape (an
# object, a string) is a certificate only once the four layers of validation say so, so
# a valid request may be refused 422 with its findings, as the description documents.
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


async def _serve(store_path: Path, started: Future[int], stop: asyncio.Event) -> None:
    store = Store.open(f"sqlite+aiosqlite:///{store_path}")
    await store.migrate()
    context = ApiContext(
        country="NL",
        api_token=TOKEN,
        store=store,
        validator=Validator.default(),
        clock=FixedClock(NOW),
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        runner = await serve(
            stack, create_api_app(context), "127.0.0.1", 0, ssl_context=None, access_log=False
        )
        await _seed(store)
        started.set_result(bound_port(runner))
        await stop.wait()


async def _seed(store: Store) -> None:
    """Message 1 sent and queued, 2 received, 3 sent and delivered through a hub."""
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    for number in ("NL-2026-0000001", "NL-2026-0000003"):
        xml = to_xml_bytes(replace(phyto, number=number))
        new = NewMessage(f"m-{number}", "NL", "CN", number, "851", "70", "sha256:00", xml)
        await store.submit(new, now=NOW)
        if number.endswith("1"):
            received = NewMessage("m-ke", "KE", "NL", "KE-1", "851", "70", "sha256:01", xml)
            await store.receive(received, now=NOW, make_receipt=lambda: ("accepted", b"r"))
    await store.relayed(3, now=NOW, tracking="T-3", next_check_at=NOW, reason="no endpoint")
    await store.delivered(3, now=NOW, route="hub", outcome="Delivered", receipt=None)


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API of a node on loopback, served from a thread of its own."""
    started: Future[int] = Future()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    store_path = tmp_path_factory.mktemp("schemathesis") / "node.db"

    def run() -> None:
        try:
            loop.run_until_complete(_serve(store_path, started, stop))
        except BaseException as e:  # the test waits on `started`: let it see why
            if not started.done():
                started.set_exception(e)
            raise
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="api-under-test", daemon=True)
    thread.start()
    try:
        port = started.result(timeout=60)
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)


CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "cache": {"enabled": False},
        "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES}},
    }
)
schema = schemathesis.openapi.from_path(SPEC, config=CONFIG)


def test_the_description_is_served(api_url: str) -> None:
    with urllib.request.urlopen(f"{api_url}/openapi.yaml", timeout=30) as response:
        assert response.read() == SPEC.read_bytes()


@schema.parametrize()
def test_the_api_is_exactly_its_description(case: Case, api_url: str) -> None:
    case.call_and_validate(base_url=api_url)
