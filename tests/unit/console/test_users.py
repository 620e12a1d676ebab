"""The officer console's users and roles (node.console.users): the role table, the
password policy, hashing, the TOTP secret, and console-users.json, damaged and hostile
ones included."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from node.console import users
from node.console.totp import code_at, matching_step, new_secret
from node.console.users import (
    ACTIONS,
    ROLE_NAMES,
    ConsoleUser,
    add_user,
    check_password,
    check_password_policy,
    clear_totp,
    disable_user,
    dump_users,
    list_users,
    may,
    may_issue,
    needs_rehash,
    parse_users,
    set_password,
    set_totp,
)
from node.errors import ConfigError, InputError

# Taken before any test swaps in the cheap hasher: what the node really uses.
DEFAULT_HASHER = users.PASSWORD_HASHER
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD = "correct horse battery"
OTHER = "staple tuna granite 42"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2 with the least work it allows: hashing is slow by design, tests need not be."""
    monkeypatch.setattr(users, "PASSWORD_HASHER", PasswordHasher(1, 8, 1))
    yield


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "console-users.json"


EXPECTED = {
    "admin": {"manage-users", "read"},
    "clerk": {"draft", "read"},
    "officer": {"approve", "issue", "read"},
    "inspector": {"answer-received", "read"},
    "auditor": {"read"},
}


def test_the_five_roles_each_described() -> None:
    assert ROLE_NAMES == ("admin", "clerk", "officer", "inspector", "auditor")
    for role in users.ROLES:
        assert role.description and "\n" not in role.description


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("action", ACTIONS)
def test_may_table(role: str, action: str) -> None:
    assert may(role, action) is (action in EXPECTED[role])


def test_only_the_auditor_changes_nothing_and_everyone_reads() -> None:
    assert all(may(role, "read") for role in ROLE_NAMES)
    assert [r for r in ROLE_NAMES if not any(may(r, a) for a in ACTIONS if a != "read")] == [
        "auditor"
    ]


@pytest.mark.parametrize(("role", "action"), [("root", "read"), ("admin", "delete"),
                                             ("", ""), ("Admin", "read")])  # fmt: skip
def test_may_refuses_unknown_roles_and_actions(role: str, action: str) -> None:
    with pytest.raises(InputError, match=r"console (role|action)"):
        may(role, action)


def test_may_issue_keeps_four_eyes() -> None:
    assert may_issue("olga", "officer", drafted_by="carl")
    assert may_issue("olga", "officer", drafted_by=None)
    assert not may_issue("olga", "officer", drafted_by="olga")
    for role in ("admin", "clerk", "inspector", "auditor"):
        assert not may_issue("olga", role, drafted_by="carl")


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("", "at least 12"),
        ("short pass1", "at least 12"),
        ("x" * 1025 + "y", "at most 1024"),
        ("Officer.Anna", "the user's name"),
        ("officer.anna", "the user's name"),
        ("zzzzzzzzzzzzzzzz", "one character repeated"),
        ("pass\udcffword-long-enough", "UTF-8"),
    ],
)
def test_password_policy_names_the_rule_not_the_password(password: str, rule: str) -> None:
    with pytest.raises(InputError, match=rule) as refused:
        check_password_policy("officer.anna", password)
    assert password not in str(refused.value) or not password


def test_password_policy_accepts_the_bounds() -> None:
    check_password_policy("anna", "a" * 11 + "b")
    check_password_policy("anna", "a" * 1023 + "b")
    check_password_policy("anna", "wachtwoord é ü 漢字 ok")


def test_default_hasher_is_argon2_cffis_own() -> None:
    reference = PasswordHasher()
    assert isinstance(DEFAULT_HASHER, PasswordHasher)
    for attribute in ("time_cost", "memory_cost", "parallelism", "hash_len", "salt_len", "type"):
        assert getattr(DEFAULT_HASHER, attribute) == getattr(reference, attribute)
    digest = DEFAULT_HASHER.hash(GOOD)
    assert digest.startswith("$argon2id$") and DEFAULT_HASHER.verify(digest, GOOD)


def test_add_then_check_password(path: Path) -> None:
    added = add_user(path, "anna", "officer", GOOD, now=NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert GOOD not in path.read_text()
    (stored,) = list_users(path)
    assert stored == added
    assert stored.password_hash.startswith("$argon2id$") and stored.totp_secret is None
    assert check_password(stored, GOOD)
    assert not check_password(stored, OTHER)
    assert not check_password(stored, GOOD + " ")
    assert not check_password(stored, "")
    assert not check_password(stored, "bad \udcff surrogate")


def test_two_users_with_one_password_get_different_hashes(path: Path) -> None:
    add_user(path, "anna", "officer", GOOD, now=NOW)
    add_user(path, "bert", "clerk", GOOD, now=NOW)
    first, second = list_users(path)
    assert first.password_hash != second.password_hash  # a salt each


def test_a_garbage_hash_never_passes() -> None:
    user = ConsoleUser("anna", "officer", "not a hash", NOW)
    assert not check_password(user, GOOD)


def test_needs_rehash_follows_the_hasher(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    added = add_user(path, "anna", "officer", GOOD, now=NOW)
    assert not needs_rehash(added)
    monkeypatch.setattr(users, "PASSWORD_HASHER", PasswordHasher(2, 16, 1))
    assert needs_rehash(added)
    assert check_password(added, GOOD)  # an old hash still verifies


def test_disabled_user_never_passes(path: Path) -> None:
    add_user(path, "root.admin", "admin", GOOD, now=NOW)
    add_user(path, "anna", "officer", GOOD, now=NOW)
    disabled = disable_user(path, "anna", now=LATER)
    assert disabled.disabled == LATER
    (_, stored) = list_users(path)
    assert stored.disabled == LATER
    assert not check_password(stored, GOOD)


def test_add_refuses_duplicates_bad_names_roles_and_passwords(path: Path) -> None:
    add_user(path, "admin1", "admin", GOOD, now=NOW)
    add_user(path, "anna", "clerk", GOOD, now=NOW)
    disable_user(path, "anna", now=LATER)
    before = path.read_bytes()
    with pytest.raises(InputError, match="exists already"):
        add_user(path, "admin1", "auditor", OTHER, now=NOW)
    with pytest.raises(InputError, match="exists already"):
        add_user(path, "anna", "clerk", OTHER, now=NOW)  # a disabled name stays taken
    for name in ("../x", "A", "", "élodie", "a b", "-x", "x" * 65, "x\n"):
        with pytest.raises(InputError, match="console user name"):
            add_user(path, name, "clerk", GOOD, now=NOW)
    with pytest.raises(InputError, match="console role 'root'"):
        add_user(path, "bert", "root", GOOD, now=NOW)
    with pytest.raises(InputError, match="at least 12") as refused:
        add_user(path, "bert", "clerk", "tiny", now=NOW)
    assert "tiny" not in str(refused.value)
    assert path.read_bytes() == before


def test_set_password(path: Path) -> None:
    add_user(path, "admin1", "admin", GOOD, now=NOW)
    add_user(path, "anna", "clerk", GOOD, now=NOW)
    changed = set_password(path, "anna", OTHER)
    stored = list_users(path)[1]
    assert stored == changed and stored.created == NOW
    assert check_password(stored, OTHER) and not check_password(stored, GOOD)
    before = path.read_bytes()
    with pytest.raises(InputError, match="no console user named 'nobody'"):
        set_password(path, "nobody", OTHER)
    add_user(path, "anna.de.vries", "clerk", GOOD, now=NOW)
    before = path.read_bytes()
    with pytest.raises(InputError, match="the user's name"):
        set_password(path, "anna.de.vries", "ANNA.DE.VRIES")
    with pytest.raises(InputError, match="console user name"):
        set_password(path, "../anna", OTHER)
    assert path.read_bytes() == before
    disable_user(path, "anna", now=LATER)
    disabled = path.read_bytes()
    with pytest.raises(InputError, match="was disabled"):
        set_password(path, "anna", GOOD)
    assert path.read_bytes() == disabled
    assert before != disabled


def test_the_last_enabled_admin_cannot_be_disabled(path: Path) -> None:
    add_user(path, "admin1", "admin", GOOD, now=NOW)
    add_user(path, "admin2", "admin", GOOD, now=NOW)
    add_user(path, "anna", "auditor", GOOD, now=NOW)
    disable_user(path, "admin1", now=LATER)
    before = path.read_bytes()
    with pytest.raises(InputError, match="last enabled admin"):
        disable_user(path, "admin2", now=LATER)
    assert path.read_bytes() == before
    with pytest.raises(InputError, match="was disabled"):
        disable_user(path, "admin1", now=LATER)
    with pytest.raises(InputError, match="no console user named"):
        disable_user(path, "nobody", now=LATER)
    disable_user(path, "anna", now=LATER)  # not an admin: fine
    assert [u.disabled is None for u in list_users(path)] == [False, True, False]


def test_no_file_is_no_users(path: Path) -> None:
    assert list_users(path) == ()
    with pytest.raises(InputError, match="no console user named"):
        disable_user(path, "anna", now=NOW)
    assert not path.exists()


def test_set_and_clear_totp(path: Path) -> None:
    add_user(path, "admin1", "admin", GOOD, now=NOW)
    added = add_user(path, "anna", "officer", GOOD, now=NOW)
    secret = new_secret()
    changed = set_totp(path, "anna", secret)
    admin, stored = list_users(path)
    assert stored == changed == replace(added, totp_secret=secret)  # nothing else changed
    assert admin.totp_secret is None and check_password(stored, GOOD)
    # In clear (the server computes the codes), so the file stays private.
    assert secret in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert matching_step(stored.totp_secret, code_at(secret, NOW), NOW) is not None

    replaced = set_totp(path, "anna", TOTP_SECRET)
    assert replaced.totp_secret == TOTP_SECRET and list_users(path)[1] == replaced
    assert secret not in path.read_text()

    cleared = clear_totp(path, "anna")
    assert cleared.totp_secret is None and list_users(path)[1] == cleared
    assert TOTP_SECRET not in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cleared == replace(changed, totp_secret=None)


def test_totp_on_a_file_with_a_loose_mode_makes_it_0600_again(path: Path) -> None:
    add_user(path, "anna", "officer", GOOD, now=NOW)
    path.chmod(0o644)
    set_totp(path, "anna", TOTP_SECRET)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    clear_totp(path, "anna")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "secret",
    ["", "A" * 15, "A" * 65, "A" * 17, TOTP_SECRET.lower(), TOTP_SECRET + "====",
     TOTP_SECRET[:-1] + "1", f" {TOTP_SECRET}", f"{TOTP_SECRET}\n", "\uff21" * 16,
     "A" * 10_000_000],
)  # fmt: skip
def test_set_totp_refuses_a_bad_secret_without_quoting_it(path: Path, secret: str) -> None:
    add_user(path, "anna", "officer", GOOD, now=NOW)
    before = path.read_bytes()
    with pytest.raises(InputError, match="16 to 64 base32") as refused:
        set_totp(path, "anna", secret)
    if secret.strip():
        assert secret.strip()[:16] not in str(refused.value)
    assert path.read_bytes() == before


def test_totp_refuses_unknown_disabled_and_badly_named_users(path: Path) -> None:
    add_user(path, "admin1", "admin", GOOD, now=NOW)
    add_user(path, "anna", "clerk", GOOD, now=NOW)
    add_user(path, "bert", "clerk", GOOD, now=NOW)
    set_totp(path, "bert", TOTP_SECRET)
    disable_user(path, "bert", now=LATER)
    before = path.read_bytes()
    with pytest.raises(InputError, match="no console user named 'nobody'"):
        set_totp(path, "nobody", TOTP_SECRET)
    with pytest.raises(InputError, match="no console user named 'nobody'"):
        clear_totp(path, "nobody")
    with pytest.raises(InputError, match="was disabled"):
        set_totp(path, "bert", new_secret())
    with pytest.raises(InputError, match="was disabled"):
        clear_totp(path, "bert")
    with pytest.raises(InputError, match="has no TOTP second factor"):
        clear_totp(path, "anna")
    for name in ("../anna", "Anna", "", "anna\n", "x" * 65):
        with pytest.raises(InputError, match="console user name"):
            set_totp(path, name, TOTP_SECRET)
        with pytest.raises(InputError, match="console user name"):
            clear_totp(path, name)
    assert path.read_bytes() == before
    assert list_users(path)[2].totp_secret == TOTP_SECRET  # kept while disabled


def test_totp_without_a_file(path: Path) -> None:
    with pytest.raises(InputError, match="no console user named 'anna'"):
        set_totp(path, "anna", TOTP_SECRET)
    with pytest.raises(InputError, match="no console user named 'anna'"):
        clear_totp(path, "anna")
    assert not path.exists()


@pytest.mark.parametrize("secret", ["A" * 16, "A" * 64, TOTP_SECRET, "234567" * 4])
def test_a_file_with_a_totp_secret_is_read(secret: str) -> None:
    (user,) = parse_users(_document(_entry(totp_secret=secret)), source="x")
    assert user.totp_secret == secret


def test_dump_and_parse_round_trip() -> None:
    people = (
        ConsoleUser("anna", "officer", users.hash_password(GOOD), NOW),
        ConsoleUser("bert", "clerk", users.hash_password(OTHER), NOW, disabled=LATER),
        ConsoleUser("carl", "clerk", users.hash_password(OTHER), NOW, totp_secret=TOTP_SECRET),
        ConsoleUser("dora", "auditor", users.hash_password(OTHER), NOW, LATER, TOTP_SECRET),
    )
    assert parse_users(dump_users(people), source="x") == people


def _entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": "anna",
        "role": "clerk",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$0xYNuqCT/mu2nFFjSfj5pA"
        "$J5rZOXvsc5cJhPriU5Dv0DRoUv6Cuuxq1ZN1DPfG8rE",
        "created": "2026-03-01T09:00:00+00:00",
        "disabled": None,
        "totp_secret": None,
    }
    entry.update(changes)
    return entry


def _document(*entries: object, version: object = 1) -> bytes:
    return json.dumps({"version": version, "users": list(entries)}).encode()


HOSTILE = {
    "not JSON": b"{users: [",
    "empty": b"",
    "a list": b"[]",
    "no users": b'{"version": 1}',
    "version 2": _document(_entry(), version=2),
    "users not a list": b'{"version": 1, "users": {"anna": 1}}',
    "entry not an object": _document("anna"),
    "name a number": _document(_entry(name=7)),
    "bad name": _document(_entry(name="../etc")),
    "upper-case name": _document(_entry(name="Anna")),
    "unknown role": _document(_entry(role="root")),
    "role a list": _document(_entry(role=["admin"])),
    "hash missing": _document({k: v for k, v in _entry().items() if k != "password_hash"}),
    "hash not argon2": _document(_entry(password_hash="5f4dcc3b5aa765d61d8327deb882cf99")),
    "hash asking 4 TiB": _document(
        _entry(
            password_hash="$argon2id$v=19$m=4294967295,t=3,p=4$0xYNuqCT/mu2nFFjSfj5pA"
            "$J5rZOXvsc5cJhPriU5Dv0DRoUv6Cuuxq1ZN1DPfG8rE"
        )
    ),
    "created a number": _document(_entry(created=1700000000)),
    "created without zone": _document(_entry(created="2026-03-01T09:00:00")),
    "disabled not a time": _document(_entry(disabled="yesterday")),
    "totp lower case": _document(_entry(totp_secret="jbswy3dpehpk3pxp")),
    "totp too short": _document(_entry(totp_secret="JBSWY3DPEHPK3PX")),
    "totp too long": _document(_entry(totp_secret="A" * 65)),
    "totp padded": _document(_entry(totp_secret="JBSWY3DPEHPK3PXP" + "=" * 8)),
    "totp not base32": _document(_entry(totp_secret="JBSWY3DPEHPK3PX1")),
    "totp no base32 length": _document(_entry(totp_secret="A" * 17)),
    "totp empty": _document(_entry(totp_secret="")),
    "totp a number": _document(_entry(totp_secret=12345678901234567890)),
    "totp a list": _document(_entry(totp_secret=["JBSWY3DPEHPK3PXP"])),
    "totp false": _document(_entry(totp_secret=False)),
    "totp fullwidth": _document(_entry(totp_secret="\uff2a" * 16)),
    "totp spaces": _document(_entry(totp_secret="JBSW Y3DP EHPK 3PXP")),
    "duplicate names": _document(_entry(), _entry(role="auditor")),
    "nested deep": b"[" * 200_000 + b"]" * 200_000,
    "non-UTF-8": b'{"version": 1, "users": [{"name": "\xff\xfe"}]}',
    "UTF-16": '{"version": 1, "users": []}'.encode("utf-16"),
    "10 MB": b'{"version": 1, "users": [' + b" " * 10_000_000 + b"]}",
}


@pytest.mark.parametrize("damage", sorted(HOSTILE))
def test_a_damaged_file_is_refused_naming_it_and_add_changes_nothing(
    path: Path, damage: str
) -> None:
    path.write_bytes(HOSTILE[damage])
    with pytest.raises(ConfigError) as refused:
        list_users(path)
    message = str(refused.value)
    assert str(path) in message and "\n" not in message and len(message) < 400
    with pytest.raises(ConfigError, match=r"console-users\.json"):
        add_user(path, "bert", "admin", GOOD, now=NOW)
    with pytest.raises(ConfigError):
        disable_user(path, "anna", now=NOW)
    with pytest.raises(ConfigError):
        set_password(path, "anna", GOOD)
    with pytest.raises(ConfigError):
        set_totp(path, "anna", TOTP_SECRET)
    with pytest.raises(ConfigError):
        clear_totp(path, "anna")
    assert path.read_bytes() == HOSTILE[damage]


def test_a_damaged_totp_secret_is_not_quoted(path: Path) -> None:
    almost = TOTP_SECRET[:-1] + "1"
    path.write_bytes(_document(_entry(totp_secret=almost)))
    with pytest.raises(ConfigError, match="totp_secret is not 16 to 64 base32") as refused:
        list_users(path)
    assert almost[:16] not in str(refused.value)


def test_a_folder_in_the_files_place_is_a_config_error(path: Path) -> None:
    path.mkdir()
    with pytest.raises(ConfigError, match="cannot read the console users"):
        list_users(path)
