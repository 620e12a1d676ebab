"""A client's webhook in api-clients.json: kept with its secret, refused when it cannot
work, and the file unchanged by a refusal."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.errors import ConfigError, InputError
from node.identity.api_clients import (
    Webhook,
    add_client,
    add_webhook_client,
    parse_clients,
    read_clients,
    revoke_client,
    set_webhook,
)

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_added_with_a_webhook_keeps_url_and_secret(tmp_path: Path) -> None:
    path = tmp_path / "api-clients.json"
    token, secret = add_webhook_client(path, "dash", ["read"], "https://dash.example/hook", now=NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()
    (client,) = read_clients(path)
    assert client.webhook == Webhook("https://dash.example/hook", secret)
    assert secret.startswith("whsec_") and len(secret) > 40
    new = set_webhook(path, "dash", "https://dash.example/other")
    assert new != secret
    assert read_clients(path)[0].webhook == Webhook("https://dash.example/other", new)


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/", "https:///nohost", "dash.example/hook", "https://u:p@x.example/",
     "https://x.example:99999/", "https://x.example/a b", "https://x.example/" + "a" * 2048],
)  # fmt: skip
def test_bad_urls_are_refused_and_change_nothing(tmp_path: Path, url: str) -> None:
    path = tmp_path / "api-clients.json"
    add_client(path, "dash", ["read"], now=NOW)
    before = path.read_bytes()
    with pytest.raises(InputError, match="webhook URL"):
        set_webhook(path, "dash", url)
    with pytest.raises(InputError, match="webhook URL"):
        add_webhook_client(path, "other", ["read"], url, now=NOW)
    assert path.read_bytes() == before


def test_a_webhook_needs_read_and_a_live_client(tmp_path: Path) -> None:
    path = tmp_path / "api-clients.json"
    add_client(path, "sender", ["submit"], now=NOW)
    add_client(path, "gone", ["read"], now=NOW)
    revoke_client(path, "gone", now=NOW)
    before = path.read_bytes()
    with pytest.raises(InputError, match="needs the read scope"):
        set_webhook(path, "sender", "https://x.example/")
    with pytest.raises(InputError, match="needs the read scope"):
        add_webhook_client(path, "new", ["submit"], "https://x.example/", now=NOW)
    with pytest.raises(InputError, match="revoked"):
        set_webhook(path, "gone", "https://x.example/")
    with pytest.raises(InputError, match="no API client"):
        set_webhook(path, "nobody", "https://x.example/")
    assert path.read_bytes() == before
    add_webhook_client(path, "boss", ["admin"], "https://x.example/", now=NOW)  # admin reads


def test_a_damaged_webhook_entry_is_a_config_error() -> None:
    entry = (
        b'{"version": 1, "clients": [{"name": "a", "scopes": ["read"], "token_sha256": "'
        + b"0" * 64
        + b'", "created": "2026-12-07T10:00:00+00:00", "webhook": {"url": "x", "secret": "s"}}]}'
    )
    with pytest.raises(ConfigError, match="bad webhook url"):
        parse_clients(entry, source="test")
