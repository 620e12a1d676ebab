"""`ephyto node api-client add|list|revoke`, run as an operator runs it."""

from __future__ import annotations

import stat
from pathlib import Path

from node.identity.api_clients import read_clients, token_digest
from tests.ephyto_cli import ok, refused


def _node(tmp_path: Path) -> Path:
    directory = tmp_path / "node"
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", directory)
    return directory


def test_add_list_revoke(tmp_path: Path) -> None:
    directory = _node(tmp_path)
    added = ok("node", "api-client", "add", "backoffice", "--scope", "submit", "--scope",
               "read", "--dir", directory)  # fmt: skip
    token = added.split("token (shown once, keep it secret): ")[1].strip()
    path = directory / "api-clients.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()
    (client,) = read_clients(path)
    assert client.token_sha256 == token_digest(token)
    assert client.scopes == {"submit", "read"}
    listed = ok("node", "api-client", "list", "--dir", directory)
    assert "backoffice  read,submit  created " in listed
    assert token not in listed and "revoked" not in listed
    assert "revoked API client backoffice" in ok(
        "node", "api-client", "revoke", "backoffice", "--dir", directory
    )
    assert "revoked 20" in ok("node", "api-client", "list", "--dir", directory)
    assert read_clients(path)[0].revoked is not None


def test_refusals_are_one_line_and_change_nothing(tmp_path: Path) -> None:
    directory = _node(tmp_path)
    path = directory / "api-clients.json"
    ok("node", "api-client", "add", "dash", "--scope", "read", "--dir", directory)
    before = path.read_bytes()
    assert "exists already" in refused(
        "node", "api-client", "add", "dash", "--scope", "read", "--dir", directory
    )
    assert "client name" in refused(
        "node", "api-client", "add", "Bad Name", "--scope", "read", "--dir", directory
    )
    assert "national-system" in refused(
        "node", "api-client", "add", "national-system", "--scope", "read", "--dir", directory
    )
    assert "no API client named 'nobody'" in refused(
        "node", "api-client", "revoke", "nobody", "--dir", directory
    )
    assert path.read_bytes() == before
    ok("node", "api-client", "revoke", "dash", "--dir", directory)
    assert "already revoked" in refused("node", "api-client", "revoke", "dash", "--dir", directory)


def test_webhook_secret_is_printed_once_and_kept(tmp_path: Path) -> None:
    directory = _node(tmp_path)
    added = ok("node", "api-client", "add", "dash", "--scope", "read", "--webhook",
               "https://dash.example/hook", "--dir", directory)  # fmt: skip
    secret = added.split("webhook secret (shown once, keep it secret): ")[1].strip()
    path = directory / "api-clients.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (client,) = read_clients(path)
    assert client.webhook is not None and client.webhook.secret == secret
    assert "webhook https://dash.example/hook" in ok(
        "node", "api-client", "list", "--dir", directory
    )
    assert secret not in ok("node", "api-client", "list", "--dir", directory)
    changed = ok("node", "api-client", "webhook", "dash", "https://dash.example/new",
                 "--dir", directory)  # fmt: skip
    assert "https://dash.example/new" in changed and secret not in changed
    before = path.read_bytes()
    assert "webhook URL" in refused(
        "node", "api-client", "webhook", "dash", "ftp://x", "--dir", directory
    )
    assert path.read_bytes() == before
    ok("node", "api-client", "add", "sender", "--scope", "submit", "--dir", directory)
    before = path.read_bytes()
    refused("node", "api-client", "add", "s2", "--scope", "submit", "--webhook",
            "https://x.example/", "--dir", directory)  # fmt: skip
    assert path.read_bytes() == before
