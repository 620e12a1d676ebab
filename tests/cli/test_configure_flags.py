"""`ephyto node configure` and `ephyto hub configure` set by flag what a deployment would
otherwise edit node.toml or hub.toml for (issue 12): listeners, the metrics listener, the
database and its password file, the API token file, the hub poll and the lease. A good
value round-trips through the file; a hostile one is refused in one line naming the flag,
and the file is left exactly as it was."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli.main import main
from node.hub.config import load_hub_config
from node.identity.config import load_config
from node.observe.settings import ListenAddress
from tests.databases import postgres_database

TOKEN = "k" * 44
PASSWORD = "pg-secret-value-7"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A node and a hub made once (keys take a moment), with secret files beside them."""
    root = tmp_path_factory.mktemp("configure")
    assert main(["node", "init", "--country", "NL", "--name", "N", "--dir", str(root / "n")]) == 0
    assert main(["hub", "init", "--name", "Hub", "--endpoint", "https://127.0.0.1:8443",
                 "--dir", str(root / "h")]) == 0  # fmt: skip
    (root / "token").write_text(TOKEN + "\n", encoding="utf-8")
    (root / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    (root / "empty").write_text("", encoding="utf-8")
    (root / "short").write_text("s" * 31, encoding="utf-8")
    (root / "huge").write_bytes(b"x" * 5000)
    (root / "binary").write_bytes(b"\xff\xfe" * 20)
    yield root


@pytest.fixture
def node_dir(made: Path, tmp_path: Path) -> Path:
    """A fresh copy of the node directory's node.toml (the keys are not needed here)."""
    directory = tmp_path / "n"
    directory.mkdir()
    (directory / "node.toml").write_bytes((made / "n" / "node.toml").read_bytes())
    (directory / "node.toml").chmod(0o600)
    return directory


@pytest.fixture
def hub_dir(made: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "h"
    directory.mkdir()
    (directory / "hub.toml").write_bytes((made / "h" / "hub.toml").read_bytes())
    return directory


def test_node_flags_round_trip_through_node_toml(
    made: Path, node_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://ephyto@db.example:5432/node_nl"
    code = main(["node", "configure", "--dir", str(node_dir),
                 "--listen", "0.0.0.0:8451", "--api", "[::1]:8081", "--metrics", "0.0.0.0:9471",
                 "--database-url", url, "--database-password-file", str(made / "password"),
                 "--api-token-file", str(made / "token"),
                 "--hub-poll-seconds", "10", "--lease-seconds", "45"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    path = node_dir / "node.toml"
    config = load_config(path)
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 8451)
    assert config.api_address == ("::1", 8081)
    assert config.metrics_listen == ListenAddress("0.0.0.0", 9471)
    assert (config.database_url, config.database_password_file) == (url, str(made / "password"))
    assert (config.api_token, config.api_token_file) == (TOKEN, str(made / "token"))
    assert (config.hub_poll_seconds, config.lease_seconds) == (10, 45)
    text = path.read_text(encoding="utf-8")
    assert TOKEN not in text and PASSWORD not in text and "api_token" not in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    out = capsys.readouterr().out
    assert TOKEN not in out and PASSWORD not in out
    # The same flags again: the same file, byte for byte (compose's setup runs twice).
    before = path.read_bytes()
    assert main(["node", "configure", "--dir", str(node_dir), "--listen", "0.0.0.0:8451"]) == 0
    assert path.read_bytes() == before
    # `off` turns the metrics listener and the password file off again.
    assert main(["node", "configure", "--dir", str(node_dir), "--metrics", "off",
                 "--database-url", "sqlite+aiosqlite:////tmp/n.db",
                 "--database-password-file", "off"]) == 0  # fmt: skip
    config = load_config(path)
    assert config.metrics_listen is None and config.database_password_file is None


NODE_REFUSED = [
    (["--listen", "nowhere"], "--listen: 'nowhere' is not HOST:PORT"),
    (["--listen", "1.2.3.4:70000"], "--listen: '1.2.3.4:70000': port 70000 is out of range"),
    (["--listen", "[::1:80"], "--listen: "),
    (["--listen", "a b:80"], "is not a host name or address"),
    (["--listen", "x" * 5000 + ":1"], "--listen: expected HOST:PORT"),
    (["--listen", ""], "--listen: "),
    (["--api", "127.0.0.1:-1"], "--api: "),
    (["--api", "127.0.0.1:8081", "--api-port", "8082"], "drop --api-port"),
    (["--metrics", "on"], "--metrics: 'on' is not HOST:PORT"),
    (["--database-url", "mysql://u@h/db"], "--database-url: 'mysql://u@h/db' is not a database"),
    (["--database-url", "not a url"], "--database-url: "),
    (["--database-url", "postgresql://u@h/d\x1b[2J"], "--database-url: "),
    (["--database-password-file", "{made}/password"], "SQLite has no password"),
    (
        [
            "--database-url",
            "postgresql+asyncpg://u:inline@h/db",
            "--database-password-file",
            "{made}/password",
        ],
        "holds a password already",
    ),
    (
        [
            "--database-url",
            "postgresql+asyncpg://u@h/db",
            "--database-password-file",
            "{made}/absent",
        ],
        "--database-password-file: cannot read ",
    ),
    (
        [
            "--database-url",
            "postgresql+asyncpg://u@h/db",
            "--database-password-file",
            "{made}/empty",
        ],
        "is empty",
    ),
    (
        ["--database-url", "postgresql+asyncpg://u@h/db", "--database-password-file", "{made}"],
        "--database-password-file: cannot read ",
    ),
    (["--database-password-file", ""], "--database-password-file: expected a file path"),
    (["--api-token-file", "{made}/absent"], "--api-token-file: cannot read "),
    (["--api-token-file", "{made}/empty"], "is empty"),
    (["--api-token-file", "{made}/short"], "--api-token-file: too short to be a secret"),
    (["--api-token-file", "{made}/huge"], "holds more than 4096 bytes"),
    (["--api-token-file", "{made}/binary"], "is not UTF-8 text"),
    (["--api-token-file", ""], "--api-token-file: expected a file path"),
    (["--hub-poll-seconds", "0"], "--hub-poll-seconds: must be 1 or more"),
    (["--hub-poll-seconds", "-5"], "--hub-poll-seconds: must be 1 or more"),
    (["--hub-poll-seconds", "1e3"], "--hub-poll-seconds '1e3': expected a whole number"),
    (["--lease-seconds", "\u0663"], "--lease-seconds '\u0663': expected a whole number"),
    (["--lease-seconds", ""], "--lease-seconds '': expected a whole number"),
    # One good flag with one bad: nothing of either is written.
    (["--listen", "0.0.0.0:9000", "--lease-seconds", "0"], "--lease-seconds: must be 1"),
    (["--listen", "0.0.0.0:9000", "--registry", "http://r.example/d.json"], "give --registry"),
    (["--discover", "--listen", "0.0.0.0:9000"], "--listen: give it to a `configure` of its"),
    ([], "give --registry URL and --anchor FILE, or --discover, or a setting to change"),
]


@pytest.mark.parametrize(("flags", "message"), NODE_REFUSED)
def test_a_hostile_node_flag_is_refused_and_nothing_is_written(
    made: Path,
    node_dir: Path,
    flags: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = (node_dir / "node.toml").read_bytes()
    argv = [flag.replace("{made}", str(made)) for flag in flags]
    code = main(["node", "configure", "--dir", str(node_dir), *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("ephyto: error: ") and len(err.splitlines()) == 1, err
    assert message in err
    assert "internal error" not in err and "Traceback" not in err
    assert (node_dir / "node.toml").read_bytes() == before
    assert sorted(p.name for p in node_dir.iterdir()) == ["node.toml"]


def test_hub_flags_round_trip_through_hub_toml(
    made: Path, hub_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://ephyto@db.example:5432/hub"
    code = main(["hub", "configure", "--dir", str(hub_dir), "--listen", "0.0.0.0:8444",
                 "--metrics", "127.0.0.1:9462", "--database-url", url,
                 "--database-password-file", str(made / "password")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    path = hub_dir / "hub.toml"
    config = load_hub_config(path)
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 8444)
    assert config.metrics_listen == ListenAddress("127.0.0.1", 9462)
    assert (config.database_url, config.database_password_file) == (url, str(made / "password"))
    assert PASSWORD not in path.read_text() and os.stat(path).st_mode & 0o777 == 0o600
    assert main(["hub", "configure", "--dir", str(hub_dir), "--metrics", "off"]) == 0
    assert load_hub_config(path).metrics_listen is None


HUB_REFUSED = [
    (["--listen", "0.0.0.0"], "--listen: '0.0.0.0' is not HOST:PORT"),
    (["--metrics", "127.0.0.1:65536"], "--metrics: "),
    (["--database-url", "file:///etc/passwd"], "--database-url: "),
    (["--database-password-file", "{made}/password"], "SQLite has no password"),
    (
        [
            "--database-url",
            "postgresql+asyncpg://u@h/db",
            "--database-password-file",
            "{made}/absent",
        ],
        "cannot read ",
    ),
    (["--api", "127.0.0.1:1"], "unrecognized arguments: --api"),
    (["--listen", "0.0.0.0:9000", "--anchor", "{made}/token"], "give --registry URL and"),
    ([], "give --registry URL and --anchor FILE, or a setting to change"),
]


@pytest.mark.parametrize(("flags", "message"), HUB_REFUSED)
def test_a_hostile_hub_flag_is_refused_and_nothing_is_written(
    made: Path,
    hub_dir: Path,
    flags: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = (hub_dir / "hub.toml").read_bytes()
    argv = [flag.replace("{made}", str(made)) for flag in flags]
    try:
        code = main(["hub", "configure", "--dir", str(hub_dir), *argv])
    except SystemExit as e:  # argparse's own refusal (an unknown flag)
        code = int(str(e.code))
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err and "internal error" not in err
    assert err.strip().splitlines()[-1].startswith("ephyto")
    assert (hub_dir / "hub.toml").read_bytes() == before
    assert sorted(p.name for p in hub_dir.iterdir()) == ["hub.toml"]


@pytest.mark.asyncio
async def test_the_node_opens_postgresql_with_the_password_from_its_file(
    made: Path, node_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async for url in postgres_database("ephyto_password_file_test"):
        configure = ["node", "configure", "--dir", str(node_dir), "--database-url", url,
                     "--database-password-file", str(made / "password")]  # fmt: skip
        assert await asyncio.to_thread(main, configure) == 0
        # Real PostgreSQL: the store is made through the URL with the password in it.
        assert await asyncio.to_thread(main, ["node", "migrate", "--dir", str(node_dir)]) == 0
        out, err = capsys.readouterr()
        assert PASSWORD not in out + err
        assert url.rsplit("/", 1)[1] in out, out + err  # the database named, not its password
        assert "***" in out, out
