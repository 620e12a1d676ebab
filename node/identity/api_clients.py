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

A client with the `read` scope may have a webhook (node/api/webhooks.py): a URL the node
POSTs the event feed to, signed with a secret shared with the client. Unlike a token,
the secret is kept in the file as it is, because the node must sign with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from node.errors import ConfigError, InputError
from node.fileio import exclusive_lock, write_atomic

CLIENTS_FILE = "api-clients.json"
SCOPES = ("submit", "read", "respond", "admin")
# The name of node.toml's own api_token, which has every scope.
LEGACY_CLIENT = "national-system"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MODE = 0o600
_URL_MAX = 2048


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where the node POSTs a client's events, and the secret it signs them with."""

    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class ApiClient:
    """One named client: never its token, only the token's SHA-256 (hex)."""

    name: str
    scopes: frozenset[str]
    token_sha256: str
    created: datetime
    revoked: datetime | None = None
    webhook: Webhook | None = None

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
    document = {"version": 1, "clients": [_entry(c) for c in clients]}
    return (json.dumps(document, indent=2) + "\n").encode()


def _entry(c: ApiClient) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": c.name,
        "scopes": sorted(c.scopes),
        "token_sha256": c.token_sha256,
        "created": c.created.isoformat(),
        "revoked": None if c.revoked is None else c.revoked.isoformat(),
    }
    if c.webhook is not None:  # absent otherwise: files without webhooks read as before
        entry["webhook"] = {"url": c.webhook.url, "secret": c.webhook.secret}
    return entry


def add_client(path: Path, name: str, scopes: Iterable[str], *, now: datetime) -> str:
    """Add client `name` with `scopes`; returns its new token (shown once, never kept).

    InputError for a bad or taken name (a revoked one too) or an unknown scope.
    """
    token, _ = _add(path, name, frozenset(scopes), None, now)
    return token


def add_webhook_client(
    path: Path, name: str, scopes: Iterable[str], url: str, *, now: datetime
) -> tuple[str, str]:
    """Add client `name` with a webhook to `url`; returns its token and the webhook's
    secret. InputError as `add_client`, and for a bad URL or a client without `read`."""
    wanted = frozenset(scopes)
    _check_webhook(name, wanted, url)
    secret = new_webhook_secret()
    token, _ = _add(path, name, wanted, Webhook(url, secret), now)
    return token, secret


def set_webhook(path: Path, name: str, url: str) -> str:
    """Give client `name` a webhook to `url` (replacing one it had, and its secret);
    returns the new secret. InputError for an unknown or revoked client, one without
    `read`, or a bad URL; the file is then unchanged."""
    secret = new_webhook_secret()
    with exclusive_lock(_lock(path), _MODE):
        clients = read_clients(path)
        current = _live(clients, name, path, "was revoked on")
        _check_webhook(name, current.scopes, url)
        changed = replace(current, webhook=Webhook(url, secret))
        write_atomic(path, dump_clients(changed if c.name == name else c for c in clients), _MODE)
    return secret


def new_webhook_secret() -> str:
    """256 random bits, URL-safe: the HMAC key is this text's ASCII bytes."""
    return "whsec_" + secrets.token_urlsafe(32)


def _check_webhook(name: str, scopes: frozenset[str], url: str) -> None:
    if not ({"read", "admin"} & scopes):
        raise InputError(f"API client {name!r}: a webhook needs the read scope")
    problem = _url_problem(url)
    if problem is not None:
        raise InputError(f"webhook URL {url!r}: {problem}")


def _url_problem(url: str) -> str | None:
    if len(url) > _URL_MAX:
        return f"longer than {_URL_MAX} characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number or out of range
    except ValueError as e:
        return f"not a URL ({e})"
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// (or http://) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user or password (the signature authenticates the node)"
    if any(ch.isspace() for ch in url):
        return "must not hold spaces"
    return None


def _add(
    path: Path, name: str, wanted: frozenset[str], webhook: Webhook | None, now: datetime
) -> tuple[str, ApiClient]:
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
        added = ApiClient(name, wanted, token_digest(token), now, webhook=webhook)
        write_atomic(path, dump_clients((*clients, added)), _MODE)
    return token, added


def revoke_client(path: Path, name: str, *, now: datetime) -> ApiClient:
    """Revoke client `name` (its token is refused from now on); InputError if unknown."""
    with exclusive_lock(_lock(path), _MODE):
        clients = read_clients(path)
        revoked = replace(_live(clients, name, path, "was already revoked on"), revoked=now)
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
        _webhook(name, entry.get("webhook")),
    )


def _webhook(name: str, entry: Any) -> Webhook | None:
    if entry is None:
        return None
    url, secret = entry["url"], entry["secret"]
    if not isinstance(url, str) or _url_problem(url) is not None:
        raise ValueError(f"client {name}: bad webhook url {url!r}")
    if not isinstance(secret, str) or len(secret) < 16 or not secret.isascii():
        raise ValueError(f"client {name}: bad webhook secret")
    return Webhook(url, secret)


def _time(text: Any) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return parsed


def _live(clients: Sequence[ApiClient], name: str, path: Path, revoked: str) -> ApiClient:
    """Client `name`, not revoked; InputError saying which it is not (`revoked`: how)."""
    found = [c for c in clients if c.name == name]
    if not found:
        raise InputError(f"no API client named {name!r} in {path}")
    if found[0].revoked is not None:
        raise InputError(f"API client {name!r} {revoked} {found[0].revoked}")
    return found[0]
