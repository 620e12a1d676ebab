"""The store's side of "nothing doubled" (issue 11), on SQLite and PostgreSQL: a kept
Idempotency-Key, a repeated certificate, and both within one group commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from node.store.store import (
    Answer,
    DuplicateError,
    Existing,
    KeyReuseError,
    NewMessage,
    Remember,
    Store,
)
from tests.databases import database_url

NOW = datetime(2026, 12, 10, tzinfo=UTC)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async for url in database_url(request.param, tmp_path, "node"):
        opened = Store.open(url)
        await opened.migrate()
        yield opened
        await opened.close()


def _new(number: str, digest: str = "sha256:" + "a" * 64, message_id: str = "") -> NewMessage:
    return NewMessage(message_id or f"m-{number}-{digest[-3:]}", "NL", "KE", number, "851", "70",
                      digest, b"<x/>")  # fmt: skip


def _remember(key: str, fingerprint: str = "f-1") -> Remember:
    return Remember("c", key, fingerprint, 202, lambda pk: (json.dumps({"id": pk}), f"/{pk}"))


@pytest.mark.asyncio
async def test_a_kept_key_gives_its_answer_and_another_request_is_refused(store: Store) -> None:
    pk = await store.submit_once(_new("N-1"), now=NOW, remember=_remember("k"))
    assert isinstance(pk, int)
    again = await store.submit_once(_new("N-2"), now=NOW, remember=_remember("k"))
    assert again == Answer(202, json.dumps({"id": pk}), f"/{pk}", pk)
    with pytest.raises(KeyReuseError):
        await store.submit_once(_new("N-3"), now=NOW, remember=_remember("k", "f-2"))
    assert len(await store.messages("out")) == 1
    assert await store.kept_answer("c", "k", now=NOW) == ("f-1", again)
    # A day later the key is forgotten, and purged as the next key is written.
    later = NOW + timedelta(hours=25)
    assert await store.kept_answer("c", "k", now=later) is None
    fresh = await store.submit_once(_new("N-4"), now=later, remember=_remember("k"))
    assert isinstance(fresh, int) and fresh != pk


@pytest.mark.asyncio
async def test_a_repeated_certificate_is_the_existing_one(store: Store) -> None:
    pk = await store.submit_once(_new("N-1"), now=NOW)
    assert await store.submit_once(_new("N-1"), now=NOW) == Existing(pk)  # type: ignore[arg-type]
    with pytest.raises(DuplicateError) as refused:
        await store.submit_once(_new("N-1", "sha256:" + "b" * 64), now=NOW)
    assert refused.value.existing == pk
    # `submit` (the receiving side's tests, the demo) keeps its old meaning.
    assert isinstance(await store.submit(_new("N-1", message_id="m-other"), now=NOW), int)


@pytest.mark.asyncio
async def test_repeats_within_one_group_commit(store: Store) -> None:
    results = await asyncio.gather(
        store.submit_once(_new("N-1"), now=NOW, remember=_remember("k")),
        store.submit_once(_new("N-1"), now=NOW, remember=_remember("k")),
        store.submit_once(_new("N-2"), now=NOW),
        store.submit_once(_new("N-2"), now=NOW),
        store.submit_once(_new("N-2", "sha256:" + "c" * 64), now=NOW),
        return_exceptions=True,
    )
    first, keyed, second, same, other = results
    assert isinstance(first, int) and isinstance(second, int)
    assert keyed == Answer(202, json.dumps({"id": first}), f"/{first}", first)
    assert same == Existing(second)
    assert isinstance(other, DuplicateError) and other.existing == second
    assert len(await store.messages("out")) == 2
