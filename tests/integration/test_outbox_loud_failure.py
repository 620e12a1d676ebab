"""A message that fails for good says so in the log, one WARNING line with the
certificate number, message id, partner, route and reason, and the API shows its state
and reason (issue 11). A real store (SQLite); the directory is a model, the transport a
stand-in that refuses for good, as in test_schema_version_outbox.py."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from node.api.app import ApiContext, create_api_app
from node.certificate.validate import Validator
from node.clock import FixedClock
from node.directory import Directory
from node.outbox.worker import OutboxWorker
from node.store.store import Store
from node.transport.client import PermanentDeliveryError
from tests.integration.test_schema_version_outbox import SIGNING, T0, _directory, _entry, _message


class _Refusing:
    async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes:
        raise PermanentDeliveryError(f"{endpoint} answered 400: envelope refused (test)")


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'node.db'}")
    await opened.migrate()
    yield opened
    await opened.close()


def _worker(store: Store, directory: Directory) -> OutboxWorker:
    return OutboxWorker(
        store, _Refusing(), lambda: directory, country="NL", signing_key=SIGNING,
        clock=FixedClock(T0), rng=random.Random(7),
    )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("partner", "reason"),
    [
        (_entry("XX", "D17A"), "envelope refused (test)"),
        (_entry("XX", "D20B"), "no common SPSCertificate version"),
    ],
)
async def test_a_permanent_failure_is_one_warning_line_and_shown_by_the_api(
    store: Store,
    validator: Validator,
    caplog: pytest.LogCaptureFixture,
    partner: object,
    reason: str,
) -> None:
    new = _message("XX")
    pk = await store.submit(new, now=T0)
    worker = _worker(store, _directory(_entry("NL", "D17A"), partner))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="node.outbox.worker"):
        await worker.run_once()
    lines = [r for r in caplog.records if r.name == "node.outbox.worker"]
    assert len(lines) == 1
    line = lines[0]
    assert line.levelno == logging.WARNING
    text = line.getMessage()
    for part in (new.certificate_number, new.message_id, "XX", "direct", reason):
        assert part in text, (part, text)

    context = ApiContext(
        country="NL", api_token="t" * 20, store=store, validator=validator,
        clock=FixedClock(T0 + timedelta(seconds=1)),
    )  # fmt: skip
    client = TestClient(TestServer(create_api_app(context)))
    await client.start_server()
    try:
        answer = await client.get(
            f"/api/v1/certificates/{pk}", headers={"Authorization": "Bearer " + "t" * 20}
        )
        shown = await answer.json()
    finally:
        await client.close()
    assert shown["state"] == "failed"
    assert reason in shown["reason"]
