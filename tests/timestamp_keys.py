"""Fixed keys and time for the timestamp tests, unit and integration: the maintainer's
key, the registry's online timestamp key, a second one and an intruder's, and key sets of
them in the directory's plain form."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id

NOW = datetime(2026, 3, 2, tzinfo=UTC)
MAINTAINER = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
ONLINE = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
SECOND = Ed25519PrivateKey.from_private_bytes(bytes([10]) * 32)
INTRUDER = Ed25519PrivateKey.from_private_bytes(bytes([11]) * 32)


def key_set(keys: list[Ed25519PrivateKey], threshold: int = 1) -> dict[str, Any]:
    """`keys` as a directory's key set (maintainers, timestamp_keys): names k0, k1, ..."""
    entries = []
    for i, key in enumerate(keys):
        raw = key.public_key().public_bytes_raw()
        entries.append(
            {"name": f"k{i}", "keyid": key_id(raw), "public_key": base64.b64encode(raw).decode()}
        )
    return {"threshold": threshold, "keys": entries}


def time_text(at: datetime) -> str:
    """`at` as the directory writes times."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
