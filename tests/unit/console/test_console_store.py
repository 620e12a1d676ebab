"""The officer console's tables in the node's store (node.store.console), on a real SQLite
file and the real PostgreSQL: certificates with compare-and-set versions, the audit trail
written in the transaction of each change, the login lockout, hostile values refused
before anything is written, and migration 0009 up from 0008 and back down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

import node.store.console
import node.store.migrations
from node.errors import InputError
from node.store.database import Database
from node.store.schema import metadata
from node.store.store import (
    AuditEntry,
    ConsoleCertificate,
    ConsoleConflictError,
    ConsoleInputError,
    NewMessage,
    NotFoundError,
    Store,
)
from tests.databases import database_url

MIGRATIONS = Path(node.store.migrations.__file__).parent
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MODEL = json.dumps({"header": {"number": "NL-1"}, "items": [{"description": "Cut roses"}]})
TABLES = ("console_certificates", "console_audit", "console_logins")


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async for found in database_url(request.param, tmp_path, "console"):
        yield found


@pytest_asyncio.fixture
async def store(url: str) -> AsyncIterator[Store]:
    opened = Store.open(url)
    await opened.migrate()
    yield opened
    await opened.close()


async def _draft(
    store: Store,
    number: str = "NL-1",
    *,
    at: datetime = T0,
    country: str | None = "KE",
    commodity: str | None = "Cut roses",
    user: str = "clerk",
    replaces: int | None = None,
) -> ConsoleCertificate:
    return await store.console_create(
        number=number,
        type_code="851",
        import_country=country,
        commodity=commodity,
        model=MODEL,
        user=user,
        now=at,
        replaces=replaces,
    )


async def _message(store: Store, message_id: str = "m-1") -> int:
    received = await store.receive(
        NewMessage(message_id, "KE", "NL", "KE-9", "851", "70", "sha256:0", b"<x/>"),
        now=T0,
        make_receipt=lambda: ("accepted", b"r"),
        supersedes=None,
    )
    return received.message


async def _nothing_changed(store: Store, before: ConsoleCertificate) -> None:
    """The certificate as it was, and no audit entry beyond those it had."""
    assert await store.console_get(before.id) == before
    trail = await store.console_audit(certificate=before.id)
    assert len(trail) == before.version  # one entry per change, none for the refusal


# ---- create and read ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_draft_is_at_version_one_with_its_audit_entry(store: Store) -> None:
    created = await _draft(store)
    assert created == ConsoleCertificate(
        id=created.id,
        number="NL-1",
        type_code="851",
        state="draft",
        import_country="KE",
        commodity="Cut roses",
        model=MODEL,
        drafted_by="clerk",
        updated_by="clerk",
        created_at=T0,
        updated_at=T0,
        reason=None,
        message=None,
        version=1,
        replaces=None,
    )
    assert await store.console_get(created.id) == created
    assert await store.console_audit(certificate=created.id) == [
        AuditEntry(
            id=(await store.console_audit_all())[0].id,
            certificate=created.id,
            message=None,
            at=T0,
            user="clerk",
            action="created",
            detail=None,
        )
    ]


@pytest.mark.asyncio
async def test_a_draft_may_leave_country_and_commodity_for_later(store: Store) -> None:
    created = await _draft(store, country=None, commodity=None)
    assert (created.import_country, created.commodity) == (None, None)
    assert await store.console_get(created.id) == created


@pytest.mark.asyncio
async def test_a_replacement_names_its_original_in_row_and_audit(store: Store) -> None:
    original = await _draft(store, "NL-1")
    replacement = await _draft(store, "NL-1R", replaces=original.id)
    assert replacement.replaces == original.id
    (entry,) = await store.console_audit(certificate=replacement.id)
    assert (entry.action, entry.detail) == ("created", {"replaces": original.id})


@pytest.mark.asyncio
async def test_replacing_an_unknown_certificate_writes_nothing(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no console certificate 999 to replace"):
        await _draft(store, replaces=999)
    assert await store.console_counts() == {}
    assert await store.console_audit_all() == []


@pytest.mark.asyncio
async def test_a_number_already_taken_is_a_conflict_and_writes_nothing(store: Store) -> None:
    first = await _draft(store, "NL-1")
    with pytest.raises(ConsoleConflictError, match="'NL-1' is already taken"):
        await _draft(store, "NL-1", user="other")
    assert await store.console_counts() == {"draft": 1}
    assert [e.certificate for e in await store.console_audit_all()] == [first.id]


@pytest.mark.asyncio
async def test_a_number_taken_by_a_racing_writer_is_a_conflict_too(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (on PostgreSQL) may insert the number between the check and the
    insert: the unique constraint refuses it, and the caller sees the same conflict."""
    await _draft(store, "NL-1")
    monkeypatch.setattr(node.store.console, "_refuse_taken", lambda *a, **k: None)
    with pytest.raises(ConsoleConflictError, match="'NL-1' is already taken"):
        await _draft(store, "NL-1")
    assert await store.console_counts() == {"draft": 1}
    assert len(await store.console_audit_all()) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("pk", [999, 0, -1, 2**63, 2**80])
async def test_an_unknown_id_is_not_found(store: Store, pk: int) -> None:
    with pytest.raises(NotFoundError, match="no console certificate"):
        await store.console_get(pk)
    assert await store.console_get_by_message(pk) is None


@pytest.mark.asyncio
@pytest.mark.parametrize("pk", ["1", 1.0, True, None, b"1"])
async def test_an_id_that_is_no_whole_number_is_refused(store: Store, pk: Any) -> None:
    with pytest.raises(ConsoleInputError, match="pk must be a whole number"):
        await store.console_get(pk)


@pytest.mark.asyncio
async def test_the_certificate_sent_as_a_message_is_found_by_it(store: Store) -> None:
    message = await _message(store)
    draft = await _draft(store)
    assert await store.console_get_by_message(message) is None
    issued = await store.console_transition(
        draft.id, version=1, from_states=["draft"], to_state="issued", action="issued",
        user="officer", now=T0, message=message,
    )  # fmt: skip
    assert issued.message == message
    assert await store.console_get_by_message(message) == issued


# ---- lists and counts -------------------------------------------------------------


@pytest_asyncio.fixture
async def listed(store: Store) -> dict[str, ConsoleCertificate]:
    """Certificates whose numbers and commodities hold LIKE's special characters."""
    made: dict[str, ConsoleCertificate] = {}
    rows = [
        ("NL-100%", "KE", "Rosa spp. (cut flowers)"),
        ("NL-1000", "KE", "ROSES, 100% fresh"),
        ("NL_2", "UG", "Mangifera indica"),
        ("NLX2", None, "pepperXcorns"),
        ("NL\\3", "UG", "pepper_corns"),
        ("NL-ورد", "EG", "ورد مقطوف"),
    ]
    for minutes, (number, country, commodity) in enumerate(rows):
        made[number] = await _draft(
            store, number, at=T0 + timedelta(minutes=minutes), country=country, commodity=commodity
        )
    return made


def _numbers(found: list[ConsoleCertificate]) -> list[str]:
    return [c.number for c in found]


@pytest.mark.asyncio
async def test_a_list_is_the_most_recently_changed_first(
    store: Store, listed: dict[str, ConsoleCertificate]
) -> None:
    assert _numbers(await store.console_list()) == [
        "NL-ورد", "NL\\3", "NLX2", "NL_2", "NL-1000", "NL-100%"
    ]  # fmt: skip
    first = listed["NL-100%"]
    await store.console_save(
        first.id, version=1, editable_states=["draft"], number=first.number, type_code="851",
        import_country="KE", commodity=first.commodity, model=MODEL, user="clerk",
        now=T0 + timedelta(hours=1),
    )  # fmt: skip
    assert _numbers(await store.console_list(limit=2)) == ["NL-100%", "NL-ورد"]
    assert _numbers(await store.console_list(limit=2, offset=5)) == ["NL-1000"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("contains", "expected"),
    [
        ("%", ["NL-100%"]),  # a literal percent sign, not "anything"
        ("_", ["NL_2"]),  # a literal underscore, not "any one character"
        ("l_2", ["NL_2"]),  # case-insensitive, and still literal
        ("\\", ["NL\\3"]),  # the escape character itself
        ("nl-100", ["NL-1000", "NL-100%"]),
        ("ورد", ["NL-ورد"]),
        ("", ["NL-ورد", "NL\\3", "NLX2", "NL_2", "NL-1000", "NL-100%"]),
        ("nothing-like-it", []),
    ],
)
async def test_number_contains_is_a_literal_case_insensitive_substring(
    store: Store, listed: dict[str, ConsoleCertificate], contains: str, expected: list[str]
) -> None:
    assert _numbers(await store.console_list(number_contains=contains)) == expected


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("contains", "expected"),
    [
        ("ROSA", ["NL-100%"]),
        ("ros", ["NL-1000", "NL-100%"]),
        ("0%", ["NL-1000"]),
        ("r_c", ["NL\\3"]),  # not "pepperXcorns", as "_" for any one character would
        ("rxc", ["NLX2"]),
        ("مقطوف", ["NL-ورد"]),
    ],
)
async def test_commodity_contains_is_a_literal_case_insensitive_substring(
    store: Store, listed: dict[str, ConsoleCertificate], contains: str, expected: list[str]
) -> None:
    assert _numbers(await store.console_list(commodity_contains=contains)) == expected


@pytest.mark.asyncio
async def test_lists_filter_by_state_country_and_time(
    store: Store, listed: dict[str, ConsoleCertificate]
) -> None:
    mango = listed["NL_2"]
    await store.console_transition(
        mango.id, version=1, from_states=["draft"], to_state="submitted", action="submitted",
        user="clerk", now=T0 + timedelta(hours=2),
    )  # fmt: skip
    assert _numbers(await store.console_list(states=["submitted"])) == ["NL_2"]
    assert _numbers(await store.console_list(states={"submitted", "approved"})) == ["NL_2"]
    assert await store.console_list(states=[]) == []
    assert _numbers(await store.console_list(country="UG")) == ["NL_2", "NL\\3"]
    assert _numbers(await store.console_list(country="UG", states=["draft"])) == ["NL\\3"]
    # Changed at minutes 0 to 5 (NL_2 moved to 2 hours by its transition).
    since = T0 + timedelta(minutes=1)
    window = await store.console_list(since=since, until=T0 + timedelta(minutes=3))
    assert _numbers(window) == ["NL-1000"]  # since inclusive, until exclusive: NLX2 is at 3
    window = await store.console_list(since=since, until=T0 + timedelta(minutes=4))
    assert _numbers(window) == ["NLX2", "NL-1000"]
    assert await store.console_counts() == {"draft": 5, "submitted": 1}


@pytest.mark.asyncio
async def test_counts_of_an_empty_console_are_empty(store: Store) -> None:
    assert await store.console_counts() == {}
    assert await store.console_list() == []


# ---- changes: compare-and-set, in one transaction with their audit ------------------


async def _save(store: Store, draft: ConsoleCertificate, **changes: Any) -> ConsoleCertificate:
    values: dict[str, Any] = {
        "version": draft.version,
        "editable_states": ["draft", "queried"],
        "number": draft.number,
        "type_code": draft.type_code,
        "import_country": draft.import_country,
        "commodity": draft.commodity,
        "model": draft.model,
        "user": "clerk",
        "now": T0 + timedelta(hours=1),
    }
    return await store.console_save(draft.id, **(values | changes))


@pytest.mark.asyncio
async def test_a_save_changes_the_content_and_counts_a_version(store: Store) -> None:
    draft = await _draft(store)
    model = json.dumps({"header": {"number": "NL-1b"}})
    saved = await _save(store, draft, number="NL-1b", type_code="657", import_country="UG",
                        commodity=None, model=model, user="clerk2")  # fmt: skip
    assert saved == ConsoleCertificate(
        id=draft.id, number="NL-1b", type_code="657", state="draft", import_country="UG",
        commodity=None, model=model, drafted_by="clerk", updated_by="clerk2",
        created_at=T0, updated_at=T0 + timedelta(hours=1), reason=None, message=None,
        version=2, replaces=None,
    )  # fmt: skip
    assert await store.console_get(draft.id) == saved
    trail = await store.console_audit(certificate=draft.id)
    assert [(e.action, e.user, e.at) for e in trail] == [
        ("created", "clerk", T0),
        ("saved", "clerk2", T0 + timedelta(hours=1)),
    ]


@pytest.mark.asyncio
async def test_a_stale_version_is_a_conflict_and_writes_nothing(store: Store) -> None:
    draft = await _draft(store)
    saved = await _save(store, draft, commodity="Roses")
    with pytest.raises(ConsoleConflictError, match="at version 2, not 1") as refused:
        await _save(store, draft, commodity="Tulips")  # draft is the version-1 copy
    assert refused.value.current == saved
    await _nothing_changed(store, saved)
    with pytest.raises(ConsoleConflictError, match="at version 2, not 1"):
        await store.console_transition(
            draft.id, version=1, from_states=["draft"], to_state="submitted",
            action="submitted", user="clerk", now=T0,
        )  # fmt: skip
    await _nothing_changed(store, saved)


@pytest.mark.asyncio
async def test_a_state_that_allows_no_such_change_is_a_conflict(store: Store) -> None:
    draft = await _draft(store)
    issued = await store.console_transition(
        draft.id, version=1, from_states=["draft"], to_state="issued", action="issued",
        user="officer", now=T0,
    )  # fmt: skip
    with pytest.raises(ConsoleConflictError, match="is issued, which allows no such change"):
        await _save(store, issued, commodity="changed after issue")
    with pytest.raises(ConsoleConflictError, match=r"only from draft, submitted"):
        await store.console_transition(
            draft.id, version=2, from_states=["draft", "submitted"], to_state="approved",
            action="approved", user="officer", now=T0,
        )  # fmt: skip
    await _nothing_changed(store, issued)


@pytest.mark.asyncio
async def test_a_change_to_an_unknown_certificate_is_not_found(store: Store) -> None:
    draft = await _draft(store)
    with pytest.raises(NotFoundError, match="no console certificate 4242"):
        await store.console_save(
            4242, version=1, editable_states=["draft"], number="NL-9", type_code="851",
            import_country=None, commodity=None, model=MODEL, user="clerk", now=T0,
        )  # fmt: skip
    with pytest.raises(NotFoundError, match="no console certificate 4242"):
        await store.console_transition(
            4242, version=1, from_states=["draft"], to_state="submitted", action="submitted",
            user="clerk", now=T0,
        )  # fmt: skip
    await _nothing_changed(store, draft)


@pytest.mark.asyncio
async def test_saving_under_a_number_another_certificate_has_is_a_conflict(store: Store) -> None:
    first = await _draft(store, "NL-1")
    second = await _draft(store, "NL-2")
    with pytest.raises(ConsoleConflictError, match="'NL-1' is already taken"):
        await _save(store, second, number="NL-1")
    await _nothing_changed(store, second)
    assert (await _save(store, first, number="NL-1", commodity="same number")).version == 2


@pytest.mark.asyncio
async def test_a_transition_sets_state_reason_and_message_and_audits_them(store: Store) -> None:
    draft = await _draft(store)
    queried = await store.console_transition(
        draft.id, version=1, from_states=["draft"], to_state="queried", action="queried",
        user="officer", now=T0 + timedelta(hours=1), reason="Treatment date missing",
        detail={"field": "treatment.date"},
    )  # fmt: skip
    assert (queried.state, queried.reason, queried.version) == (
        "queried", "Treatment date missing", 2
    )  # fmt: skip
    assert (queried.updated_by, queried.updated_at) == ("officer", T0 + timedelta(hours=1))
    message = await _message(store)
    issued = await store.console_transition(
        draft.id, version=2, from_states=["queried"], to_state="issued", action="issued",
        user="officer", now=T0 + timedelta(hours=2), message=message,
    )  # fmt: skip
    assert (issued.state, issued.reason, issued.message, issued.version) == (
        "issued", None, message, 3
    )  # fmt: skip
    withdrawn = await store.console_transition(
        draft.id, version=3, from_states=["issued"], to_state="withdrawn", action="withdrawn",
        user="officer", now=T0 + timedelta(hours=3), reason="Wrong consignee",
    )  # fmt: skip
    assert withdrawn.message == message  # no message given: the sent one stays
    trail = await store.console_audit(certificate=draft.id)
    assert [(e.action, e.detail, e.message) for e in trail] == [
        ("created", None, None),
        ("queried", {"field": "treatment.date", "reason": "Treatment date missing"}, None),
        ("issued", None, None),
        ("withdrawn", {"reason": "Wrong consignee"}, None),
    ]


@pytest.mark.asyncio
async def test_a_transition_to_an_unknown_message_writes_nothing(store: Store) -> None:
    draft = await _draft(store)
    with pytest.raises(NotFoundError, match="no message 777"):
        await store.console_transition(
            draft.id, version=1, from_states=["draft"], to_state="issued", action="issued",
            user="officer", now=T0, message=777,
        )  # fmt: skip
    await _nothing_changed(store, draft)


@pytest.mark.asyncio
async def test_a_change_whose_audit_fails_is_not_committed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit row is written in the change's own transaction: when it cannot be
    written, the change (already applied by its UPDATE) is rolled back with it."""
    draft = await _draft(store)

    def failing(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the audit could not be written")

    monkeypatch.setattr(node.store.console, "_append_audit", failing)
    with pytest.raises(RuntimeError, match="the audit could not be written"):
        await _save(store, draft, commodity="never committed")
    with pytest.raises(RuntimeError, match="the audit could not be written"):
        await store.console_transition(
            draft.id, version=1, from_states=["draft"], to_state="submitted",
            action="submitted", user="clerk", now=T0,
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="the audit could not be written"):
        await _draft(store, "NL-2")
    monkeypatch.undo()
    await _nothing_changed(store, draft)
    assert await store.console_counts() == {"draft": 1}


@pytest.mark.asyncio
async def test_two_stores_saving_the_same_version_one_wins(url: str) -> None:
    """Two processes sharing the database (two engines here): both read version 1 and
    save at once; the compare-and-set in the UPDATE lets exactly one through."""
    first, second = Store.open(url), Store.open(url)
    await first.migrate()
    try:
        draft = await _draft(first)
        for round_ in range(5):
            current = await first.console_get(draft.id)
            results = await asyncio.gather(
                _save(first, current, commodity=f"first {round_}"),
                _save(second, current, commodity=f"second {round_}"),
                return_exceptions=True,
            )
            won = [r for r in results if isinstance(r, ConsoleCertificate)]
            lost = [r for r in results if isinstance(r, ConsoleConflictError)]
            assert (len(won), len(lost)) == (1, 1), results
            assert await first.console_get(draft.id) == won[0]
            assert won[0].version == current.version + 1
        assert len(await first.console_audit(certificate=draft.id)) == 6
    finally:
        await first.close()
        await second.close()


# ---- the audit trail ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_audit_trail_is_appended_to_in_order(store: Store) -> None:
    draft = await _draft(store, at=T0)
    message = await _message(store)
    await store.console_audit_append(
        message=message, user="inspector", action="viewed", now=T0 + timedelta(minutes=1)
    )
    await store.console_audit_append(
        certificate=draft.id, user="officer", action="printed", now=T0 + timedelta(minutes=2),
        detail={"copy": "draft", "pages": 2},
    )  # fmt: skip
    # An earlier clock reading appended later still comes after: append order, not `at`.
    await store.console_audit_append(
        message=message, user="inspector", action="rejected", now=T0,
        detail={"reason": "Pest found: Thrips palmi", "ملاحظة": "نعم"},
    )  # fmt: skip
    by_message = await store.console_audit(message=message)
    assert [(e.action, e.certificate, e.message) for e in by_message] == [
        ("viewed", None, message),
        ("rejected", None, message),
    ]
    assert by_message[1].detail == {"reason": "Pest found: Thrips palmi", "ملاحظة": "نعم"}
    by_certificate = await store.console_audit(certificate=draft.id)
    assert [(e.action, e.detail) for e in by_certificate] == [
        ("created", None),
        ("printed", {"copy": "draft", "pages": 2}),
    ]
    everything = await store.console_audit_all()
    assert [e.action for e in everything] == ["created", "viewed", "printed", "rejected"]
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert [e.action for e in await store.console_audit_all(limit=2)] == ["created", "viewed"]
    window = await store.console_audit_all(since=T0 + timedelta(minutes=1),
                                           until=T0 + timedelta(minutes=2))  # fmt: skip
    assert [e.action for e in window] == ["viewed"]


def test_the_audit_trail_offers_no_update_or_delete() -> None:
    console_methods = [name for name in dir(Store) if name.startswith("console_")]
    assert "console_audit_append" in console_methods
    changing = [m for m in console_methods if any(w in m for w in ("delete", "remove", "edit"))]
    assert changing == []
    assert [m for m in console_methods if "audit" in m] == [
        "console_audit", "console_audit_all", "console_audit_append"
    ]  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("subject", [{}, {"certificate": 1, "message": 1}], ids=["neither", "both"])
async def test_an_audit_entry_names_exactly_one_subject(
    store: Store, subject: dict[str, Any]
) -> None:
    await _draft(store)
    with pytest.raises(ValueError, match="exactly one of certificate and message"):
        await store.console_audit_append(**subject, user="u", action="viewed", now=T0)
    with pytest.raises(ValueError, match="exactly one of certificate and message"):
        await store.console_audit(**subject)
    assert len(await store.console_audit_all()) == 1


@pytest.mark.asyncio
async def test_an_audit_entry_on_nothing_that_exists_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no console certificate 31"):
        await store.console_audit_append(certificate=31, user="u", action="viewed", now=T0)
    with pytest.raises(NotFoundError, match="no message 31"):
        await store.console_audit_append(message=31, user="u", action="viewed", now=T0)
    assert await store.console_audit_all() == []


@pytest.mark.asyncio
async def test_a_stored_detail_that_is_no_json_object_is_given_as_text(store: Store) -> None:
    """Written by hand into the database: the export of the trail still reads."""
    draft = await _draft(store)
    damaged = '{"reason": "cut'

    def damage(connection: Connection) -> None:
        connection.execute(text("UPDATE console_audit SET detail = :d"), {"d": damaged})

    await store._db.write(damage)
    (entry,) = await store.console_audit(certificate=draft.id)
    assert entry.detail == {"text": damaged}


# ---- the login lockout ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_repeated_failures_lock_a_name_until_the_lock_runs_out(store: Store) -> None:
    lock_for = timedelta(minutes=15)
    for attempt in range(4):
        at = T0 + timedelta(seconds=attempt)
        assert await store.console_login_failed("alice", now=at, limit=5, lock_for=lock_for) is None
        assert await store.console_locked_until("alice", now=at) is None
    fifth = T0 + timedelta(seconds=4)
    until = await store.console_login_failed("alice", now=fifth, limit=5, lock_for=lock_for)
    assert until == fifth + lock_for
    assert await store.console_locked_until("alice", now=fifth) == until
    assert await store.console_locked_until("alice", now=until - timedelta(seconds=1)) == until
    # A failure while locked says the lock stands, and starts a new count.
    assert await store.console_login_failed("alice", now=fifth, limit=5, lock_for=lock_for) == (
        until
    )
    assert await store.console_locked_until("alice", now=until) is None  # it has run out
    assert await store.console_locked_until("bob", now=fifth) is None  # names apart
    # The count restarted at the lock: four more (with the one above) lock it again.
    later = until + timedelta(minutes=1)
    for _ in range(3):
        assert (
            await store.console_login_failed("alice", now=later, limit=5, lock_for=lock_for) is None
        )
    assert await store.console_login_failed("alice", now=later, limit=5, lock_for=lock_for) == (
        later + lock_for
    )


@pytest.mark.asyncio
async def test_a_success_starts_the_count_again(store: Store) -> None:
    lock_for = timedelta(minutes=5)
    for _ in range(2):
        assert await store.console_login_failed("carol", now=T0, limit=3, lock_for=lock_for) is None
    await store.console_login_succeeded("carol")
    await store.console_login_succeeded("never-failed")  # no row: nothing to reset
    for _ in range(2):
        assert await store.console_login_failed("carol", now=T0, limit=3, lock_for=lock_for) is None
    assert await store.console_login_failed("carol", now=T0, limit=3, lock_for=lock_for) == (
        T0 + lock_for
    )


@pytest.mark.asyncio
async def test_names_no_user_has_are_counted_too(store: Store) -> None:
    """Someone guessing names is locked out of each name guessed, as of a real one's."""
    for name in ("admin", "root", "x" * 64, "مدير", "ADMIN"):
        assert await store.console_login_failed(name, now=T0, limit=1, lock_for=timedelta(1)) == (
            T0 + timedelta(1)
        )
        assert await store.console_locked_until(name, now=T0) == T0 + timedelta(1)
    assert await store.console_locked_until("Admin", now=T0) is None  # names are exact


@pytest.mark.asyncio
async def test_failures_counted_at_once_from_two_stores_are_all_counted(url: str) -> None:
    """Two processes counting one name's failures at once: the count goes up in SQL,
    so none is lost, and exactly the last one reaches the limit."""
    first, second = Store.open(url), Store.open(url)
    await first.migrate()
    try:
        lock_for = timedelta(minutes=10)
        results = await asyncio.gather(
            *(
                (first if i % 2 else second).console_login_failed(
                    "mallory", now=T0, limit=20, lock_for=lock_for
                )
                for i in range(20)
            )
        )
        assert results.count(T0 + lock_for) == 1
        assert results.count(None) == 19
        assert await second.console_locked_until("mallory", now=T0) == T0 + lock_for
    finally:
        await first.close()
        await second.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("user", "limit", "lock_for", "said"),
    [
        ("x" * 65, 5, timedelta(1), "user is 65 characters long, more than 64"),
        ("", 5, timedelta(1), "user must not be empty"),
        (None, 5, timedelta(1), "user must be text"),
        ("a\x00b", 5, timedelta(1), "NUL"),
        ("\udc80", 5, timedelta(1), "unpaired surrogate"),
        ("alice", 0, timedelta(1), "limit must be a whole number from 1"),
        ("alice", True, timedelta(1), "limit must be a whole number from 1"),
        ("alice", 5, timedelta(0), "lock_for must be a positive timedelta"),
        ("alice", 5, 900, "lock_for must be a positive timedelta"),
        ("alice", 5, timedelta.max, "past the last date"),
    ],
)
async def test_a_lockout_call_with_bad_values_counts_nothing(
    store: Store, user: Any, limit: Any, lock_for: Any, said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        await store.console_login_failed(user, now=T0, limit=limit, lock_for=lock_for)
    assert await store.console_login_failed("alice", now=T0, limit=1, lock_for=timedelta(1))
    with pytest.raises(ValueError, match="user"):
        await store.console_locked_until("x" * 65, now=T0)
    with pytest.raises(ValueError, match="user"):
        await store.console_login_succeeded("x" * 65)


# ---- hostile values ---------------------------------------------------------------------


_GOOD: dict[str, Any] = {
    "number": "NL-1",
    "type_code": "851",
    "import_country": "KE",
    "commodity": "Cut roses",
    "model": MODEL,
    "user": "clerk",
    "now": T0,
}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("number", "N" * 129, "number is 129 characters long, more than 128"),
        ("number", "N" * 1_000_000, "more than 128"),
        ("number", "", "number must not be empty"),
        ("number", 42, "number must be text, not int"),
        ("number", b"NL-1", "number must be text, not bytes"),
        ("number", "NL\x00-1", "NUL"),
        ("number", "NL-\ud800", "unpaired surrogate"),
        ("type_code", "999", "type_code must be one of 851, 657"),
        ("type_code", None, "type_code must be one of"),
        ("import_country", "ke", "ISO 3166-1 alpha-2 code in capitals"),
        ("import_country", "KEN", "ISO 3166-1 alpha-2"),
        ("import_country", "ÑL", "ISO 3166-1 alpha-2"),
        ("import_country", "K\n", "ISO 3166-1 alpha-2"),
        ("import_country", "", "ISO 3166-1 alpha-2"),
        ("commodity", "c" * 257, "commodity is 257 characters long, more than 256"),
        ("commodity", 3.5, "commodity must be text"),
        ("model", "not json", "model is not JSON text"),
        ("model", "[1, 2]", "model is not a JSON object"),
        ("model", "[" * 200_000, "model is not JSON text"),
        ("model", r'{"a": "\ud800"}', None),  # an escape in JSON text, not a surrogate: kept
        ("model", {"header": {}}, "model must be text, not dict"),
        ("user", "u" * 65, "user is 65 characters long"),
        ("user", "", "user must not be empty"),
        ("now", datetime(2026, 3, 1, 9, 0), "now must be an aware datetime"),
        ("now", "2026-03-01T09:00Z", "now must be an aware datetime"),
    ],
)
async def test_a_create_with_bad_values_writes_nothing(
    store: Store, field: str, value: Any, said: str | None
) -> None:
    if said is None:
        created = await store.console_create(**(_GOOD | {field: value}))
        assert (await store.console_get(created.id)).model == value
        return
    with pytest.raises(ConsoleInputError, match=said) as refused:
        await store.console_create(**(_GOOD | {field: value}))
    assert isinstance(refused.value, InputError) and isinstance(refused.value, ValueError)
    assert len(str(refused.value)) < 200  # a huge value is not echoed back
    assert await store.console_counts() == {}
    assert await store.console_audit_all() == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"version": 0}, "version must be a whole number from 1"),
        ({"version": True}, "version must be a whole number from 1"),
        ({"version": 2**40}, "version must be a whole number from 1"),
        ({"version": "1"}, "version must be a whole number from 1"),
        ({"editable_states": "draft"}, "editable_states must be a collection of states"),
        ({"editable_states": []}, "editable_states names no state"),
        ({"editable_states": ["d" * 17]}, "editable_states is 17 characters long"),
        ({"editable_states": [None]}, "editable_states must be text"),
        ({"number": "N" * 129}, "more than 128"),
        ({"model": "[]"}, "model is not a JSON object"),
    ],
)
async def test_a_save_with_bad_values_writes_nothing(
    store: Store, changes: dict[str, Any], said: str
) -> None:
    draft = await _draft(store)
    with pytest.raises(ConsoleInputError, match=said):
        await _save(store, draft, **changes)
    await _nothing_changed(store, draft)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"to_state": "s" * 17}, "to_state is 17 characters long, more than 16"),
        ({"to_state": ""}, "to_state must not be empty"),
        ({"action": "a" * 33}, "action is 33 characters long, more than 32"),
        ({"from_states": ("draft" for _ in range(1))}, "must be a collection of states"),
        ({"reason": "why\x00"}, "reason contains a NUL character"),
        ({"reason": b"why"}, "reason must be text"),
        ({"detail": ["not", "a", "dict"]}, "detail must be a dict, not list"),
        ({"detail": {1: "int key"}}, "detail must have text keys only"),
        ({"detail": {"when": T0}}, "detail cannot be stored as JSON"),
        ({"detail": {"n": float("nan")}}, "detail cannot be stored as JSON"),
        ({"detail": {"s": "\udfff"}}, "detail contains an unpaired surrogate"),
        ({"reason": "\ud83d"}, "reason contains an unpaired surrogate"),
        ({"message": "1"}, "message must be a whole number"),
        ({"user": 7}, "user must be text, not int"),
    ],
)
async def test_a_transition_with_bad_values_writes_nothing(
    store: Store, changes: dict[str, Any], said: str
) -> None:
    draft = await _draft(store)
    values: dict[str, Any] = {
        "version": 1, "from_states": ["draft"], "to_state": "submitted",
        "action": "submitted", "user": "clerk", "now": T0,
    }  # fmt: skip
    with pytest.raises(ConsoleInputError, match=said):
        await store.console_transition(draft.id, **(values | changes))
    await _nothing_changed(store, draft)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("filters", "said"),
    [
        ({"states": "draft"}, "states must be a collection of states"),
        ({"number_contains": "N" * 129}, "number_contains is 129 characters long"),
        ({"number_contains": 5}, "number_contains must be text"),
        ({"commodity_contains": "x\x00"}, "NUL"),
        ({"country": "nl"}, "country must be an ISO 3166-1 alpha-2"),
        ({"since": datetime(2026, 1, 1)}, "since must be an aware datetime"),
        ({"until": "yesterday"}, "until must be an aware datetime"),
        ({"limit": 0}, "limit must be a whole number from 1"),
        ({"limit": -5}, "limit must be a whole number from 1"),
        ({"limit": 2**64}, "limit must be a whole number from 1"),
        ({"offset": -1}, "offset must be a whole number from 0"),
    ],
)
async def test_a_list_with_bad_filters_is_refused(
    store: Store, filters: dict[str, Any], said: str
) -> None:
    with pytest.raises(ConsoleInputError, match=said):
        await store.console_list(**filters)


@pytest.mark.asyncio
async def test_unicode_text_round_trips(store: Store) -> None:
    model = json.dumps({"note": "Ωμέγα \u200f RTL mark, 🌹, e\u0301"}, ensure_ascii=False)
    created = await store.console_create(
        number="NL-🌹-1", type_code="657", import_country=None,
        commodity="ورد مقطوف \u200f🌹", model=model, user="مُوَظَّف", now=T0,
    )  # fmt: skip
    assert await store.console_get(created.id) == created
    assert (created.number, created.commodity, created.model, created.drafted_by) == (
        "NL-🌹-1", "ورد مقطوف \u200f🌹", model, "مُوَظَّف"
    )  # fmt: skip


# ---- migration 0009 -----------------------------------------------------------------------


def _to(revision: str, *, down: bool = False) -> Any:
    def migrate(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    return migrate


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


@pytest.mark.asyncio
async def test_0009_adds_the_console_tables_and_takes_them_away_again(url: str) -> None:
    db = Database.open(url)
    try:
        await db.write(_to("0008"))
        assert not set(TABLES) & await db.read(_tables)
        await db.write(
            lambda c: c.execute(
                text(
                    "INSERT INTO messages (direction, message_id, sender, recipient,"
                    " certificate_number, certificate_type, certificate_status, content_digest,"
                    " payload, state, created_at, kind) VALUES ('in', 'm-0', 'KE', 'NL',"
                    " 'KE-0', '851', '70', 'sha256:0', :p, 'received', :at, 'certificate')"
                ),
                {"p": b"<x/>", "at": T0},
            )
        )
        await db.write(_to("0009"))
        assert set(TABLES) <= await db.read(_tables)
        indexes = await db.read(
            lambda c: {
                i["name"]
                for t in TABLES
                for i in inspect(c).get_indexes(t)
            }
        )  # fmt: skip
        assert {
            "ix_console_certificates_state",
            "ix_console_certificates_updated",
            "ix_console_audit_certificate",
            "ix_console_audit_message",
        } <= indexes
    finally:
        await db.close()

    store = Store.open(url)
    try:
        draft = await _draft(store)
        await store.console_audit_append(message=1, user="inspector", action="viewed", now=T0)
        assert await store.console_login_failed("x", now=T0, limit=1, lock_for=timedelta(1))
        assert (await store.console_get(draft.id)).number == "NL-1"
    finally:
        await store.close()

    db = Database.open(url)
    try:
        await db.write(_to("0008", down=True))
        assert not set(TABLES) & await db.read(_tables)
        kept = await db.read(lambda c: c.execute(text("SELECT message_id FROM messages")).all())
        assert [tuple(r) for r in kept] == [("m-0",)]
        await db.write(_to("head"))  # and up again, over what the downgrade left
        assert set(TABLES) <= await db.read(_tables)
    finally:
        await db.close()


@pytest.mark.asyncio
async def test_the_migrated_console_tables_are_the_schema_modules(url: str) -> None:
    """Migration 0009 creates what node.store.schema declares: no table, column,
    index, key or type of the console differs between the two."""
    db = Database.open(url)
    try:
        await db.write(_to("head"))

        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return [d for d in compare_metadata(context, metadata) if "console_" in repr(d)]

        assert await db.read(differences) == []
    finally:
        await db.close()
