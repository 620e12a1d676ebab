"""Named API clients: `api-clients.json` beside node.toml, each client's token kept only
as its SHA-256.

Each client of the national-system API (a certification system, a dashboard, an
inspection app) has a name, its own token and scopes: `submit` (submit, withdraw,
replace), `read` (every GET), `respond` (answering a received certificate), `admin`
(everything). The token is shown once, when the client is added; the file holds its
SHA-256, which is enough because a token is 256 random bits (no dictionary to guess
from). A revoked client stays in the file so that its name is never given again: the
event history names clients. The `api_token` of node.toml is the client
`national-system` with every scope, as it always was.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from node.errors import ConfigError, InputError
from node.fileio import exclusive_lock, write_atomic

CLIENTS_FILE = "api-clients.json"
SCOPES = ("submit", "read", "respond", "admin")
# The name of node.toml's own api_token, which has every scope.
LEGACY_CLIENT = "national-system"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MODE = 0o600


@dataclass(frozen=True, slots=True)
class ApiClient:
    """One named client: never its token, only the token's SHA-256 (hex)."""

    name: str
    scopes: frozenset[str]
    token_sha256: str
    created: datetime
    revoked: datetime | None = None

    def allows(self, scope: str) -> bool:
        """Whether a call that needs `scope` is this client's to make."""
        return self.revoked is None and ("admin" in self.scopes or scope in self.scopes)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) the file keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def clients_path(node_dir: Path) -> Path:
    return node_dir / CLIENTS_FILE


def read_clients(path: Path) -> tuple[ApiClient, ...]:
    """The clients in `path`; none if there is no file. ConfigError if it is malformed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the API clients: {e.strerror}") from e
    return parse_clients(data, source=str(path))


def parse_clients(data: bytes, *, source: str) -> tuple[ApiClient, ...]:
    """The clients of an api-clients.json document; ConfigError naming what is wrong."""
    try:
        document = json.loads(data)
        entries = document["clients"]
        if document.get("version") != 1 or not isinstance(entries, list):
            raise ValueError("expected version 1 and a list of clients")
        found = tuple(_client(entry) for entry in entries)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{source}: not a valid API clients file ({e})") from e
    names = [c.name for c in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: a client name appears twice")
    return found


def dump_clients(clients: Iterable[ApiClient]) -> bytes:
    document = {
        "version": 1,
        "clients": [
            {
                "name": c.name,
                "scopes": sorted(c.scopes),
                "token_sha256": c.token_sha256,
                "created": c.created.isoformat(),
                "revoked": None if c.revoked is None else c.revoked.isoformat(),
            }
            for c in clients
        ],
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def add_client(path: Path, name: str, scopes: Iterable[str], *, now: datetime) -> str:
    """Add client `name` with `scopes`; returns its new token (shown once, never kept).

    InputError for a bad or taken name (a revoked one too) or an unknown scope.
    """
    wanted = frozenset(scopes)
    if _NAME.fullmatch(name) is None:
        raise InputError(
            f"client name {name!r}: 1 to 64 characters a-z, 0-9, '.', '_', '-',"
            " starting with a letter or digit"
        )
    if name == LEGACY_CLIENT:
        raise InputError(f"{LEGACY_CLIENT!r} is node.toml's own api_token: choose another name")
    unknown = sorted(wanted - set(SCOPES))
    if unknown or not wanted:
        raise InputError(f"scopes must be one or more of {', '.join(SCOPES)}")
    token = secrets.token_urlsafe(32)
    with exclusive_lock(_lock(path), _MODE):
        clients = read_clients(path)
        if any(c.name == name for c in clients):
            raise InputError(f"an API client named {name!r} exists already (or was revoked)")
        added = ApiClient(name, wanted, token_digest(token), now)
        write_atomic(path, dump_clients((*clients, added)), _MODE)
    return token


def revoke_client(path: Path, name: str, *, now: datetime) -> ApiClient:
    """Revoke client `name` (its token is refused from now on); InputError if unknown."""
    with exclusive_lock(_lock(path), _MODE):
        clients = read_clients(path)
        found = [c for c in clients if c.name == name]
        if not found:
            raise InputError(f"no API client named {name!r} in {path}")
        if found[0].revoked is not None:
            raise InputError(f"API client {name!r} was already revoked on {found[0].revoked}")
        revoked = replace(found[0], revoked=now)
        write_atomic(path, dump_clients(revoked if c.name == name else c for c in clients), _MODE)
    return revoked


def _lock(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _client(entry: dict[str, Any]) -> ApiClient:
    name, scopes, digest = entry["name"], entry["scopes"], entry["token_sha256"]
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ValueError(f"bad client name {name!r}")
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise ValueError(f"client {name}: bad scopes {scopes!r}")
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise ValueError(f"client {name}: token_sha256 must be 64 hex digits")
    revoked = entry.get("revoked")
    return ApiClient(
        name,
        frozenset(scopes),
        digest,
        _time(entry["created"]),
        None if revoked is None else _time(revoked),
    )


def _time(text: Any) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return parsed
