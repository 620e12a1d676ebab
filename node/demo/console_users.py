"""The demo's officer-console users: on every node an admin, a clerk, two certifying
officers (one may approve or issue what the other may not: the four-eyes rule needs two),
an import inspector and an auditor, each with the console role of the same name.

Their passwords are new each run and exist only in memory, for `ephyto demo
--keep-running` to print: the nodes' console-users.json files hold Argon2 hashes alone.

Argon2 is slow by design (64 MiB and about 0.2 s a password on a small machine), and six
users on four or five nodes would add seconds to a demo that takes ten. So each user's
password is hashed once, on a thread of its own while the demo does its other setup
(`hashed_in_background`), and the same record goes into every node's file
(`write_console_users`): one run's user has one password on all its nodes, which also
spares people four lists to keep apart.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from node.api.context import PREFIX as API_PREFIX
from node.console.users import (
    ConsoleUser,
    check_password_policy,
    check_role,
    check_user_name,
    dump_users,
    hash_password,
    list_users,
    users_path,
)
from node.demo.errors import DemoError
from node.errors import InputError
from node.fileio import write_atomic

# (user, role), in the order people read them: who manages, who drafts, who issues, who
# receives, who only reads.
DEMO_ACCOUNTS: Final[tuple[tuple[str, str], ...]] = (
    ("admin", "admin"),
    ("clerk", "clerk"),
    ("officer", "officer"),
    ("officer2", "officer"),
    ("inspector", "inspector"),
    ("auditor", "auditor"),
)
# secrets.token_urlsafe's bytes: 128 random bits, 22 characters a person can copy.
PASSWORD_BYTES: Final = 16
CONSOLE_PATH: Final = "/console/"
# As node.console.users writes the file: only the node's own account reads the hashes.
_FILE_MODE: Final = 0o600
# What a node's ready line gives as its API (node.service's Listening.api_url, with the
# API's prefix): a host name, an IPv4 address or a bracketed IPv6 one, and a port.
_API_URL = re.compile(
    r"(?P<base>https?://(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])"
    r":(?P<port>[0-9]{1,5}))" + re.escape(API_PREFIX)
)


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo console user with its password in plain text: to print, never to store."""

    user: str
    role: str
    # Out of the repr: a traceback or a debug line that shows the user must not show it.
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for name, value in (("user", self.user), ("role", self.role)):
            if not isinstance(value, str):
                raise InputError(
                    f"demo console user: {name} must be text, not {type(value).__name__}"
                )
        if not isinstance(self.password, str):
            raise InputError(
                f"demo console user {self.user!r}: password must be text, "
                f"not {type(self.password).__name__}"
            )
        check_user_name(self.user)
        check_role(self.role)
        check_password_policy(self.user, self.password)

    def to_json(self) -> dict[str, str]:
        """`{"user", "password", "role"}`, as `--keep-running --json` gives it scripts."""
        return {"user": self.user, "password": self.password, "role": self.role}

    def shown(self) -> str:
        """`user / password (role)`: one line of `--keep-running`'s list."""
        return f"{self.user} / {self.password} ({self.role})"


def fresh_password() -> str:
    """A new random password: 22 URL-safe characters (128 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def demo_users(password: Callable[[], str] = fresh_password) -> tuple[DemoUser, ...]:
    """The demo's users (DEMO_ACCOUNTS), each with a password from `password()`: fresh
    random ones by default. InputError if `password()` gives one the console's policy
    refuses."""
    return tuple(DemoUser(user, role, password()) for user, role in DEMO_ACCOUNTS)


def console_url(api_url: str) -> str:
    """The officer console's URL on a node whose API is at `api_url`
    (`scheme://host:port/api/v1`, as the demo reads it from the node): the same
    listener, under /console/. InputError for anything else."""
    found = _API_URL.fullmatch(api_url) if isinstance(api_url, str) else None
    if found is None or not 1 <= int(found["port"]) <= 65535:
        raise InputError(
            f"{_shown(api_url)}: not a node's API URL (scheme://host:port{API_PREFIX})"
        )
    return f"{found['base']}{CONSOLE_PATH}"


@contextmanager
def hashed_in_background(
    users: Sequence[DemoUser], *, now: datetime
) -> Iterator[Callable[[], tuple[ConsoleUser, ...]]]:
    """While the block runs, each user's password is hashed on a thread of its own; the
    callable it is given waits for the hashes and returns the users' console records
    (created `now`), in the order of `users`.

    Argon2 releases the GIL, so the hashing runs beside the block's own work rather than
    after it. Leaving the block waits for any hashing still under way (a second at most).
    """
    if now.tzinfo is None:
        # The file keeps times with their zone; one without would make it unreadable.
        raise InputError("the console users' creation time needs a timezone")
    with ThreadPoolExecutor(
        max_workers=max(len(users), 1), thread_name_prefix="demo-console-users"
    ) as pool:
        pending = [pool.submit(_record, user, now) for user in users]
        yield lambda: tuple(future.result() for future in pending)


def write_console_users(node_dir: Path, records: Sequence[ConsoleUser]) -> Path:
    """Write `records` as `node_dir`'s console-users.json (mode 0600); its path.

    For a node the demo has just made, before it starts: nothing else writes the file
    then, so no lock is taken. DemoError, the file unchanged, if it holds users already:
    the demo does not take over another node's users.
    """
    path = users_path(node_dir)
    if list_users(path):
        raise DemoError(f"{path}: holds console users already; the demo sets up new nodes only")
    write_atomic(path, dump_users(records), _FILE_MODE)
    return path


def _record(user: DemoUser, now: datetime) -> ConsoleUser:
    return ConsoleUser(user.user, user.role, hash_password(user.password), now)


def _shown(value: object) -> str:
    """`value` quoted for a one-line message, cut short: a hostile one can be long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
