"""`ephyto console user add|passwd|disable|totp|list`, run in-process through the command's own
entry point, with hostile input: one error line, exit 2, the users file unchanged."""

from __future__ import annotations

import getpass
import json
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher

from node.cli.main import main
from node.console import users
from node.console.totp import code_at, matching_step
from node.console.users import check_password, list_users

GOOD = "correct horse battery"
OTHER = "staple tuna granite 42"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2 with the least work it allows: hashing is slow by design, tests need not be."""
    monkeypatch.setattr(users, "PASSWORD_HASHER", PasswordHasher(1, 8, 1))
    yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One node directory made once; each test works on a copy of it."""
    directory = tmp_path_factory.mktemp("template") / "node"
    assert main(["node", "init", "--country", "NL", "--name", "NVWA", "--dir", str(directory)]) == 0
    return directory


@pytest.fixture
def node_dir(template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "node"
    shutil.copytree(template, directory)
    capsys.readouterr()  # node init's report, not this test's
    return directory


class Run:
    """Runs `ephyto ARGS...` in-process: exit code, stdout, stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str], directory: Path) -> None:
        self.capsys = capsys
        self.directory = directory

    def __call__(self, *args: str | Path) -> tuple[int, str, str]:
        code = main([*map(str, args), "--dir", str(self.directory)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str | Path) -> str:
        code, out, err = self(*args)
        assert code == 0, out + err
        return out

    def refused(self, *args: str | Path) -> str:
        code, out, err = self(*args)
        assert code == 2, out + err
        assert err.startswith("ephyto: error: ") and len(err.splitlines()) == 1, err
        assert out == ""
        return err


@pytest.fixture
def run(node_dir: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys, node_dir)


def _secret(tmp_path: Path, text: str | bytes, mode: int = 0o600, name: str = "pw") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    path.chmod(mode)
    return path


def test_add_passwd_disable_list(run: Run, node_dir: Path, tmp_path: Path) -> None:
    good, other = _secret(tmp_path, GOOD + "\n"), _secret(tmp_path, OTHER, name="other")
    out = run.ok("console", "user", "add", "root.admin", "--role", "admin",
                 "--password-file", good)  # fmt: skip
    assert "added console user root.admin (admin)" in out
    run.ok("console", "user", "add", "anna", "--role", "officer", "--password-file", good)
    path = node_dir / "console-users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    admin, anna = list_users(path)
    assert check_password(anna, GOOD) and anna.role == "officer"

    assert "set the password of console user anna" in run.ok(
        "console", "user", "passwd", "anna", "--password-file", other
    )
    anna = list_users(path)[1]
    assert check_password(anna, OTHER) and not check_password(anna, GOOD)

    listed = run.ok("console", "user", "list")
    assert "root.admin  admin  created " in listed and "anna  officer  created " in listed
    assert "disabled" not in listed
    assert "disabled console user anna at " in run.ok("console", "user", "disable", "anna")
    assert "anna  officer  created " in run.ok("console", "user", "list")
    assert "  disabled 20" in run.ok("console", "user", "list")
    assert not check_password(list_users(path)[1], OTHER)

    document = json.loads(run.ok("console", "user", "list", "--json"))
    assert list(document) == ["users"]
    assert [sorted(u) for u in document["users"]] == [
        ["created", "disabled", "name", "role", "totp"]
    ] * 2
    assert [u["totp"] for u in document["users"]] == [False, False]
    assert [(u["name"], u["role"]) for u in document["users"]] == [
        ("root.admin", "admin"),
        ("anna", "officer"),
    ]
    assert document["users"][0]["disabled"] is None
    assert document["users"][1]["disabled"].startswith("20")

    everything = run.ok("console", "user", "list") + run.ok("console", "user", "list", "--json")
    for secret in (GOOD, OTHER, admin.password_hash, "argon2"):
        assert secret not in everything


def _printed_secret(out: str) -> tuple[str, str]:
    """The secret and the URI `console user totp` printed."""
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
             for line in out.splitlines() if line.startswith("  ")}  # fmt: skip
    return lines["secret"], lines["URI"]


def test_totp_on_replace_and_off(run: Run, node_dir: Path, tmp_path: Path) -> None:
    good = _secret(tmp_path, GOOD)
    run.ok("console", "user", "add", "admin1", "--role", "admin", "--password-file", good)
    run.ok("console", "user", "add", "anna", "--role", "officer", "--password-file", good)
    path = node_dir / "console-users.json"

    out = run.ok("console", "user", "totp", "anna")
    assert "set a new TOTP secret for console user anna\n" in out
    assert "not shown again" in out and "from the next sign-in" in out
    secret, uri = _printed_secret(out)
    admin, anna = list_users(path)
    assert anna.totp_secret == secret and admin.totp_secret is None
    assert check_password(anna, GOOD)  # the password is untouched
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("otpauth", "totp", "/ePhyto%20NL:anna")
    assert parse_qs(parts.query)["secret"] == [secret]
    now = datetime.now(UTC)
    assert matching_step(anna.totp_secret, code_at(secret, now), now) is not None

    listed = run.ok("console", "user", "list")
    assert "admin1  admin  created " in listed and "  totp off" in listed
    assert "anna  officer  created " in listed and "  totp on" in listed
    document = json.loads(run.ok("console", "user", "list", "--json"))
    assert [(u["name"], u["totp"]) for u in document["users"]] == [
        ("admin1", False),
        ("anna", True),
    ]
    assert secret not in listed + json.dumps(document)

    again = run.ok("console", "user", "totp", "anna")
    assert "replaces the previous one, which no longer works" in again
    new_secret, _ = _printed_secret(again)
    assert new_secret != secret and list_users(path)[1].totp_secret == new_secret

    off = run.ok("console", "user", "totp", "anna", "--off")
    assert "removed the TOTP second factor of console user anna" in off
    assert new_secret not in off
    assert list_users(path)[1].totp_secret is None
    assert new_secret not in path.read_text()
    assert "  totp on" not in run.ok("console", "user", "list")


def test_totp_refusals_change_nothing(run: Run, node_dir: Path, tmp_path: Path) -> None:
    good = _secret(tmp_path, GOOD)
    run.ok("console", "user", "add", "admin1", "--role", "admin", "--password-file", good)
    run.ok("console", "user", "add", "anna", "--role", "clerk", "--password-file", good)
    run.ok("console", "user", "add", "bert", "--role", "clerk", "--password-file", good)
    run.ok("console", "user", "totp", "bert")
    run.ok("console", "user", "disable", "bert")
    path = node_dir / "console-users.json"
    before = path.read_bytes()
    assert "no console user named 'nobody'" in run.refused("console", "user", "totp", "nobody")
    assert "no console user named 'nobody'" in run.refused(
        "console", "user", "totp", "nobody", "--off"
    )
    assert "was disabled" in run.refused("console", "user", "totp", "bert")
    assert "was disabled" in run.refused("console", "user", "totp", "bert", "--off")
    assert "has no TOTP second factor" in run.refused("console", "user", "totp", "anna", "--off")
    for name in ("../anna", "Anna", "", "élodie", "x" * 65, "anna\n"):
        assert "console user name" in run.refused("console", "user", "totp", name)
        assert "console user name" in run.refused("console", "user", "totp", name, "--off")
    assert path.read_bytes() == before


def test_totp_without_users_or_with_a_damaged_secret(
    run: Run, node_dir: Path, tmp_path: Path
) -> None:
    path = node_dir / "console-users.json"
    assert "no console user named 'anna'" in run.refused("console", "user", "totp", "anna")
    assert not path.exists()
    run.ok("console", "user", "add", "anna", "--role", "clerk",
           "--password-file", _secret(tmp_path, GOOD))  # fmt: skip
    document = json.loads(path.read_text())
    document["users"][0]["totp_secret"] = "jbswy3dpehpk3pxp"  # lower case: not as written
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    for args in (("totp", "anna"), ("totp", "anna", "--off"), ("list",)):
        err = run.refused("console", "user", *args)
        assert str(path) in err and "totp_secret" in err and "jbswy3dp" not in err
    assert path.read_bytes() == before


def test_list_of_no_users(run: Run, node_dir: Path) -> None:
    assert "no console users" in run.ok("console", "user", "list")
    assert json.loads(run.ok("console", "user", "list", "--json")) == {"users": []}
    assert not (node_dir / "console-users.json").exists()


def test_password_typed_twice(run: Run, node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    typed = iter([GOOD, GOOD, OTHER, "a different one!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    run.ok("console", "user", "add", "anna", "--role", "clerk")
    path = node_dir / "console-users.json"
    assert check_password(list_users(path)[0], GOOD)
    before = path.read_bytes()
    assert "the two passwords differ" in run.refused("console", "user", "passwd", "anna")
    assert path.read_bytes() == before


def test_no_password_typed(run: Run, node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def end_of_input(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", end_of_input)
    assert "no password given" in run.refused("console", "user", "add", "anna", "--role", "clerk")
    assert not (node_dir / "console-users.json").exists()


@pytest.mark.parametrize(
    ("name", "role", "why"),
    [
        ("../x", "clerk", "console user name '../x'"),
        ("A", "clerk", "console user name 'A'"),
        ("élodie", "clerk", "console user name"),
        ("", "clerk", "console user name ''"),
        ("x" * 65, "clerk", "console user name"),
        ("a/b", "clerk", "console user name"),
        ("anna", "root", "console role 'root'"),
        ("anna", "Admin", "console role 'Admin'"),
        ("anna", "", "console role ''"),
    ],
)
def test_bad_names_and_roles_are_refused_before_the_password(
    run: Run, node_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, role: str, why: str
) -> None:
    def never(prompt: str = "") -> str:
        raise AssertionError("asked for a password for a name that is refused anyway")

    monkeypatch.setattr(getpass, "getpass", never)
    assert why in run.refused("console", "user", "add", name, "--role", role)
    assert not (node_dir / "console-users.json").exists()


@pytest.mark.parametrize(
    ("content", "mode", "why"),
    [
        ("short one\n", 0o600, "at least 12 characters"),
        ("\nthe password is on line two", 0o600, "at least 12 characters"),
        ("zzzzzzzzzzzzzzzz\n", 0o600, "one character repeated"),
        ("x" * 1025 + "\n", 0o600, "at most 1024"),
        (GOOD, 0o644, "open to group or others (mode 0644)"),
        (GOOD, 0o640, "chmod 600"),
        (GOOD, 0o604, "open to group or others"),
        ("", 0o600, "is empty"),
        (b"\xff\xfe not text at all", 0o600, "not UTF-8"),
        ("y" * 5000, 0o600, "more than 4096 bytes"),
    ],
)
def test_bad_password_files(
    run: Run, node_dir: Path, tmp_path: Path, content: str | bytes, mode: int, why: str
) -> None:
    secret = _secret(tmp_path, content, mode)
    err = run.refused("console", "user", "add", "anna", "--role", "clerk",
                      "--password-file", secret)  # fmt: skip
    assert why in err
    if isinstance(content, str) and content.strip():
        assert content.strip() not in err
    assert not (node_dir / "console-users.json").exists()


def test_password_file_missing_or_not_a_file(run: Run, node_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    assert "No such file" in run.refused("console", "user", "add", "anna", "--role", "clerk",
                                         "--password-file", missing)  # fmt: skip
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    assert "not a regular file" in run.refused("console", "user", "add", "anna", "--role",
                                               "clerk", "--password-file", folder)  # fmt: skip
    assert not (node_dir / "console-users.json").exists()


def test_first_line_only_and_crlf(run: Run, node_dir: Path, tmp_path: Path) -> None:
    secret = _secret(tmp_path, GOOD + "\r\nsecond line\n")
    run.ok("console", "user", "add", "anna", "--role", "clerk", "--password-file", secret)
    assert check_password(list_users(node_dir / "console-users.json")[0], GOOD)


def test_refusals_change_nothing(run: Run, node_dir: Path, tmp_path: Path) -> None:
    good = _secret(tmp_path, GOOD)
    run.ok("console", "user", "add", "admin1", "--role", "admin", "--password-file", good)
    run.ok("console", "user", "add", "anna", "--role", "clerk", "--password-file", good)
    path = node_dir / "console-users.json"
    before = path.read_bytes()
    assert "exists already" in run.refused(
        "console", "user", "add", "anna", "--role", "officer", "--password-file", good
    )
    assert "no console user named 'bert'" in run.refused(
        "console", "user", "passwd", "bert", "--password-file", good
    )
    assert "no console user named 'bert'" in run.refused("console", "user", "disable", "bert")
    assert "last enabled admin" in run.refused("console", "user", "disable", "admin1")
    assert path.read_bytes() == before
    run.ok("console", "user", "disable", "anna")
    disabled = path.read_bytes()
    assert "exists already" in run.refused(
        "console", "user", "add", "anna", "--role", "clerk", "--password-file", good
    )
    assert "was disabled" in run.refused(
        "console", "user", "passwd", "anna", "--password-file", good
    )
    assert "was disabled" in run.refused("console", "user", "disable", "anna")
    assert path.read_bytes() == disabled


def test_a_damaged_users_file_is_one_line_naming_it(run: Run, node_dir: Path) -> None:
    path = node_dir / "console-users.json"
    path.write_bytes(b'{"version": 1, "users": [{"name": "\xff"}]}')
    before = path.read_bytes()
    for args in (("list",), ("disable", "anna"), ("add", "anna", "--role", "clerk")):
        assert str(path) in run.refused("console", "user", *args)
    assert path.read_bytes() == before


def test_a_folder_that_is_no_node(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["console", "user", "list", "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ephyto: error: ") and len(err.splitlines()) == 1
    assert "node.toml" in err
    assert list(tmp_path.iterdir()) == []
