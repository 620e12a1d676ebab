"""The officer console's tables (issue 15): the certificates officers draft and issue,
their append-only audit trail, and the failed-login counts behind the lockout.

Every change to a certificate is a compare-and-set: the UPDATE's WHERE clause names the
version the officer read and the states the change may start from, so two officers (or
two processes sharing one PostgreSQL store) never overwrite each other, and the audit
row that records the change is written in the same transaction, so a change without
its audit, or an audit of a change that was refused, never commits. Failed logins are
counted with an increment in SQL, never read-then-written, for the same reason.

The console's writes are few (an officer's clicks) and not group-committed: like the
webhooks' cursors (`webhooks`), each is its own transaction through `Database.write`,
which on SQLite runs on the store's one thread, the single writer.

Values are checked before anything is written (`ConsoleInputError`): the column bounds
hold on SQLite too, which does not enforce them, and text that PostgreSQL would refuse
(NUL, unpaired surrogates) is refused on both alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from node.errors import InputError
from node.store.base import StoreBase
from node.store.database import StoreError
from node.store.records import NotFoundError
from node.store.schema import (
    console_audit,
    console_certificates,
    console_logins,
    console_settings,
    messages,
)

T = TypeVar("T")

TYPE_CODES = ("851", "657")  # a phytosanitary certificate; one for re-export
_COUNTRY = re.compile(r"[A-Z]{2}")
# The bounds of the columns (node.store.schema), checked here since SQLite keeps longer.
_NUMBER, _TYPE, _STATE, _COMMODITY, _USER, _ACTION = 128, 8, 16, 256, 64, 32
# Ids are BIGINT on PostgreSQL, versions INTEGER: a larger number is no row's.
_MAX_ID = 2**63 - 1
_MAX_VERSION = 2**31 - 1
# LIKE's escape character in the contains-filters.
_ESCAPE = "\\"

_certificates = console_certificates


class ConsoleInputError(InputError, ValueError):
    """A value the console's store cannot keep as given (wrong type, too long, text
    PostgreSQL refuses): nothing was written. A ValueError too, for callers that check
    their own input first and treat this as a programming error."""


class ConsoleConflictError(InputError):
    """A change refused because the certificate is not as the caller saw it: its number
    is taken, someone changed it since (a stale version), or its state does not allow
    the change. Nothing was written; `current` is the certificate as it stands now,
    when the refusal is about one."""

    def __init__(self, message: str, current: ConsoleCertificate | None = None) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True, slots=True)
class ConsoleCertificate:
    """A certificate in the console, as stored: `model` is its JSON model text
    (docs/certificate-json.md); `version` counts its changes from 1; `message` is the
    sent certificate once issued; `replaces` the console certificate it replaces."""

    id: int
    number: str
    type_code: str
    state: str
    import_country: str | None
    commodity: str | None
    model: str
    drafted_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime
    reason: str | None
    message: int | None
    version: int
    replaces: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what, when: to a console certificate, or to a received message."""

    id: int
    certificate: int | None
    message: int | None
    at: datetime
    user: str
    action: str
    detail: dict[str, Any] | None


class ConsoleStore(StoreBase):
    """The console's certificates, their audit trail, and the login lockout."""

    # ---- certificates -------------------------------------------------------------

    async def console_create(
        self,
        *,
        number: str,
        type_code: str,
        import_country: str | None,
        commodity: str | None,
        model: str,
        user: str,
        now: datetime,
        replaces: int | None = None,
    ) -> ConsoleCertificate:
        """A new draft at version 1, and its audit entry "created" (naming what it
        replaces, if it replaces a certificate). ConsoleConflictError if the number is
        taken; NotFoundError if `replaces` is no console certificate."""
        replaced = None if replaces is None else _pk("replaces", replaces, of="console certificate")
        values = {
            **_content(number, type_code, import_country, commodity, model),
            "state": "draft",
            "drafted_by": _text("user", user, limit=_USER),
            "updated_by": user,
            "created_at": _moment("now", now),
            "updated_at": now,
            "reason": None,
            "message": None,
            "version": 1,
            "replaces": replaced,
        }
        detail = None if replaced is None else _json_text("detail", {"replaces": replaced})

        def create(conn: Connection) -> ConsoleCertificate:
            if replaced is not None and _certificate_row(conn, replaced) is None:
                raise NotFoundError(f"no console certificate {replaced} to replace")
            _refuse_taken(conn, number, other_than=None)
            row = conn.execute(
                insert(_certificates).values(values).returning(*_certificates.c)
            ).one()
            _append_audit(conn, certificate=row.id, message=None, at=now, user=user,
                          action="created", detail=detail)  # fmt: skip
            return _certificate(row)

        return await self._write_console(create, number=number)

    async def console_get(self, pk: int) -> ConsoleCertificate:
        """Console certificate `pk`; NotFoundError if there is none."""
        key = _pk("pk", pk, of="console certificate")
        row = await self._db.read(lambda conn: _certificate_row(conn, key))
        if row is None:
            raise NotFoundError(f"no console certificate {pk}")
        return _certificate(row)

    async def console_get_by_message(self, message_pk: int) -> ConsoleCertificate | None:
        """The console certificate sent as message `message_pk` (the newest, should two
        name it), or None."""
        try:
            key = _pk("message_pk", message_pk, of="message")
        except NotFoundError:
            return None
        query = (
            select(_certificates)
            .where(_certificates.c.message == key)
            .order_by(_certificates.c.id.desc())
            .limit(1)
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return None if row is None else _certificate(row)

    async def console_list(
        self,
        *,
        states: Collection[str] | None = None,
        number_contains: str | None = None,
        country: str | None = None,
        commodity_contains: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ConsoleCertificate]:
        """Console certificates, the most recently changed first. `states`: in one of
        them (none: no certificate); the contains-filters: a case-insensitive substring,
        % and _ taken literally; `country`: the importing country; `since` (inclusive)
        and `until` (exclusive): when last changed."""
        where: list[ColumnElement[bool]] = []
        if states is not None:
            where.append(_certificates.c.state.in_(_states("states", states, empty_ok=True)))
        if number_contains is not None:
            text = _text("number_contains", number_contains, limit=_NUMBER, empty_ok=True)
            where.append(_certificates.c.number.ilike(_contains(text), escape=_ESCAPE))
        if country is not None:
            where.append(_certificates.c.import_country == _country("country", country))
        if commodity_contains is not None:
            text = _text("commodity_contains", commodity_contains, limit=_COMMODITY,
                         empty_ok=True)  # fmt: skip
            where.append(_certificates.c.commodity.ilike(_contains(text), escape=_ESCAPE))
        if since is not None:
            where.append(_certificates.c.updated_at >= _moment("since", since))
        if until is not None:
            where.append(_certificates.c.updated_at < _moment("until", until))
        query = (
            select(_certificates)
            .where(*where)
            .order_by(_certificates.c.updated_at.desc(), _certificates.c.id.desc())
            .limit(_count("limit", limit, least=1))
            .offset(_count("offset", offset, least=0))
        )
        return [_certificate(row) for row in await self._rows(query)]

    async def console_counts(self) -> dict[str, int]:
        """How many console certificates are in each state (states with none left out)."""
        query = select(_certificates.c.state, func.count().label("n")).group_by(
            _certificates.c.state
        )
        return {row.state: row.n for row in await self._rows(query)}

    async def console_save(
        self,
        pk: int,
        *,
        version: int,
        editable_states: Collection[str],
        number: str,
        type_code: str,
        import_country: str | None,
        commodity: str | None,
        model: str,
        user: str,
        now: datetime,
    ) -> ConsoleCertificate:
        """New content for certificate `pk`, if it is still at `version` and in one of
        `editable_states` (else ConsoleConflictError, as for a number taken), with its
        audit entry "saved"; the version goes up by one."""
        key = _pk("pk", pk, of="console certificate")
        expected = _version(version)
        allowed = _states("editable_states", editable_states)
        values = {
            **_content(number, type_code, import_country, commodity, model),
            "updated_by": _text("user", user, limit=_USER),
            "updated_at": _moment("now", now),
        }

        def save(conn: Connection) -> ConsoleCertificate:
            _refuse_taken(conn, number, other_than=key)
            row = _compare_and_set(conn, key, expected, allowed, values)
            _append_audit(conn, certificate=key, message=None, at=now, user=user,
                          action="saved", detail=None)  # fmt: skip
            return _certificate(row)

        return await self._write_console(save, number=number)

    async def console_transition(
        self,
        pk: int,
        *,
        version: int,
        from_states: Collection[str],
        to_state: str,
        action: str,
        user: str,
        now: datetime,
        reason: str | None = None,
        message: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> ConsoleCertificate:
        """Certificate `pk` moved to `to_state`, if it is still at `version` and in one
        of `from_states` (else ConsoleConflictError). Its reason becomes `reason` (None
        clears it), its message `message` if one is given; the audit entry `action`
        carries `detail` with the reason added. NotFoundError for an unknown message."""
        key = _pk("pk", pk, of="console certificate")
        expected = _version(version)
        allowed = _states("from_states", from_states)
        values: dict[str, Any] = {
            "state": _text("to_state", to_state, limit=_STATE),
            "reason": _text("reason", reason, optional=True, empty_ok=True),
            "updated_by": _text("user", user, limit=_USER),
            "updated_at": _moment("now", now),
        }
        if message is not None:
            values["message"] = _pk("message", message, of="message")
        _text("action", action, limit=_ACTION)
        audited = _detail(detail)
        if reason is not None:
            audited = {**(audited or {}), "reason": reason}
        # As JSON now: what is audited is what the caller handed in, whatever it does
        # with its dict while the write waits.
        audited_text = _json_text("detail", audited)

        def transition(conn: Connection) -> ConsoleCertificate:
            if message is not None and not _message_exists(conn, message):
                raise NotFoundError(f"no message {message} in the store")
            row = _compare_and_set(conn, key, expected, allowed, values)
            _append_audit(conn, certificate=key, message=None, at=now, user=user,
                          action=action, detail=audited_text)  # fmt: skip
            return _certificate(row)

        return await self._write_console(transition)

    # ---- the audit trail ----------------------------------------------------------

    async def console_audit_append(
        self,
        *,
        certificate: int | None = None,
        message: int | None = None,
        user: str,
        action: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """An audit entry on a console certificate or (for a received certificate) on
        a message: exactly one of them. NotFoundError if it names neither that exists."""
        certificate, message = _one_subject(certificate, message)
        _text("user", user, limit=_USER)
        _text("action", action, limit=_ACTION)
        _moment("now", now)
        detail_text = _json_text("detail", _detail(detail))

        def append(conn: Connection) -> None:
            if certificate is not None and _certificate_row(conn, certificate) is None:
                raise NotFoundError(f"no console certificate {certificate}")
            if message is not None and not _message_exists(conn, message):
                raise NotFoundError(f"no message {message} in the store")
            _append_audit(conn, certificate=certificate, message=message, at=now, user=user,
                          action=action, detail=detail_text)  # fmt: skip

        await self._write_console(append)

    async def console_audit(
        self, *, certificate: int | None = None, message: int | None = None
    ) -> list[AuditEntry]:
        """The audit trail of a console certificate or of a message (exactly one of
        them), oldest first."""
        certificate, message = _one_subject(certificate, message)
        column = console_audit.c.certificate if certificate is not None else console_audit.c.message
        query = (
            select(console_audit)
            .where(column == (certificate if certificate is not None else message))
            .order_by(console_audit.c.id)
        )
        return [_audit_entry(row) for row in await self._rows(query)]

    async def console_audit_all(
        self, *, since: datetime | None = None, until: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """The whole trail, oldest first, for its export: `since` inclusive, `until`
        exclusive."""
        where: list[ColumnElement[bool]] = []
        if since is not None:
            where.append(console_audit.c.at >= _moment("since", since))
        if until is not None:
            where.append(console_audit.c.at < _moment("until", until))
        query = (
            select(console_audit)
            .where(*where)
            .order_by(console_audit.c.id)
            .limit(_count("limit", limit, least=1))
        )
        return [_audit_entry(row) for row in await self._rows(query)]

    # ---- the login lockout --------------------------------------------------------

    async def console_login_failed(
        self, user: str, *, now: datetime, limit: int, lock_for: timedelta
    ) -> datetime | None:
        """Counts a failed login for the name `user` (whether or not such a user
        exists); the `limit`th in a row locks the name until `now + lock_for` and starts
        the count again. Returns when the lock ends if the name is locked, else None."""
        name = _text("user", user, limit=_USER)
        _moment("now", now)
        threshold = _count("limit", limit, least=1)
        if not isinstance(lock_for, timedelta) or lock_for <= timedelta(0):
            raise ConsoleInputError("lock_for must be a positive timedelta")
        try:
            lock_ends = now + lock_for
        except OverflowError:
            raise ConsoleInputError("lock_for reaches past the last date there is") from None

        def failed(conn: Connection) -> datetime | None:
            conn.execute(_insert_ignoring(conn).values(user=name, failures=0))
            # The count goes up in SQL: two processes counting at once both count.
            failures, locked_until = conn.execute(
                update(console_logins)
                .where(console_logins.c.user == name)
                .values(failures=console_logins.c.failures + 1, last_failure=now)
                .returning(console_logins.c.failures, console_logins.c.locked_until)
            ).one()
            if failures >= threshold:
                conn.execute(
                    update(console_logins)
                    .where(console_logins.c.user == name)
                    .values(failures=0, locked_until=lock_ends)
                )
                return lock_ends
            locked: datetime | None = locked_until
            return locked if locked is not None and locked > now else None

        return await self._write_console(failed)

    async def console_use_totp_step(self, user: str, step: int) -> bool:
        """Take TOTP time step `step` for `user`: True the first time, False for a step
        at or before the last one taken (a code replayed, even on another process)."""
        name = _text("user", user, limit=_USER)
        if type(step) is not int or not 0 <= step <= _MAX_ID:
            raise ConsoleInputError("step: a whole number of time steps")

        def take(conn: Connection) -> bool:
            conn.execute(_insert_ignoring(conn).values(user=name, failures=0))
            # Compare-and-set in SQL: of two sign-ins with one code, one takes it.
            taken = conn.execute(
                update(console_logins)
                .where(
                    console_logins.c.user == name,
                    (console_logins.c.totp_step.is_(None)) | (console_logins.c.totp_step < step),
                )
                .values(totp_step=step)
            )
            return bool(taken.rowcount)

        return await self._write_console(take)

    async def console_set_language(self, user: str, language: str) -> None:
        """Keep the language `user` chose (a code of at most 8 letters)."""
        name = _text("user", user, limit=_USER)
        if not isinstance(language, str) or not language.isascii() or not language.isalpha() \
                or not 0 < len(language) <= 8:  # fmt: skip
            raise ConsoleInputError("language: a code of one to eight letters")

        def keep(conn: Connection) -> None:
            conn.execute(_insert_ignoring(conn).values(user=name, failures=0))
            conn.execute(
                update(console_logins)
                .where(console_logins.c.user == name)
                .values(language=language)
            )

        await self._write_console(keep)

    async def console_language(self, user: str) -> str | None:
        """The language `user` last chose, if any."""
        name = _text("user", user, limit=_USER)
        query = select(console_logins.c.language).where(console_logins.c.user == name)
        found: str | None = await self._db.read(
            lambda conn: conn.execute(query).scalar_one_or_none()
        )
        return found

    async def console_settings(self) -> dict[str, str]:
        """The console's settings an admin has set (name -> value)."""
        query = select(console_settings.c.name, console_settings.c.value)
        return {row.name: row.value for row in await self._rows(query)}

    async def console_set_settings(self, values: dict[str, str]) -> None:
        """Set the console's settings `values` in one transaction (an empty value removes
        the setting: its default applies again)."""
        for name, value in values.items():
            _text("setting name", name, limit=64)
            _text("setting value", value, limit=500, empty_ok=True)

        def put(conn: Connection) -> None:
            for name, value in values.items():
                conn.execute(delete(console_settings).where(console_settings.c.name == name))
                if value:
                    conn.execute(insert(console_settings).values(name=name, value=value))

        await self._write_console(put)

    async def console_login_succeeded(self, user: str) -> None:
        """A successful login: the failures counted for `user` start again from none."""
        name = _text("user", user, limit=_USER)

        def succeeded(conn: Connection) -> None:
            conn.execute(
                update(console_logins).where(console_logins.c.user == name).values(failures=0)
            )

        await self._write_console(succeeded)

    async def console_locked_until(self, user: str, *, now: datetime) -> datetime | None:
        """When the lock on the name `user` ends, if it is locked at `now`; else None."""
        name = _text("user", user, limit=_USER)
        _moment("now", now)
        query = select(console_logins.c.locked_until).where(console_logins.c.user == name)
        locked: datetime | None = await self._db.read(
            lambda conn: conn.execute(query).scalar_one_or_none()
        )
        return locked if locked is not None and locked > now else None

    async def _write_console(self, fn: Callable[[Connection], T], *, number: str = "") -> T:
        """`fn` in one transaction; a number another process took in the meantime (on
        PostgreSQL, between the check and the insert) as ConsoleConflictError."""
        try:
            return await self._db.write(fn)
        except IntegrityError as e:
            said = str(e.orig)
            if number and ("uq_console_certificates_number" in said
                           or "console_certificates.number" in said):  # fmt: skip
                raise ConsoleConflictError(_taken(number)) from None
            first = said.splitlines()[0] if said else type(e).__name__
            raise StoreError(f"{self.name}: the console's change was refused: {first}") from e


# ---- the SQL the methods run, inside their transactions ----------------------------


def _compare_and_set(
    conn: Connection, pk: int, version: int, allowed: list[str], values: dict[str, Any]
) -> Row[Any]:
    """Apply `values` to certificate `pk` only if it is at `version` and in `allowed`,
    in the UPDATE itself: a concurrent writer's change makes it match no row."""
    row = conn.execute(
        update(_certificates)
        .where(
            _certificates.c.id == pk,
            _certificates.c.version == version,
            _certificates.c.state.in_(allowed),
        )
        .values(**values, version=_certificates.c.version + 1)
        .returning(*_certificates.c)
    ).first()
    if row is not None:
        return row
    current = _certificate_row(conn, pk)
    if current is None:
        raise NotFoundError(f"no console certificate {pk}")
    found = _certificate(current)
    if found.version != version:
        raise ConsoleConflictError(
            f"certificate {found.number} was changed since (it is at version"
            f" {found.version}, not {version}): reload it and try again",
            found,
        )
    raise ConsoleConflictError(
        f"certificate {found.number} is {found.state}, which allows no such change"
        f" (only from {', '.join(allowed)})",
        found,
    )


def _append_audit(
    conn: Connection,
    *,
    certificate: int | None,
    message: int | None,
    at: datetime,
    user: str,
    action: str,
    detail: str | None,
) -> None:
    """One audit row, in the transaction of the change it records; `detail` as JSON."""
    conn.execute(
        insert(console_audit).values(
            certificate=certificate,
            message=message,
            at=at,
            user=user,
            action=action,
            detail=detail,
        )
    )


def _refuse_taken(conn: Connection, number: str, *, other_than: int | None) -> None:
    query = select(_certificates.c.id).where(_certificates.c.number == number)
    if other_than is not None:
        query = query.where(_certificates.c.id != other_than)
    if conn.execute(query.limit(1)).first() is not None:
        raise ConsoleConflictError(_taken(number))


def _taken(number: str) -> str:
    return f"certificate number {number!r} is already taken by another certificate"


def _certificate_row(conn: Connection, pk: int) -> Row[Any] | None:
    return conn.execute(select(_certificates).where(_certificates.c.id == pk)).first()


def _message_exists(conn: Connection, pk: int) -> bool:
    return conn.execute(select(messages.c.id).where(messages.c.id == pk)).first() is not None


def _insert_ignoring(conn: Connection) -> Any:
    """INSERT of a login row that does nothing when the name already has one."""
    # The dialect's module is imported here, once its dialect is in use: a node on SQLite
    # never pays for importing PostgreSQL's (and every node starts faster).
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(console_logins).on_conflict_do_nothing(index_elements=["user"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(console_logins).on_conflict_do_nothing(index_elements=["user"])


def _certificate(row: Row[Any]) -> ConsoleCertificate:
    return ConsoleCertificate(**{name: getattr(row, name) for name in _CERTIFICATE_FIELDS})


_CERTIFICATE_FIELDS = tuple(ConsoleCertificate.__dataclass_fields__)


def _audit_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        certificate=row.certificate,
        message=row.message,
        at=row.at,
        user=row.user,
        action=row.action,
        detail=None if row.detail is None else _decoded(row.detail),
    )


def _decoded(text: str) -> dict[str, Any]:
    """A stored detail; one that is not a JSON object (written by hand into the
    database) is given as its text rather than failing the whole trail's export."""
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return {"text": text}
    return found if isinstance(found, dict) else {"text": text}


# ---- checks on what callers hand in --------------------------------------------------


def _content(
    number: str, type_code: str, import_country: str | None, commodity: str | None, model: str
) -> dict[str, Any]:
    """A certificate's content columns, checked."""
    if type_code not in TYPE_CODES:
        raise ConsoleInputError(
            f"type_code must be one of {', '.join(TYPE_CODES)}, not {_shown(type_code)}"
        )
    text = _text("model", model)
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        raise ConsoleInputError("model is not JSON text") from None
    if not isinstance(parsed, dict):
        raise ConsoleInputError("model is not a JSON object")
    return {
        "number": _text("number", number, limit=_NUMBER),
        "type_code": type_code,
        "import_country": None if import_country is None else _country("import_country",
                                                                          import_country),
        "commodity": _text("commodity", commodity, limit=_COMMODITY, optional=True,
                           empty_ok=True),
        "model": text,
    }  # fmt: skip


def _text(
    name: str,
    value: object,
    *,
    limit: int | None = None,
    optional: bool = False,
    empty_ok: bool = False,
) -> Any:
    """`value` if it is text the store keeps as given on SQLite and PostgreSQL alike."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ConsoleInputError(f"{name} must be text, not {type(value).__name__}")
    if not value and not empty_ok:
        raise ConsoleInputError(f"{name} must not be empty")
    if limit is not None and len(value) > limit:
        raise ConsoleInputError(f"{name} is {len(value)} characters long, more than {limit}")
    if "\x00" in value:
        raise ConsoleInputError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConsoleInputError(f"{name} contains an unpaired surrogate, not text") from None
    return value


def _country(name: str, value: object) -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise ConsoleInputError(
            f"{name} must be an ISO 3166-1 alpha-2 code in capitals, not {_shown(value)}"
        )
    return value


def _states(name: str, states: object, *, empty_ok: bool = False) -> list[str]:
    # A lone string is a collection of its letters: refused rather than matched so.
    if isinstance(states, str | bytes) or not isinstance(states, Collection):
        raise ConsoleInputError(f"{name} must be a collection of states, not {_shown(states)}")
    found = [_text(name, state, limit=_STATE) for state in states]
    if not found and not empty_ok:
        raise ConsoleInputError(f"{name} names no state: no change could ever be allowed")
    return found


def _moment(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConsoleInputError(f"{name} must be an aware datetime, not {_shown(value)}")
    return value


def _pk(name: str, value: object, *, of: str) -> int:
    """A store id; NotFoundError for a number no row can have (the driver would fail)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConsoleInputError(f"{name} must be a whole number, not {_shown(value)}")
    if not 1 <= value <= _MAX_ID:
        raise NotFoundError(f"no {of} {_shown(value)}")
    return value


def _version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_VERSION:
        raise ConsoleInputError(f"version must be a whole number from 1, not {_shown(value)}")
    return value


def _count(name: str, value: object, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= _MAX_ID:
        raise ConsoleInputError(f"{name} must be a whole number from {least}, not {_shown(value)}")
    return value


def _one_subject(certificate: object, message: object) -> tuple[int | None, int | None]:
    """Exactly one of a console certificate and a message, checked."""
    if (certificate is None) == (message is None):
        raise ConsoleInputError("name exactly one of certificate and message")
    if certificate is not None:
        return _pk("certificate", certificate, of="console certificate"), None
    return None, _pk("message", message, of="message")


def _detail(detail: object) -> dict[str, Any] | None:
    if detail is None:
        return None
    if not isinstance(detail, dict):
        raise ConsoleInputError(f"detail must be a dict, not {type(detail).__name__}")
    return detail


def _json_text(name: str, value: dict[str, Any] | None) -> str | None:
    """`value` as the JSON text stored, or ConsoleInputError if it cannot be."""
    if value is None:
        return None
    if not all(isinstance(key, str) for key in value):
        raise ConsoleInputError(f"{name} must have text keys only")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise ConsoleInputError(f"{name} cannot be stored as JSON: {e}") from None
    checked: str = _text(name, text)
    return checked


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its % and _ taken literally."""
    for special in (_ESCAPE, "%", "_"):
        text = text.replace(special, _ESCAPE + special)
    return f"%{text}%"


def _shown(value: object) -> str:
    """A value for an error message, cut short: hostile input can be huge."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
