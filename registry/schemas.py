"""The SPSCertificate schema versions the network accepts, with their transition dates.

A maintainer announces a version (`ephyto registry schemas set D20B --from 2027-01-01`)
and retires one (`... retire D17A --at 2027-07-01`); publish lists them as the directory's
`schemas` (docs/protocol.md, Part C), and a sender picks the highest version both ends
speak among those in force (node/directory/schemas.py).

Kept in `schemas.json` in the registry directory: a maintainer's signed statement,
checked on every read like the status decisions, replaced atomically. Without it the
registry publishes DEFAULT_SCHEMAS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

from node.directory import SchemaVersion
from node.directory.schemas import ordered, schema_version_key
from node.errors import EphytoError, InputError
from node.fileio import write_atomic
from node.identity.enrolment import format_time, parse_time
from registry.governance import Signer, sign_statement, verify_statement
from registry.layout import RegistryFiles
from registry.publish import RegistryError

SCHEMAS_FILE: Final = "schemas.json"
_TYPE: Final = "ephyto-registry-schemas"
# D17A is what every node of this project has spoken from the first release: in force
# from a fixed date in the past (so a new registry's first directory is the same
# everywhere), with no end announced.
DEFAULT_SCHEMAS: Final = (SchemaVersion("D17A", datetime(2020, 1, 1, tzinfo=UTC), None),)


class SchemaChangeRefused(RegistryError, InputError):
    """A schema change that makes no sense (dates, format, no version left in force)."""


def set_version(
    schemas: tuple[SchemaVersion, ...],
    version: str,
    valid_from: datetime,
    valid_until: datetime | None,
    now: datetime,
) -> tuple[SchemaVersion, ...]:
    """`schemas` with `version` in force from `valid_from` until `valid_until` (added, or
    its dates replaced). Pure; SchemaChangeRefused when it makes no sense."""
    if schema_version_key(version) is None:
        raise SchemaChangeRefused(
            f"{version!r} is not a UN/CEFACT SPSCertificate version such as D17A or D20B"
            " (D, two-digit year, release letter)"
        )
    if valid_until is not None and valid_until <= valid_from:
        raise SchemaChangeRefused(
            f"--until {format_time(valid_until)} is not after --from {format_time(valid_from)}"
        )
    entry = SchemaVersion(version, valid_from, valid_until)
    result = _sorted([*(s for s in schemas if s.version != version), entry])
    check_coverage(result, now)
    return result


def retire_version(
    schemas: tuple[SchemaVersion, ...], version: str, at: datetime, now: datetime
) -> tuple[SchemaVersion, ...]:
    """`schemas` with `version` retired at `at`. Pure; SchemaChangeRefused when it is not
    listed, `at` is not after it came into force, or no version would be left in force."""
    entry = next((s for s in schemas if s.version == version), None)
    if entry is None:
        listed = ", ".join(s.version for s in schemas) or "none"
        raise SchemaChangeRefused(f"{version} is not a listed schema version (listed: {listed})")
    if at <= entry.valid_from:
        raise SchemaChangeRefused(
            f"{version} comes into force at {format_time(entry.valid_from)}: retire it after"
            f" that, or set it again with other dates"
        )
    result = _sorted(
        [*(s for s in schemas if s.version != version), replace(entry, valid_until=at)]
    )
    check_coverage(result, now)
    return result


def check_coverage(schemas: tuple[SchemaVersion, ...], now: datetime) -> None:
    """SchemaChangeRefused unless from `now` on some version is in force at every moment.

    A gap would leave senders with no version to write in: every message in it would fail.
    """
    moment = now
    while True:
        covering = [s for s in schemas if s.in_force(moment)]
        if not covering:
            raise SchemaChangeRefused(
                f"no schema version would be in force from {format_time(moment)}: announce"
                " the next version first (`ephyto registry schemas set VERSION --from DATE`)"
            )
        ends = [s.valid_until for s in covering]
        if None in ends:
            return
        moment = max(e for e in ends if e is not None)


def schemas(state: RegistryFiles) -> tuple[SchemaVersion, ...]:
    """The schema versions as recorded (signature checked), DEFAULT_SCHEMAS when none are;
    RegistryError when the file is damaged or was not signed by a maintainer."""
    path = state.root / SCHEMAS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return DEFAULT_SCHEMAS
    # Every key of the current and retired sets: a transition a maintainer announced
    # before a rotation retired them stays valid, as their other statements do.
    body, _ = verify_statement(data, state.statement_maintainers(), str(path))
    try:
        if body.get("type") != _TYPE:
            raise ValueError("not a schema versions statement")
        return _sorted(
            [
                SchemaVersion(
                    str(item["version"]),
                    parse_time(str(item["valid_from"]), f"{path}: valid_from"),
                    None
                    if item["valid_until"] is None
                    else parse_time(str(item["valid_until"]), f"{path}: valid_until"),
                )
                for item in body["schemas"]
            ]
        )
    except (ValueError, KeyError, TypeError, EphytoError) as exc:
        raise RegistryError(f"{path} is damaged ({exc}): restore it from a backup") from None


def record(
    state: RegistryFiles,
    action: str,
    change: tuple[SchemaVersion, ...],
    details: Mapping[str, object],
    now: datetime,
    actor: str,
    signer: Signer | None,
) -> None:
    """Replace schemas.json with `change`, signed by `signer`, and write the audit entry."""
    signer = signer or state.default_signer()
    if signer is None:
        raise RegistryError("no maintainer key is held here: name one with --maintainer, --key")
    statement = {
        "type": _TYPE,
        "time": format_time(now),
        "schemas": [_plain(s) for s in change],
    }
    path = state.root / SCHEMAS_FILE
    write_atomic(path, sign_statement(statement, signer), 0o644)  # never half a file
    state.audit(action, actor, now, {**details, "schemas": statement["schemas"]}, signer)


def set_schema(
    state: RegistryFiles,
    version: str,
    valid_from: datetime,
    valid_until: datetime | None,
    now: datetime,
    actor: str,
    signer: Signer | None = None,
) -> tuple[SchemaVersion, ...]:
    """`registry schemas set`: record it (effective at the next publish); the new list."""
    with state.locked():  # the registry's one lock (registry/layout.py)
        change = set_version(schemas(state), version, valid_from, valid_until, now)
        details = {
            "version": version,
            "valid_from": format_time(valid_from),
            "valid_until": None if valid_until is None else format_time(valid_until),
        }
        record(state, "schemas-set", change, details, now, actor, signer)
    return change


def retire_schema(
    state: RegistryFiles,
    version: str,
    at: datetime,
    now: datetime,
    actor: str,
    signer: Signer | None = None,
) -> tuple[SchemaVersion, ...]:
    """`registry schemas retire`: record it (effective at the next publish); the new list."""
    with state.locked():
        change = retire_version(schemas(state), version, at, now)
        record(
            state, "schemas-retire", change, {"version": version, "at": format_time(at)},
            now, actor, signer,
        )  # fmt: skip
    return change


def _sorted(items: list[SchemaVersion]) -> tuple[SchemaVersion, ...]:
    # Oldest version first; the directory keeps this order. Unordered names were refused
    # on the way in, but a hand-written file may hold one: keep it last, not lose it.
    order = {v: i for i, v in enumerate(ordered(s.version for s in items))}
    return tuple(sorted(items, key=lambda s: (order.get(s.version, len(order)), s.version)))


def _plain(s: SchemaVersion) -> dict[str, str | None]:
    return {
        "version": s.version,
        "valid_from": format_time(s.valid_from),
        "valid_until": None if s.valid_until is None else format_time(s.valid_until),
    }
