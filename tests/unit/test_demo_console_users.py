"""The demo's officer-console users (node.demo.console_users): who they are, their fresh
passwords, the console's address beside a node's API, hashing beside other work, and the
file each node gets, hostile input included."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from node.console import users
from node.console.users import ROLE_NAMES, ConsoleUser, check_password, list_users, users_path
from node.demo.console_users import (
    DEMO_ACCOUNTS,
    DemoUser,
    console_url,
    demo_users,
    fresh_password,
    hashed_in_background,
    write_console_users,
)
from node.demo.errors import DemoError
from node.errors import ConfigError, InputError

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# Long enough for a loaded machine; a test that needs it to run out fails anyway.
WAIT_SECONDS = 10.0


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2 with the least work it allows: hashing is slow by design, tests need not be."""
    monkeypatch.setattr(users, "PASSWORD_HASHER", PasswordHasher(1, 8, 1))
    yield


def _numbered() -> Iterator[str]:
    for n in range(100):
        yield f"password number {n:03d}"


def test_one_user_for_each_role_and_a_second_officer_for_four_eyes() -> None:
    made = demo_users()
    assert [(u.user, u.role) for u in made] == [
        ("admin", "admin"),
        ("clerk", "clerk"),
        ("officer", "officer"),
        ("officer2", "officer"),
        ("inspector", "inspector"),
        ("auditor", "auditor"),
    ]
    assert {u.role for u in made} == set(ROLE_NAMES)
    assert list(DEMO_ACCOUNTS) == [(u.user, u.role) for u in made]


def test_passwords_are_fresh_random_and_url_safe() -> None:
    first, second = demo_users(), demo_users()
    passwords = [u.password for u in (*first, *second)]
    assert len(set(passwords)) == len(passwords)  # none shared between users or runs
    for password in passwords:
        assert len(password) >= 16
        assert set(password) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
    assert len(fresh_password()) == 22  # 16 random bytes, base64url without padding


def test_passwords_come_from_the_function_given() -> None:
    source = _numbered()
    made = demo_users(lambda: next(source))
    assert [u.password for u in made] == [f"password number {n:03d}" for n in range(6)]


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short", "at least 12"),
        ("x" * 20, "one character repeated"),
        ("a" * 2000, "at most 1024"),
        ("\ud800 lone surrogate here", "UTF-8"),
    ],
)
def test_a_password_the_console_would_refuse_is_refused_here(password: str, rule: str) -> None:
    with pytest.raises(InputError, match=rule):
        demo_users(lambda: password)


def test_a_password_equal_to_the_user_name_is_refused() -> None:
    with pytest.raises(InputError, match="user's name"):
        DemoUser("inspector.one", "inspector", "INSPECTOR.ONE")


@pytest.mark.parametrize(
    ("user", "role", "password", "message"),
    [
        ("Admin", "admin", "good password 1", "console user name"),
        ("", "admin", "good password 1", "console user name"),
        ("a" * 65, "admin", "good password 1", "console user name"),
        ("ädmin", "admin", "good password 1", "console user name"),
        ("admin\n", "admin", "good password 1", "console user name"),
        ("admin", "root", "good password 1", "console role"),
        ("admin", "Admin", "good password 1", "console role"),
        (42, "admin", "good password 1", "user must be text"),
        ("admin", None, "good password 1", "role must be text"),
        ("admin", "admin", b"good password 1", "password must be text"),
    ],
)
def test_a_bad_user_is_refused_when_made(
    user: object, role: object, password: object, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        DemoUser(user, role, password)  # type: ignore[arg-type]


def test_the_password_is_printed_only_where_asked() -> None:
    user = DemoUser("officer2", "officer", "s3cret-for-the-demo")
    assert user.shown() == "officer2 / s3cret-for-the-demo (officer)"
    assert user.to_json() == {
        "user": "officer2",
        "password": "s3cret-for-the-demo",
        "role": "officer",
    }
    # Not in its repr: a traceback or a debug line showing the user must not show it.
    assert "s3cret" not in repr(user)
    assert "officer2" in repr(user)


@pytest.mark.parametrize(
    ("api", "console"),
    [
        ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/console/"),
        ("https://node.example.org:443/api/v1", "https://node.example.org:443/console/"),
        ("http://[::1]:9000/api/v1", "http://[::1]:9000/console/"),
        ("http://localhost:1/api/v1", "http://localhost:1/console/"),
        ("http://10.0.0.1:65535/api/v1", "http://10.0.0.1:65535/console/"),
    ],
)
def test_the_console_is_on_the_api_listener(api: str, console: str) -> None:
    assert console_url(api) == console


@pytest.mark.parametrize(
    "api",
    [
        "",
        "http://127.0.0.1:8080",  # no API prefix
        "http://127.0.0.1:8080/api/v1/",
        "http://127.0.0.1:8080/api/v2",
        "http://127.0.0.1/api/v1",  # no port
        "http://127.0.0.1:0/api/v1",
        "http://127.0.0.1:65536/api/v1",
        "http://127.0.0.1:123456/api/v1",
        "ftp://127.0.0.1:21/api/v1",
        "javascript://127.0.0.1:80/api/v1",
        "HTTP://127.0.0.1:80/api/v1",
        "http://user:pass@127.0.0.1:80/api/v1",
        "http://127.0.0.1:80/api/v1?x=1",
        "http://127.0.0.1:80/api/v1#top",
        "http://127.0.0.1:80/api/v1\n",
        " http://127.0.0.1:80/api/v1",
        "http://exa mple:80/api/v1",
        "http://exämple.org:80/api/v1",
        "http://127.0.0.1:\uff18\uff10/api/v1",  # full-width digits
        "http://[::1:80/api/v1",
        "http://" + "a" * 100_000 + ":80/api/v1",
        "http://-bad:80/api/v1",
    ],
)
def test_anything_but_an_api_url_is_refused(api: str) -> None:
    with pytest.raises(InputError, match="not a node's API URL") as raised:
        console_url(api)
    assert len(str(raised.value)) < 200  # a huge input is not echoed whole


@pytest.mark.parametrize("api", [None, 8080, b"http://127.0.0.1:80/api/v1"])
def test_an_api_url_that_is_not_text_is_refused(api: object) -> None:
    with pytest.raises(InputError, match="not a node's API URL"):
        console_url(api)  # type: ignore[arg-type]


def test_hashed_records_verify_and_keep_the_users_order() -> None:
    made = demo_users()
    with hashed_in_background(made, now=NOW) as records:
        hashed = records()
    assert [(r.name, r.role, r.created, r.disabled) for r in hashed] == [
        (u.user, u.role, NOW, None) for u in made
    ]
    for user, record in zip(made, hashed, strict=True):
        assert user.password not in record.password_hash
        assert check_password(record, user.password)
        assert not check_password(record, user.password + "x")
    # Asked again, the same records: nothing is hashed twice.
    assert records() == hashed


def test_hashing_runs_beside_the_block_not_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hashing waits for the block to have started: were it done before the block ran
    # (or in it, on the same thread), it would wait in vain and fail.
    block_started = threading.Event()
    threads: set[str] = set()
    cheap = users.PASSWORD_HASHER

    class WaitingHasher:
        def hash(self, password: str) -> str:
            threads.add(threading.current_thread().name)
            if not block_started.wait(WAIT_SECONDS):
                raise AssertionError("hashed before the block ran")
            return cheap.hash(password)

    monkeypatch.setattr(users, "PASSWORD_HASHER", WaitingHasher())
    made = demo_users()
    with hashed_in_background(made, now=NOW) as records:
        block_started.set()
        hashed = records()
    assert len(hashed) == len(made)
    assert threading.current_thread().name not in threads
    assert len(threads) == len(made)  # one thread each: side by side, not in turn


def test_a_hashing_failure_surfaces_when_the_records_are_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BrokenHasher:
        def hash(self, password: str) -> str:
            raise MemoryError("no 64 MiB to spare")

    monkeypatch.setattr(users, "PASSWORD_HASHER", BrokenHasher())
    with hashed_in_background(demo_users(), now=NOW) as records, pytest.raises(MemoryError):
        records()


def test_no_users_hash_nothing() -> None:
    with hashed_in_background((), now=NOW) as records:
        assert records() == ()


def test_a_creation_time_without_a_zone_is_refused() -> None:
    with (
        pytest.raises(InputError, match="timezone"),
        hashed_in_background(demo_users(), now=datetime(2026, 3, 1, 9, 0)),
    ):
        pass


def _records() -> tuple[tuple[DemoUser, ...], tuple[ConsoleUser, ...]]:
    made = demo_users()
    with hashed_in_background(made, now=NOW) as records:
        return made, records()


def test_each_node_gets_the_users_with_only_their_hashes(tmp_path: Path) -> None:
    made, records = _records()
    path = write_console_users(tmp_path, records)
    assert path == users_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    read = list_users(path)
    assert read == records
    for user, record in zip(made, read, strict=True):
        assert check_password(record, user.password)
    text = path.read_text(encoding="utf-8")
    assert not any(user.password in text for user in made)
    assert [e["name"] for e in json.loads(text)["users"]] == [u.user for u in made]


def test_a_node_that_has_users_already_keeps_them(tmp_path: Path) -> None:
    _, records = _records()
    users.add_user(users_path(tmp_path), "someone", "admin", "their own password", now=NOW)
    before = users_path(tmp_path).read_bytes()
    with pytest.raises(DemoError, match="holds console users already"):
        write_console_users(tmp_path, records)
    assert users_path(tmp_path).read_bytes() == before


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b'{"version": 2, "users": []}', b"\xff\xfe", b"[" * 100_000]
)
def test_a_damaged_users_file_is_reported_not_replaced(tmp_path: Path, content: bytes) -> None:
    _, records = _records()
    users_path(tmp_path).write_bytes(content)
    with pytest.raises(ConfigError, match="console users file"):
        write_console_users(tmp_path, records)
    assert users_path(tmp_path).read_bytes() == content


def test_an_empty_users_file_is_filled(tmp_path: Path) -> None:
    # A file with no users in it takes nobody's place: what `list_users` reads as none.
    _, records = _records()
    users_path(tmp_path).write_bytes(users.dump_users(()))
    write_console_users(tmp_path, records)
    assert list_users(users_path(tmp_path)) == records


def test_a_missing_node_directory_is_an_error_not_a_new_directory(tmp_path: Path) -> None:
    _, records = _records()
    with pytest.raises(OSError):
        write_console_users(tmp_path / "absent", records)
    assert not (tmp_path / "absent").exists()
