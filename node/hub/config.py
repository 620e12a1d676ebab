"""The hub's configuration file (`hub.toml`): who it is, where it listens, its rules.

Read with the node's strict TOML reader (unknown keys refused, each error naming the
file and the dotted key). Paths are relative to the file's directory. The file is
written 0600: a PostgreSQL `database_url` may carry a password, unless
`database_password_file` names a file it is read from when the store is opened.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomli_w

from node.errors import ConfigError, InputError
from node.hub.accounts import PAYERS, AccountPolicy, Payer, Prepaid
from node.identity.config import TableReader, listen_address, password_file_setting, store_url
from node.identity.enrolment import Endpoint, check_name, parse_endpoint
from node.observe.settings import ListenAddress, LogFormat, parse_listen, parse_log_format

CONFIG_VERSION = 1
CONFIG_FILE = "hub.toml"
DEFAULT_EXPIRE_AFTER_HOURS = 72
DEFAULT_REFRESH_SECONDS = 60
# The SOAP parser refuses one text value over 10,000,000 bytes, and a node's sealed
# envelope travels as base64 (4/3 larger): 7 MiB of content still fits as base64.
DEFAULT_MAX_CONTENT_BYTES = 7 * 1024 * 1024
MAX_CONTENT_BYTES_LIMIT = 10_000_000
DEFAULT_POLICY = AccountPolicy("EUR", Prepaid(0))
"""Free envelopes: a fresh hub relays for every NPPO in the directory (see `default_policy`)."""


@dataclass(frozen=True, slots=True)
class HubConfig:
    """A hub's settings; `directory` is where the file lives and is not written to it."""

    directory: Path
    name: str
    endpoint: Endpoint
    database_url: str
    listen_host: str
    listen_port: int
    tls_key: str = "keys/tls.key"
    tls_certificate: str = "keys/tls.crt"
    registry_url: str | None = None
    registry_anchor: str | None = None
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS
    expire_after_hours: int = DEFAULT_EXPIRE_AFTER_HOURS
    payer: Payer = "sender"
    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES
    # The account an NPPO of the directory gets on first use; None: none until the
    # operator sets one (`ephyto hub account policy`), and its envelopes are refused.
    default_policy: AccountPolicy | None = DEFAULT_POLICY
    # `[metrics] listen`: /metrics and /health/* on a listener of their own (None: off).
    metrics_listen: ListenAddress | None = None
    # `[log] format`: "text" lines, or "json" (one object per line) for log shippers.
    log_format: LogFormat = "text"
    # PostgreSQL's password, put into `database_url` only when the store is opened.
    database_password_file: str | None = None

    def path(self, relative: str) -> Path:
        return self.directory / relative

    def store_url(self) -> str:
        """`database_url` with the password of `database_password_file`, to open the store
        with; ConfigError when the file cannot be read."""
        return store_url(self.directory, self.database_url, self.database_password_file)

    @property
    def expire_after(self) -> timedelta:
        return timedelta(hours=self.expire_after_hours)


def new_hub_config(directory: Path, *, name: str, endpoint: str) -> HubConfig:
    """The configuration `ephyto hub init` writes; InputError on bad values."""
    ep = parse_endpoint(endpoint)
    host, port = listen_address(ep)
    return HubConfig(
        directory=directory,
        name=check_name(name),
        endpoint=ep,
        database_url=f"sqlite+aiosqlite:///{directory.resolve() / 'hub.db'}",
        listen_host=host,
        listen_port=port,
    )


def dump_hub_config(config: HubConfig) -> str:
    """The TOML text of `config` (absent values are left out: TOML has no null)."""
    registry: dict[str, Any] = {"refresh_seconds": config.refresh_seconds}
    if config.registry_url is not None:
        registry["url"] = config.registry_url
    if config.registry_anchor is not None:
        registry["anchor"] = config.registry_anchor
    document: dict[str, Any] = {
        "version": CONFIG_VERSION,
        "name": config.name,
        "endpoint": config.endpoint.url,
        "database_url": config.database_url,
        **(
            {"database_password_file": config.database_password_file}
            if config.database_password_file is not None
            else {}
        ),
        "listen": {"host": config.listen_host, "port": config.listen_port},
        "keys": {"tls_key": config.tls_key, "tls_certificate": config.tls_certificate},
        "registry": registry,
        "relay": {
            "expire_after_hours": config.expire_after_hours,
            "payer": config.payer,
            "max_content_bytes": config.max_content_bytes,
        },
    }
    policy = config.default_policy
    if policy is None:
        document["accounts"] = {"default": "none"}
    else:
        assert isinstance(policy.pricing, Prepaid)  # the only default the file can hold
        document["accounts"] = {
            "default": "prepaid",
            "currency": policy.currency,
            "fee": policy.pricing.fee,
            "overdraft": policy.overdraft,
        }
    if config.metrics_listen is not None:
        document["metrics"] = {"listen": str(config.metrics_listen)}
    if config.log_format != "text":
        document["log"] = {"format": config.log_format}
    return tomli_w.dumps(document)


def load_hub_config(path: Path) -> HubConfig:
    """The configuration in `path`; ConfigError naming the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (run `ephyto hub init` first)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_hub_config(text, source=str(path), directory=path.parent)


def parse_hub_config(text: str, *, source: str, directory: Path) -> HubConfig:
    """The configuration in TOML `text`; ConfigError messages start with `source`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    return _parse(document, source, directory)


def _parse(document: dict[str, Any], source: str, directory: Path) -> HubConfig:
    top = TableReader(source, document, "")
    if top.integer("version") != CONFIG_VERSION:
        raise ConfigError(f"{source}: version: only version {CONFIG_VERSION} is understood")
    listen, keys = top.table("listen"), top.table("keys")
    registry, relay = top.table("registry", optional=True), top.table("relay", optional=True)
    accounts = top.table("accounts", optional=True)
    metrics, log = top.table("metrics", optional=True), top.table("log", optional=True)
    database_url = top.string("database_url")
    password_file = password_file_setting(
        source, database_url, top.optional_string("database_password_file")
    )
    config = HubConfig(
        directory=directory,
        name=top.checked("name", check_name),
        endpoint=top.checked("endpoint", parse_endpoint),
        database_url=database_url,
        listen_host=listen.string("host"),
        listen_port=_ranged(listen, "port", 0, 65535, None),
        tls_key=keys.relative_path("tls_key"),
        tls_certificate=keys.relative_path("tls_certificate"),
        registry_url=registry.optional_string("url"),
        registry_anchor=registry.relative_path("anchor") if registry.has("anchor") else None,
        refresh_seconds=_ranged(registry, "refresh_seconds", 1, 86400, DEFAULT_REFRESH_SECONDS),
        expire_after_hours=_ranged(
            relay, "expire_after_hours", 1, 24 * 366, DEFAULT_EXPIRE_AFTER_HOURS
        ),
        payer=relay.checked("payer", _payer) if relay.has("payer") else "sender",
        max_content_bytes=_ranged(
            relay, "max_content_bytes", 1, MAX_CONTENT_BYTES_LIMIT, DEFAULT_MAX_CONTENT_BYTES
        ),
        default_policy=_default_policy(accounts, source),
        metrics_listen=metrics.checked("listen", parse_listen) if metrics.has("listen") else None,
        log_format=log.checked("format", parse_log_format) if log.has("format") else "text",
        database_password_file=password_file,
    )
    for table in (top, listen, keys, registry, relay, accounts, metrics, log):
        table.no_unknown_keys()
    return config


def _ranged(table: TableReader, key: str, low: int, high: int, default: int | None) -> int:
    value = table.optional_integer(key) if default is not None else table.integer(key)
    if value is None:
        assert default is not None
        return default
    if not low <= value <= high:
        raise ConfigError(
            f"{table.source}: {table.prefix}{key}: {value} is not between {low} and {high}"
        )
    return value


def _payer(text: str) -> Payer:
    for payer in PAYERS:
        if text == payer:
            return payer
    raise InputError(f"{text!r} is not sender or receiver")


def _default_policy(accounts: TableReader, source: str) -> AccountPolicy | None:
    kind = accounts.optional_string("default") or "prepaid"
    if kind == "none":
        return None
    if kind != "prepaid":
        raise ConfigError(f"{source}: accounts.default: {kind!r} is not prepaid or none")
    currency = accounts.optional_string("currency") or DEFAULT_POLICY.currency
    fee = accounts.optional_integer("fee") or 0
    overdraft = accounts.optional_integer("overdraft") or 0
    try:
        return AccountPolicy(currency, Prepaid(fee), overdraft)
    except InputError as e:
        raise ConfigError(f"{source}: accounts: {e}") from None
