"""The officer console's users and roles: `console-users.json` beside node.toml, each
password kept only as its Argon2 hash.

Five roles, as issue 15 names them: an admin manages the users (and, later, the
settings), a clerk drafts certificates, a certifying officer approves and issues them, an
import inspector answers received ones, an auditor reads everything and changes nothing.
`may(role, action)` is that table; `may_issue` adds the one rule that needs more than the
role: whoever drafted a certificate cannot issue it (four eyes).

A user may also have a TOTP secret (node.console.totp), the optional second factor:
`set_totp` gives one, `clear_totp` takes it away. Unlike the password, the secret is
kept in clear, base32 as authenticator apps take it: the server must compute the codes
itself, so no one-way hash will do. It is as sensitive as a password hash (more: whoever
reads it makes valid codes), which is one more reason the file is private to the node's
owner.

The file is written as api-clients.json is (node.identity.api_clients): atomically, mode
0600, under an exclusive lock. A disabled user stays in the file so that the name is
never given to someone else: the console's history will name users.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from node.console.totp import check_secret, valid_secret
from node.errors import ConfigError, InputError
from node.fileio import exclusive_lock, write_atomic

USERS_FILE = "console-users.json"
ACTIONS = ("manage-users", "draft", "approve", "issue", "answer-received", "read")
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
# A few thousand users fit in well under this; a larger file is a wrong file, not users.
MAX_FILE_BYTES = 1024 * 1024
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# What argon2-cffi writes: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (PHC string).
_HASH = re.compile(r"\$argon2(id|i|d)\$v=\d{1,3}\$m=\d{1,10},t=\d{1,10},p=\d{1,10}"
                   r"\$[A-Za-z0-9+/]{8,128}\$[A-Za-z0-9+/]{16,256}")  # fmt: skip
# A stored hash whose parameters ask for more than this would make each login allocate
# gigabytes or run for minutes: a damaged (or planted) file, refused when it is read.
_MAX_MEMORY_KIB = 2 * 1024 * 1024
_MAX_TIME_COST = 64
_MAX_PARALLELISM = 64
_MODE = 0o600

# argon2-cffi's defaults: Argon2id, time_cost 3, memory_cost 64 MiB, parallelism 4, a
# 16-byte salt, a 32-byte hash (RFC 9106's second recommended option). Module-level so
# that tests may swap in a cheaper hasher (tests only: hashing is slow by design); every
# function below looks it up when it is called.
PASSWORD_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Role:
    """A console role: what its users may do, and that in one line for people."""

    name: str
    description: str
    actions: frozenset[str]


ROLES: tuple[Role, ...] = (
    Role("admin", "manages the console's users and settings; drafts and signs nothing",
         frozenset({"manage-users", "read"})),
    Role("clerk", "drafts certificates for an officer to approve",
         frozenset({"draft", "read"})),
    Role("officer", "the certifying officer: approves and issues certificates, never own drafts",
         frozenset({"approve", "issue", "read"})),
    Role("inspector", "the import inspector: receives certificates and answers them",
         frozenset({"answer-received", "read"})),
    Role("auditor", "reads everything, changes nothing",
         frozenset({"read"})),
)  # fmt: skip
ROLE_NAMES = tuple(r.name for r in ROLES)
_ROLES = {r.name: r for r in ROLES}


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """One console user: never the password, only its Argon2 hash (PHC string)."""

    name: str
    role: str
    password_hash: str
    created: datetime
    disabled: datetime | None = None
    # The TOTP second factor's secret (base32, node.console.totp), or None: no second
    # factor. In clear: the server computes the codes (see the module's docstring).
    totp_secret: str | None = None


def may(role: str, action: str) -> bool:
    """Whether a user with `role` may do `action` (one of ACTIONS); InputError for an
    unknown role or action (a typo must not pass as a silent "no")."""
    check_role(role)
    if action not in ACTIONS:
        raise InputError(f"console action {action!r}: must be one of {', '.join(ACTIONS)}")
    return action in _ROLES[role].actions


def may_issue(user_name: str, role: str, drafted_by: str | None) -> bool:
    """Whether `user_name` (with `role`) may issue a certificate `drafted_by` drafted
    (None: drafted outside the console, by the national system's API, say).

    The role must allow issuing, and nobody issues their own draft: the four-eyes rule
    issue 15 asks for.
    """
    return may(role, "issue") and user_name != drafted_by


def check_user_name(name: str) -> None:
    """InputError unless `name` is 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a
    letter or digit (a name that is safe in a path, a log line and a URL)."""
    if _NAME.fullmatch(name) is None:
        raise InputError(
            f"console user name {_shown(name)}: 1 to 64 characters a-z, 0-9, '.', '_', '-',"
            " starting with a letter or digit"
        )


def check_role(role: str) -> None:
    """InputError unless `role` is one of ROLE_NAMES."""
    if role not in _ROLES:
        raise InputError(f"console role {_shown(role)}: must be one of {', '.join(ROLE_NAMES)}")


def check_password_policy(name: str, password: str) -> None:
    """InputError naming the rule `password` breaks for user `name`; never the password.

    At least 12 and at most 1024 characters (the upper bound keeps hashing bounded), not
    the user's name (in any case), not one character repeated, and encodable as UTF-8
    (the bytes Argon2 hashes).
    """
    if len(password) < PASSWORD_MIN:
        raise InputError(f"password: must have at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InputError(f"password: must have at most {PASSWORD_MAX} characters")
    if password.casefold() == name.casefold():
        raise InputError("password: must not be the user's name")
    if len(set(password)) == 1:
        raise InputError("password: must not be one character repeated")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("password: is not valid text (UTF-8)") from None


def hash_password(password: str) -> str:
    """The Argon2 hash (PHC string, salt included) of `password`."""
    return PASSWORD_HASHER.hash(password)


def check_password(user: ConsoleUser, password: str) -> bool:
    """Whether `password` is `user`'s; a disabled user never passes.

    Argon2's verify compares in constant time. A disabled user's hash is verified all
    the same and the answer thrown away, so that the time taken does not tell a guesser
    which accounts are disabled.
    """
    matches: bool
    try:
        matches = PASSWORD_HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError, UnicodeEncodeError):
        matches = False
    return matches and user.disabled is None


def needs_rehash(user: ConsoleUser) -> bool:
    """Whether `user`'s hash was made with other parameters than the hasher's current
    ones (argon2-cffi raised its defaults, say): set the password again at next login."""
    return PASSWORD_HASHER.check_needs_rehash(user.password_hash)


def users_path(node_dir: Path) -> Path:
    return node_dir / USERS_FILE


def list_users(path: Path) -> tuple[ConsoleUser, ...]:
    """The users in `path`, in the order they were added; none if there is no file.
    ConfigError naming the file if it cannot be read or is malformed."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return ()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the console users: {e.strerror or e}") from e
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes: not a console users file")
    return parse_users(data, source=str(path))


def parse_users(data: bytes, *, source: str) -> tuple[ConsoleUser, ...]:
    """The users of a console-users.json document; ConfigError naming what is wrong."""
    try:
        document = json.loads(data.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object")
        entries = document["users"]
        if document.get("version") != 1 or not isinstance(entries, list):
            raise ValueError("expected version 1 and a list of users")
        found = tuple(_user(entry) for entry in entries)
    # RecursionError: JSON nested thousands deep, which a damaged file can be.
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise ConfigError(f"{source}: not a valid console users file ({_brief(e)})") from None
    names = [u.name for u in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: a console user name appears twice")
    return found


def dump_users(users: Iterable[ConsoleUser]) -> bytes:
    document = {"version": 1, "users": [_entry(u) for u in users]}
    return (json.dumps(document, indent=2) + "\n").encode()


def add_user(path: Path, name: str, role: str, password: str, *, now: datetime) -> ConsoleUser:
    """Add user `name` with `role` and `password` (kept as its hash).

    InputError for a bad name, an unknown role, a password the policy refuses, or a name
    that is taken (a disabled user's too); the file is then unchanged.
    """
    check_user_name(name)
    check_role(role)
    check_password_policy(name, password)
    added = ConsoleUser(name, role, hash_password(password), now)  # slow: outside the lock
    with exclusive_lock(_lock(path), _MODE):
        users = list_users(path)
        if any(u.name == name for u in users):
            raise InputError(f"a console user named {name!r} exists already (or was disabled)")
        write_atomic(path, dump_users((*users, added)), _MODE)
    return added


def set_password(path: Path, name: str, password: str) -> ConsoleUser:
    """Give user `name` a new `password`; InputError for an unknown or disabled user or a
    password the policy refuses; the file is then unchanged."""
    check_user_name(name)
    check_password_policy(name, password)
    new_hash = hash_password(password)
    with exclusive_lock(_lock(path), _MODE):
        users = list_users(path)
        changed = replace(enabled_user(users, name, path), password_hash=new_hash)
        write_atomic(path, dump_users(changed if u.name == name else u for u in users), _MODE)
    return changed


def disable_user(path: Path, name: str, *, now: datetime) -> ConsoleUser:
    """Disable user `name` (its password never passes again; the name stays taken).

    InputError for an unknown or already disabled user, and for the last enabled admin
    (nobody would be left to manage the users); the file is then unchanged.
    """
    with exclusive_lock(_lock(path), _MODE):
        users = list_users(path)
        current = enabled_user(users, name, path)
        other_admins = [
            u for u in users if u.role == "admin" and u.disabled is None and u.name != name
        ]
        if current.role == "admin" and not other_admins:
            raise InputError(
                f"console user {name!r} is the last enabled admin: add another admin first"
            )
        disabled = replace(current, disabled=now)
        write_atomic(path, dump_users(disabled if u.name == name else u for u in users), _MODE)
    return disabled


def set_totp(path: Path, name: str, secret: str) -> ConsoleUser:
    """Give user `name` the TOTP `secret` (node.console.totp.new_secret's, say): from then
    on the console asks for a code at sign-in. A secret the user had is replaced, and the
    authenticator entry made from it stops working.

    InputError for an unknown or disabled user or a secret that is not 16 to 64 base32
    characters; the file is then unchanged.
    """
    check_user_name(name)
    check_secret(secret)
    with exclusive_lock(_lock(path), _MODE):
        users = list_users(path)
        changed = replace(enabled_user(users, name, path), totp_secret=secret)
        write_atomic(path, dump_users(changed if u.name == name else u for u in users), _MODE)
    return changed


def clear_totp(path: Path, name: str) -> ConsoleUser:
    """Take user `name`'s TOTP secret away: the password alone signs in again.

    InputError for an unknown or disabled user, or one without a TOTP secret (nothing to
    take away); the file is then unchanged.
    """
    check_user_name(name)
    with exclusive_lock(_lock(path), _MODE):
        users = list_users(path)
        current = enabled_user(users, name, path)
        if current.totp_secret is None:
            raise InputError(f"console user {name!r} has no TOTP second factor")
        changed = replace(current, totp_secret=None)
        write_atomic(path, dump_users(changed if u.name == name else u for u in users), _MODE)
    return changed


def enabled_user(users: Sequence[ConsoleUser], name: str, path: Path) -> ConsoleUser:
    """User `name`, not disabled; InputError saying which it is not."""
    found = [u for u in users if u.name == name]
    if not found:
        raise InputError(f"no console user named {_shown(name)} in {path}")
    if found[0].disabled is not None:
        raise InputError(f"console user {name!r} was disabled on {found[0].disabled}")
    return found[0]


def _lock(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _entry(u: ConsoleUser) -> dict[str, Any]:
    return {
        "name": u.name,
        "role": u.role,
        "password_hash": u.password_hash,
        "created": u.created.isoformat(),
        "disabled": None if u.disabled is None else u.disabled.isoformat(),
        "totp_secret": u.totp_secret,
    }


def _user(entry: Any) -> ConsoleUser:
    if not isinstance(entry, dict):
        raise ValueError("each user must be a JSON object")
    name, role, digest = entry["name"], entry["role"], entry["password_hash"]
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ValueError(f"bad user name {_shown(name)}")
    if not isinstance(role, str) or role not in _ROLES:
        raise ValueError(f"user {name}: unknown role {_shown(role)}")
    if not isinstance(digest, str) or not _usable_hash(digest):
        raise ValueError(f"user {name}: password_hash is not an Argon2 hash this node accepts")
    totp_secret = entry.get("totp_secret")
    if totp_secret is not None and not valid_secret(totp_secret):
        # Never quoted: even a damaged secret may be most of a real one.
        raise ValueError(f"user {name}: totp_secret is not 16 to 64 base32 characters (A-Z, 2-7)")
    disabled = entry.get("disabled")
    return ConsoleUser(
        name,
        role,
        digest,
        _time(entry["created"]),
        None if disabled is None else _time(disabled),
        totp_secret,
    )


def _usable_hash(digest: str) -> bool:
    if _HASH.fullmatch(digest) is None:
        return False
    try:
        parameters = extract_parameters(digest)
    except InvalidHashError:
        return False
    return (
        parameters.memory_cost <= _MAX_MEMORY_KIB
        and 1 <= parameters.time_cost <= _MAX_TIME_COST
        and 1 <= parameters.parallelism <= _MAX_PARALLELISM
    )


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"time must be text, not {type(text).__name__}")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {_shown(text)}")
    return parsed


def _shown(value: object) -> str:
    """`value` quoted for a one-line message, cut short: a hostile name can be long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _brief(error: BaseException) -> str:
    """An exception's text cut short: json's messages can quote a whole line."""
    if isinstance(error, KeyError):
        return f"missing {_shown(error.args[0] if error.args else None)}"
    text = str(error) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
