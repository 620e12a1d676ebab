"""The node's configuration file (TOML): who it is, where its keys are, where it listens.

The file is written with mode 0600 because it holds the API token that the national
certification system uses to submit certificates: whoever reads it can act for the NPPO.
Key paths are relative to the directory of the file, so the directory can be moved.

The two secrets may instead live in files of their own (a container's /run/secrets, a
systemd credential): `[api] token_file` is read when the file is loaded, and
`database_password_file` when the store is opened (`NodeConfig.store_url`); neither
secret is then ever written into node.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import tomli_w

from node.errors import ConfigError, InputError
from node.identity.api_clients import CLIENTS_FILE
from node.identity.enrolment import Endpoint, check_country, check_name, parse_endpoint
from node.identity.protection import (
    KINDS,
    Pkcs11KeyRef,
    SecretSource,
    check_secret_name,
    pkcs11_fields,
    pkcs11_ref,
    secret_fields,
    secret_source,
)
from node.identity.secret_file import read_secret_file
from node.observe.settings import ListenAddress, LogFormat, parse_listen, parse_log_format

CONFIG_VERSION = 1
CONFIG_FILE = "node.toml"
DEFAULT_PORT = 8443
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_RETRY_CAP_SECONDS = 600
DEFAULT_LEASE_SECONDS = 300
DEFAULT_FALLBACK_ATTEMPTS = 3
DEFAULT_FALLBACK_SECONDS = 300
DEFAULT_HUB_POLL_SECONDS = 30
DEFAULT_REFRESH_SECONDS = 60
MIN_API_TOKEN_CHARACTERS = 32
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyPaths:
    """Where the key and certificate files are, relative to the config directory."""

    signing: str = "keys/signing.key"
    encryption: str = "keys/encryption.key"
    tls_key: str = "keys/tls.key"
    tls_certificate: str = "keys/tls.crt"
    # Written by `ephyto node rotate-keys`: the keys the node rotates to. Absent (None)
    # in a node that never rotated, so older files load unchanged.
    next_signing: str | None = None
    next_encryption: str | None = None
    # The next TLS key and its self-signed certificate (rotation requests of version 2).
    next_tls_key: str | None = None
    next_tls_certificate: str | None = None
    # Where the passphrase of encrypted key files comes from (node.identity.protection);
    # None: the key files are plain, protected by their 0600 mode only.
    passphrase: SecretSource | None = None
    # The signing key in a PKCS#11 token instead of the `signing` file (None: the file).
    signing_pkcs11: Pkcs11KeyRef | None = None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A node's settings; `directory` is where the file lives and is not written to it."""

    directory: Path
    country: str
    name: str
    endpoint: Endpoint | None
    api_token: str
    database_url: str
    listen_host: str
    listen_port: int
    keys: KeyPaths = KeyPaths()
    registry_url: str | None = None
    # Maintainer keys that sign the directory; empty until the registry exists. Kept so
    # older files load; `registry_anchor` (the maintainers' JSON file) is what is used.
    maintainer_keys: tuple[str, ...] = field(default=())
    # The maintainers' trust anchor (`{"threshold", "keys"}`), relative to `directory`.
    registry_anchor: str | None = None
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS
    # The national-system API: plain HTTP, so loopback unless behind a TLS reverse proxy.
    api_host: str = DEFAULT_API_HOST
    api_port: int | None = None  # None: listen_port + 1 (see `api_address`)
    # The longest wait between two delivery attempts to a partner that is down.
    retry_cap_seconds: int = DEFAULT_RETRY_CAP_SECONDS
    # How long a claimed delivery is the claiming process's alone; a process killed
    # mid-delivery leaves its claims to another process (or itself, restarted on
    # PostgreSQL) after this long. Longer than any delivery takes.
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    # The hub: by default the one the directory lists, trusted by its pins. A URL here
    # (the IPPC Hub's, say) is trusted through `hub_ca_file` instead.
    hub_url: str | None = None
    hub_ca_file: str | None = None
    # Direct first; through the hub after this many failed attempts or seconds.
    fallback_attempts: int = DEFAULT_FALLBACK_ATTEMPTS
    fallback_seconds: int = DEFAULT_FALLBACK_SECONDS
    # How often to pull from the hub and to ask it about what we relayed.
    hub_poll_seconds: int = DEFAULT_HUB_POLL_SECONDS
    # `[hub] via_hub`: partners (ISO codes, or "*" for all) sent to through the hub even
    # when they have a direct endpoint: an NPPO that exchanges with them through the hub
    # by agreement, or one whose national system works with the hub alone.
    via_hub: tuple[str, ...] = ()
    # `[metrics] listen`: /metrics and /health/* on a listener of their own (None: off).
    metrics_listen: ListenAddress | None = None
    # `[log] format`: "text" lines, or "json" (one object per line) for log shippers.
    log_format: LogFormat = "text"
    # `[api] token_file` (relative to `directory`, or absolute): load_config reads the
    # token from it into `api_token`, which is then never written to node.toml.
    api_token_file: str | None = None
    # `database_password_file`: PostgreSQL's password, put into `database_url` only when
    # the store is opened (`store_url`).
    database_password_file: str | None = None

    def path(self, relative: str) -> Path:
        """A path from the file, resolved against the config directory."""
        return self.directory / relative

    def store_url(self) -> str:
        """`database_url` with the password of `database_password_file`, to open the store
        with (never to print: see node.store.database.redacted). ConfigError when the file
        cannot be read."""
        return store_url(self.directory, self.database_url, self.database_password_file)

    @property
    def api_clients_file(self) -> Path:
        """The named API clients beside node.toml (node.identity.api_clients)."""
        return self.directory / CLIENTS_FILE

    @property
    def api_address(self) -> tuple[str, int]:
        """Where the API listens: `[api]`, by default loopback on the exchange port + 1."""
        if self.api_port is not None:
            return self.api_host, self.api_port
        return self.api_host, default_api_port(self.listen_port)


def new_config(
    directory: Path, *, country: str, name: str, endpoint: str | None, api_token: str
) -> NodeConfig:
    """The configuration `ephyto node init` writes; raises InputError on bad values."""
    ep = parse_endpoint(endpoint) if endpoint is not None else None
    host, port = listen_address(ep)
    return NodeConfig(
        directory=directory,
        country=check_country(country),
        name=check_name(name),
        endpoint=ep,
        api_token=api_token,
        database_url=default_database_url(directory),
        listen_host=host,
        listen_port=port,
        api_port=default_api_port(port),
    )


def listen_address(endpoint: Endpoint | None) -> tuple[str, int]:
    """Where to listen for an endpoint: its IP, or every interface for a host name.

    A host name may resolve to a load balancer or a NAT address that is not on this
    machine, so a named endpoint listens on all interfaces; a node without endpoint
    serves only its local API, on loopback.
    """
    if endpoint is None:
        return "127.0.0.1", DEFAULT_PORT
    if endpoint.host == "localhost":
        return "127.0.0.1", endpoint.port
    if endpoint.is_ip:
        return endpoint.host.strip("[]"), endpoint.port
    return "0.0.0.0", endpoint.port


def default_api_port(listen_port: int) -> int:
    """The exchange port + 1 (- 1 at the top of the range)."""
    return listen_port + 1 if listen_port < 65535 else listen_port - 1


def default_database_url(directory: Path) -> str:
    """SQLite in the node directory (absolute, so the working directory does not matter)."""
    return f"sqlite+aiosqlite:///{directory.resolve() / 'node.db'}"


def store_url(directory: Path, url: str, password_file: str | None) -> str:
    """`url` with the password read from `password_file` (relative to `directory`), or
    `url` itself when there is none; the node's and the hub's store open with this."""
    if password_file is None:
        return url
    from node.store.database import with_password  # SQLAlchemy: loaded only to open a store

    password = read_secret_file(directory / password_file, "database_password_file")
    return with_password(url, password)


def check_database_url(text: str) -> str:
    """A URL of a database the stores can open (SQLite or PostgreSQL); InputError if not."""
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme.split("+", 1)[0] not in ("sqlite", "postgresql") or not text.isprintable():
        raise InputError(
            f"{text!r} is not a database URL: sqlite+aiosqlite:///PATH or"
            " postgresql+asyncpg://USER@HOST:PORT/NAME"
        )
    return text


def check_password_file(database_url: str, password_file: str) -> str:
    """`password_file` if it can give `database_url` its password; InputError if not: an
    empty path, a SQLite URL (no password), or a URL that already holds one."""
    if not password_file or "\x00" in password_file:
        raise InputError("expected a file path")
    if database_url.startswith("sqlite"):
        raise InputError("SQLite has no password (database_url is a SQLite file)")
    try:
        has_password = urlsplit(database_url).password is not None
    except ValueError:
        has_password = False  # the store's own URL parser says what is wrong, at open
    if has_password:
        raise InputError("database_url holds a password already: keep one of the two")
    return password_file


def password_file_setting(source: str, database_url: str, value: str | None) -> str | None:
    """A config file's `database_password_file` (None: not set), checked against its
    `database_url`; ConfigError naming the file and the key."""
    if value is None:
        return None
    try:
        return check_password_file(database_url, value)
    except InputError as e:
        raise ConfigError(f"{source}: database_password_file: {e}") from None


def check_api_token(token: str) -> str:
    """`token` if it is long enough to be a secret; InputError if not."""
    if len(token) < MIN_API_TOKEN_CHARACTERS:
        raise InputError(
            f"too short to be a secret ({MIN_API_TOKEN_CHARACTERS} characters or more)"
        )
    return token


def check_at_least_one(value: int) -> int:
    """`value` if it is 1 or more (a count, a number of seconds); InputError if not."""
    if value < 1:
        raise InputError("must be 1 or more")
    return value


def dump_config(config: NodeConfig) -> str:
    """The TOML text of `config` (TOML has no null: absent values are left out)."""
    document: dict[str, Any] = {
        "version": CONFIG_VERSION,
        "country": config.country,
        "name": config.name,
    }
    if config.endpoint is not None:
        document["endpoint"] = config.endpoint.url
    if config.api_token_file is None:
        document["api_token"] = config.api_token
    document["database_url"] = config.database_url
    if config.database_password_file is not None:
        document["database_password_file"] = config.database_password_file
    document["listen"] = {"host": config.listen_host, "port": config.listen_port}
    document["keys"] = {
        "signing": config.keys.signing,
        "encryption": config.keys.encryption,
        "tls_key": config.keys.tls_key,
        "tls_certificate": config.keys.tls_certificate,
    }
    if config.keys.next_signing is not None:
        document["keys"]["next_signing"] = config.keys.next_signing
    if config.keys.next_encryption is not None:
        document["keys"]["next_encryption"] = config.keys.next_encryption
    if config.keys.next_tls_key is not None:
        document["keys"]["next_tls_key"] = config.keys.next_tls_key
    if config.keys.next_tls_certificate is not None:
        document["keys"]["next_tls_certificate"] = config.keys.next_tls_certificate
    document["keys"].update(secret_fields("passphrase", config.keys.passphrase))
    if config.keys.signing_pkcs11 is not None:
        document["keys"]["signing_pkcs11"] = pkcs11_fields(config.keys.signing_pkcs11)
    registry: dict[str, Any] = {"maintainer_keys": list(config.maintainer_keys)}
    if config.registry_url is not None:
        registry["url"] = config.registry_url
    if config.registry_anchor is not None:
        registry["anchor"] = config.registry_anchor
    if config.refresh_seconds != DEFAULT_REFRESH_SECONDS:
        registry["refresh_seconds"] = config.refresh_seconds
    document["registry"] = registry
    api: dict[str, Any] = {"host": config.api_host}
    if config.api_port is not None:
        api["port"] = config.api_port
    if config.api_token_file is not None:
        api["token_file"] = config.api_token_file
    document["api"] = api
    outbox: dict[str, int] = {}
    if config.retry_cap_seconds != DEFAULT_RETRY_CAP_SECONDS:
        outbox["retry_cap_seconds"] = config.retry_cap_seconds
    if config.lease_seconds != DEFAULT_LEASE_SECONDS:
        outbox["lease_seconds"] = config.lease_seconds
    if outbox:
        document["outbox"] = outbox
    hub: dict[str, Any] = {}
    if config.hub_url is not None:
        hub["url"] = config.hub_url
    if config.hub_ca_file is not None:
        hub["ca_file"] = config.hub_ca_file
    if config.fallback_attempts != DEFAULT_FALLBACK_ATTEMPTS:
        hub["fallback_attempts"] = config.fallback_attempts
    if config.fallback_seconds != DEFAULT_FALLBACK_SECONDS:
        hub["fallback_seconds"] = config.fallback_seconds
    if config.hub_poll_seconds != DEFAULT_HUB_POLL_SECONDS:
        hub["poll_seconds"] = config.hub_poll_seconds
    if config.via_hub:
        hub["via_hub"] = list(config.via_hub)
    if hub:
        document["hub"] = hub
    if config.metrics_listen is not None:
        document["metrics"] = {"listen": str(config.metrics_listen)}
    if config.log_format != "text":
        document["log"] = {"format": config.log_format}
    return tomli_w.dumps(document)


def load_config(path: Path) -> NodeConfig:
    """The configuration in `path`; raises ConfigError naming the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (run `ephyto node init` first)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    config = parse_config(text, source=str(path), directory=path.parent)
    if config.api_token_file is None:
        return config
    token = read_secret_file(config.path(config.api_token_file), f"{path}: api.token_file")
    try:
        return replace(config, api_token=check_api_token(token))
    except InputError as e:
        raise ConfigError(f"{path}: api.token_file: the token is {e}") from None


def parse_config(text: str, *, source: str, directory: Path) -> NodeConfig:
    """The configuration in TOML `text`; ConfigError messages start with `source`.

    With `[api] token_file`, `api_token` is left empty: reading the file is load_config's.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    reader = _Reader(source, document, "")
    if reader.integer("version") != CONFIG_VERSION:
        raise ConfigError(f"{source}: version: only version {CONFIG_VERSION} is understood")
    country = reader.checked("country", check_country)
    name = reader.checked("name", check_name)
    endpoint = None
    if reader.optional_string("endpoint") is not None:
        endpoint = reader.checked("endpoint", parse_endpoint)
    listen = reader.table("listen")
    keys = reader.table("keys")
    pkcs11 = keys.table("signing_pkcs11", optional=True)
    registry = reader.table("registry", optional=True)
    api = reader.table("api", optional=True)
    outbox = reader.table("outbox", optional=True)
    hub = reader.table("hub", optional=True)
    metrics, log = reader.table("metrics", optional=True), reader.table("log", optional=True)
    hub_url = hub.optional_string("url")
    hub_ca_file = hub.relative_path("ca_file") if hub.has("ca_file") else None
    if hub_url is not None:
        hub_url = hub.checked("url", _https_url)
        if hub_ca_file is None:
            raise ConfigError(f"{source}: hub.ca_file: needed with hub.url (how to trust it)")
    hub_numbers = {
        name: _at_least_one(hub, name, default)
        for name, default in (
            ("fallback_attempts", DEFAULT_FALLBACK_ATTEMPTS),
            ("fallback_seconds", DEFAULT_FALLBACK_SECONDS),
            ("poll_seconds", DEFAULT_HUB_POLL_SECONDS),
        )
    }
    retry_cap = _at_least_one(outbox, "retry_cap_seconds", DEFAULT_RETRY_CAP_SECONDS)
    lease = _at_least_one(outbox, "lease_seconds", DEFAULT_LEASE_SECONDS)
    port = _port(listen, "port")
    api_port = _port(api, "port") if api.optional_integer("port") is not None else None
    api_token, token_file = _api_token(reader, api)
    database_url = reader.string("database_url")
    password_file = password_file_setting(
        source, database_url, reader.optional_string("database_password_file")
    )
    anchor = registry.relative_path("anchor") if registry.has("anchor") else None
    refresh = registry.optional_integer("refresh_seconds")
    if refresh is None:
        refresh = DEFAULT_REFRESH_SECONDS
    elif refresh < 1:
        raise ConfigError(f"{source}: registry.refresh_seconds: must be 1 or more")
    config = NodeConfig(
        directory=directory,
        country=country,
        name=name,
        endpoint=endpoint,
        api_token=api_token,
        database_url=database_url,
        listen_host=listen.string("host"),
        listen_port=port,
        keys=KeyPaths(
            signing=keys.relative_path("signing"),
            encryption=keys.relative_path("encryption"),
            tls_key=keys.relative_path("tls_key"),
            tls_certificate=keys.relative_path("tls_certificate"),
            next_signing=keys.relative_path("next_signing") if keys.has("next_signing") else None,
            next_encryption=(
                keys.relative_path("next_encryption") if keys.has("next_encryption") else None
            ),
            next_tls_key=keys.relative_path("next_tls_key") if keys.has("next_tls_key") else None,
            next_tls_certificate=(
                keys.relative_path("next_tls_certificate")
                if keys.has("next_tls_certificate")
                else None
            ),
            passphrase=_secret_source(keys, "passphrase"),
            signing_pkcs11=(
                pkcs11_ref(
                    pkcs11.string("module"),
                    pkcs11.string("token"),
                    pkcs11.string("key_label"),
                    _secret_source(pkcs11, "pin"),
                    f"{source}: keys.signing_pkcs11.",
                )
                if keys.has("signing_pkcs11")
                else None
            ),
        ),
        registry_url=registry.optional_string("url"),
        maintainer_keys=registry.strings("maintainer_keys"),
        registry_anchor=anchor,
        refresh_seconds=refresh,
        api_host=api.optional_string("host") or DEFAULT_API_HOST,
        api_port=api_port,
        retry_cap_seconds=retry_cap,
        lease_seconds=lease,
        hub_url=hub_url,
        hub_ca_file=hub_ca_file,
        fallback_attempts=hub_numbers["fallback_attempts"],
        fallback_seconds=hub_numbers["fallback_seconds"],
        hub_poll_seconds=hub_numbers["poll_seconds"],
        via_hub=_via_hub(hub),
        metrics_listen=metrics.checked("listen", parse_listen) if metrics.has("listen") else None,
        log_format=log.checked("format", parse_log_format) if log.has("format") else "text",
        api_token_file=token_file,
        database_password_file=password_file,
    )
    for reader_ in (reader, listen, keys, pkcs11, registry, api, outbox, hub, metrics, log):
        reader_.no_unknown_keys()
    return config


def _api_token(top: _Reader, api: _Reader) -> tuple[str, str | None]:
    """(the inline api_token, None) or ("", `[api] token_file`): one of the two."""
    token_file = api.optional_string("token_file")
    if token_file is None:
        return top.checked("api_token", check_api_token), None
    if top.has("api_token"):
        raise api._fail("token_file", "node.toml holds api_token too: keep one of the two")
    try:
        check_secret_name("file", token_file, "")
    except ConfigError:
        raise api._fail("token_file", "expected a file path") from None
    return "", token_file


def _secret_source(table: _Reader, prefix: str) -> SecretSource | None:
    values = {kind: table.optional_string(f"{prefix}_{kind}") for kind in KINDS}
    return secret_source(prefix, values, f"{table.source}: {table.prefix}")


def _https_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise InputError(f"{text!r} is not an https:// URL without query or fragment")
    return text


def _via_hub(hub: _Reader) -> tuple[str, ...]:
    """`[hub] via_hub`: ISO 3166 alpha-2 codes, or the one entry "*" (every partner)."""
    codes = hub.strings("via_hub")
    for code in codes:
        if code != "*" and not re.fullmatch(r"[A-Z]{2}", code):
            raise hub._fail("via_hub", f'{code!r} is no country code (two capitals) nor "*"')
    if "*" in codes and len(codes) > 1:
        raise hub._fail("via_hub", '"*" (every partner) stands alone')
    if len(set(codes)) != len(codes):
        raise hub._fail("via_hub", "a country is listed twice")
    return codes


def _at_least_one(table: _Reader, key: str, default: int) -> int:
    value = table.optional_integer(key)
    if value is None:
        return default
    try:
        return check_at_least_one(value)
    except InputError as e:
        raise table._fail(key, str(e)) from None


def _port(table: _Reader, key: str) -> int:
    port = table.integer(key)
    if not 0 <= port <= 65535:
        raise table._fail(key, f"{port} is out of range")
    return port


class _Reader:
    """Typed access to one TOML table, each error naming the file and the dotted key."""

    def __init__(self, source: str, table: dict[str, Any], prefix: str) -> None:
        self.source, self.table_, self.prefix = source, table, prefix
        self.seen: set[str] = set()

    def _get(self, key: str, optional: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.table_:
            if optional:
                return None
            raise ConfigError(f"{self.source}: {self.prefix}{key}: missing")
        return self.table_[key]

    def _fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.prefix}{key}: {message}")

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._fail(key, "expected a string")
        return value

    def optional_string(self, key: str) -> str | None:
        return None if self._get(key, optional=True) is None else self.string(key)

    def integer(self, key: str) -> int:
        value = self._get(key)
        if type(value) is not int:
            raise self._fail(key, "expected an integer")
        return value

    def optional_integer(self, key: str) -> int | None:
        return None if self._get(key, optional=True) is None else self.integer(key)

    def has(self, key: str) -> bool:
        self.seen.add(key)
        return key in self.table_

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key, optional=True)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "expected a list of strings")
        return tuple(value)

    def relative_path(self, key: str) -> str:
        value = self.string(key)
        # Relative and inside the directory: a config copied elsewhere must not reach out.
        if not value or Path(value).is_absolute() or ".." in Path(value).parts:
            raise self._fail(key, f"{value!r} must be a path inside the config directory")
        return value

    def checked(self, key: str, check: Callable[[str], T]) -> T:
        try:
            return check(self.string(key))
        except InputError as e:
            raise self._fail(key, str(e)) from None

    def table(self, key: str, optional: bool = False) -> _Reader:
        value = self._get(key, optional)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self._fail(key, "expected a table")
        return _Reader(self.source, value, f"{self.prefix}{key}.")

    def no_unknown_keys(self) -> None:
        if unknown := sorted(set(self.table_) - self.seen):
            raise self._fail(unknown[0], "unknown key (a typo?)")


TableReader = _Reader
"""Typed access to one TOML table (public name, for the hub's configuration file)."""
