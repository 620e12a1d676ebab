"""node.toml's `[outbox]` section: the retry cap and the claim lease, kept through a
round trip, refused with the file and key named when wrong."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from node.errors import ConfigError
from node.identity.config import (
    DEFAULT_LEASE_SECONDS,
    dump_config,
    new_config,
    parse_config,
)


def _config() -> str:
    config = new_config(Path("/n"), country="NL", name="N", endpoint=None, api_token="t" * 43)
    return dump_config(dataclasses.replace(config, lease_seconds=15, retry_cap_seconds=20))


def test_the_lease_is_kept_and_defaults_to_five_minutes() -> None:
    config = parse_config(_config(), source="/n/node.toml", directory=Path("/n"))
    assert (config.lease_seconds, config.retry_cap_seconds) == (15, 20)
    plain = new_config(Path("/n"), country="NL", name="N", endpoint=None, api_token="t" * 43)
    assert "[outbox]" not in dump_config(plain)
    assert plain.lease_seconds == DEFAULT_LEASE_SECONDS == 300


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("lease_seconds = 0", "outbox.lease_seconds: must be 1 or more"),
        ("lease_seconds = -5", "outbox.lease_seconds: must be 1 or more"),
        ('lease_seconds = "15"', "outbox.lease_seconds: expected an integer"),
        ("lease_seconds = 1.5", "outbox.lease_seconds: expected an integer"),
        ("lease_secs = 15", "outbox.lease_secs: unknown key"),
    ],
)
def test_a_wrong_lease_is_refused_naming_file_and_key(new: str, message: str) -> None:
    text = _config()
    assert "lease_seconds = 15" in text
    with pytest.raises(ConfigError, match=f"^/n/node.toml: .*{message}"):
        parse_config(text.replace("lease_seconds = 15", new, 1), source="/n/node.toml",
                     directory=Path("/n"))  # fmt: skip


def test_via_hub_is_kept_and_absent_by_default() -> None:
    config = new_config(Path("/n"), country="NL", name="N", endpoint=None, api_token="t" * 43)
    assert config.via_hub == () and "via_hub" not in dump_config(config)
    text = dump_config(dataclasses.replace(config, via_hub=("FR", "CL")))
    parsed = parse_config(text, source="/n/node.toml", directory=Path("/n"))
    assert parsed.via_hub == ("FR", "CL")
    every = dump_config(dataclasses.replace(config, via_hub=("*",)))
    assert parse_config(every, source="/n/node.toml", directory=Path("/n")).via_hub == ("*",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"FR"', "hub.via_hub: expected a list of strings"),
        ('["fr"]', "hub.via_hub: 'fr' is no country code"),
        ('["FRA"]', "hub.via_hub: 'FRA' is no country code"),
        ('["*", "FR"]', 'hub.via_hub: "*" (every partner) stands alone'),
        ('["FR", "FR"]', "hub.via_hub: a country is listed twice"),
        ('["<script>"]', "hub.via_hub: '<script>' is no country code"),
        ("[1]", "hub.via_hub: expected a list of strings"),
    ],
)
def test_a_wrong_via_hub_is_refused_naming_file_and_key(value: str, message: str) -> None:
    plain = new_config(Path("/n"), country="NL", name="N", endpoint=None, api_token="t" * 43)
    text = dump_config(plain) + f"\n[hub]\nvia_hub = {value}\n"
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text, source="/n/node.toml", directory=Path("/n"))
