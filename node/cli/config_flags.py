"""The settings `ephyto node configure` and `ephyto hub configure` change by flag, so that
a deployment (compose/setup/setup.py, an Ansible role) never edits node.toml or hub.toml.

Each flag is checked with the function the file's own parser uses for that setting, and
the changed configuration is parsed back from the text about to be written: what is
written loads. Secrets are never taken on the command line (it is in `ps` and shell
history): only the files that hold them, which are read once here to refuse a wrong one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from node.commandline import read_anchor_file
from node.errors import ConfigError, InputError
from node.fileio import write_atomic
from node.hub.config import HubConfig
from node.identity.config import (
    NodeConfig,
    check_api_token,
    check_at_least_one,
    check_database_url,
    check_password_file,
)
from node.identity.secret_file import read_secret_file
from node.observe.settings import ListenAddress, parse_listen

OFF = "off"
# Where `configure --anchor` copies the maintainers' trust anchor, in a node's or hub's folder.
ANCHOR_FILE = "maintainers.json"
# The flags both commands take, with their argparse destinations.
COMMON = {
    "--listen": "listen",
    "--metrics": "metrics",
    "--database-url": "database_url",
    "--database-password-file": "database_password_file",
}
NODE_ONLY = {
    "--api": "api",
    "--api-token-file": "api_token_file",
    "--hub-poll-seconds": "hub_poll_seconds",
    "--lease-seconds": "lease_seconds",
}
C = TypeVar("C", NodeConfig, HubConfig)
T = TypeVar("T")
V = TypeVar("V")


def add_hub_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `ephyto hub configure` that change hub.toml's settings."""
    parser.add_argument("--listen", metavar="HOST:PORT", help="where the hub listens (mutual TLS)")
    _add_common(parser, "hub")


def add_node_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `ephyto node configure` that change node.toml's settings."""
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="where the exchange endpoint listens (mutual TLS)"
    )
    parser.add_argument(
        "--api",
        metavar="HOST:PORT",
        help="where the national-system API listens (plain HTTP: loopback, or a TLS proxy)",
    )
    _add_common(parser, "node")
    parser.add_argument(
        "--api-token-file",
        metavar="PATH",
        help="read the API token from this file at start (it replaces api_token in node.toml)",
    )
    parser.add_argument(
        "--hub-poll-seconds", metavar="N", help="how often to pull from the hub (default 30)"
    )
    parser.add_argument(
        "--lease-seconds",
        metavar="N",
        help="how long a claimed delivery is one process's alone (default 300)",
    )


def flags_given(args: argparse.Namespace, *, node: bool) -> list[str]:
    """The setting flags on the command line, as typed (for messages)."""
    flags = COMMON | NODE_ONLY if node else COMMON
    return [flag for flag, dest in flags.items() if getattr(args, dest, None) is not None]


def apply_common(config: C, args: argparse.Namespace) -> C:
    """`config` with --listen, --metrics, --database-url, --database-password-file applied;
    InputError naming the flag for a bad value, or a password file that cannot be read."""
    if args.listen is not None:
        listen = _address("--listen", args.listen)
        config = replace(config, listen_host=listen.host, listen_port=listen.port)
    if args.metrics is not None:
        metrics = None if args.metrics == OFF else _address("--metrics", args.metrics)
        config = replace(config, metrics_listen=metrics)
    if args.database_url is not None:
        url = _checked("--database-url", args.database_url, check_database_url, show=False)
        config = replace(config, database_url=url)
    password_file = config.database_password_file
    if args.database_password_file == OFF:
        password_file = None
    elif args.database_password_file is not None:
        password_file = _secret_path("--database-password-file", args.database_password_file)
        _read("--database-password-file", config.directory / password_file)
    if password_file is not None:
        # Checked again whenever the URL changes: a SQLite URL takes no password.
        given = args.database_password_file is not None
        _checked(
            "--database-password-file" if given else "--database-url (database_password_file)",
            password_file,
            lambda path: check_password_file(config.database_url, path),
            show=given,
        )
    return replace(config, database_password_file=password_file)


def apply_node(config: NodeConfig, args: argparse.Namespace) -> NodeConfig:
    """`config` with every node flag given applied (apply_common's, then the node's own)."""
    if args.api is not None and args.api_port is not None:
        raise InputError("--api HOST:PORT sets the API's port: drop --api-port")
    config = apply_common(config, args)
    if args.api is not None:
        api = _address("--api", args.api)
        config = replace(config, api_host=api.host, api_port=api.port)
    if args.api_token_file is not None:
        token_file = _secret_path("--api-token-file", args.api_token_file)
        token = _read("--api-token-file", config.path(token_file))
        token = _checked("--api-token-file", token, check_api_token, show=False)
        config = replace(config, api_token=token, api_token_file=token_file)
    if args.hub_poll_seconds is not None:
        seconds = _checked("--hub-poll-seconds", _integer(args.hub_poll_seconds,
                           "--hub-poll-seconds"), check_at_least_one)  # fmt: skip
        config = replace(config, hub_poll_seconds=seconds)
    if args.lease_seconds is not None:
        seconds = _checked("--lease-seconds", _integer(args.lease_seconds, "--lease-seconds"),
                           check_at_least_one)  # fmt: skip
        config = replace(config, lease_seconds=seconds)
    return config


def _add_common(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help=f"a listener of its own for /metrics and /health/*, or `{OFF}`",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"the {role}'s store: sqlite+aiosqlite:///PATH or"
        " postgresql+asyncpg://USER@HOST:PORT/NAME (no password: see the next flag)",
    )
    parser.add_argument(
        "--database-password-file",
        metavar="PATH",
        help=f"read PostgreSQL's password from this file when the store is opened (`{OFF}`: none)",
    )


def _address(flag: str, text: str) -> ListenAddress:
    return _checked(flag, text, parse_listen, show=False)


def _checked(flag: str, value: V, check: Callable[[V], T], *, show: bool = True) -> T:
    """check(value), its InputError (or ConfigError) turned into one naming `flag`."""
    try:
        return check(value)
    except (InputError, ConfigError) as e:
        shown = f" {value!r}" if show and isinstance(value, str) and len(value) < 200 else ""
        raise InputError(f"{flag}{shown}: {e}") from None


def _integer(text: str, flag: str) -> int:
    if not text.strip().lstrip("-").isdigit() or not text.isascii():
        raise InputError(f"{flag} {text[:40]!r}: expected a whole number")
    return int(text)


def _secret_path(flag: str, text: str) -> str:
    """The path as typed, absolute (from the working directory, as a shell means it)."""
    if not text or "\x00" in text:
        raise InputError(f"{flag}: expected a file path")
    return str(Path(text).absolute())


def _read(flag: str, path: Path) -> str:
    try:
        return read_secret_file(path, flag)
    except ConfigError as e:
        raise InputError(str(e)) from None


def registry_flags(args: argparse.Namespace) -> bool:
    """Whether --registry and --anchor were given (both or neither; a bad URL refused)."""
    if args.registry is None and args.anchor is None:
        return False
    if args.registry is None or args.anchor is None:
        raise InputError("give --registry URL and --anchor FILE together")
    url = urlsplit(args.registry)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InputError(f"--registry {args.registry!r}: expected an http(s) URL")
    return True


def with_registry(config: C, args: argparse.Namespace) -> tuple[C, bytes | None]:
    """The configuration pointed at --registry with --anchor, and the anchor's bytes to
    copy beside it (None, and the configuration unchanged, when neither was given)."""
    if not registry_flags(args):
        return config, None
    data, _ = read_anchor_file(args.anchor)
    return replace(config, registry_url=args.registry, registry_anchor=ANCHOR_FILE), data


def write_configured(
    directory: Path, config_file: Path, text: str, anchor: bytes | None, registry: str | None
) -> None:
    """Write the anchor (when given) then the configuration, and say what was written.

    The anchor first: a configuration naming an anchor that is not there yet would not load.
    """
    if anchor is not None:
        write_atomic(directory / ANCHOR_FILE, anchor, 0o644)
    write_atomic(config_file, text.encode("utf-8"), 0o600)
    print(f"configured {config_file}")
    if anchor is not None:
        _, maintainers = read_anchor_file(directory / ANCHOR_FILE)
        print(f"  registry      {registry}")
        print(
            f"  trust anchor  {directory / ANCHOR_FILE}: threshold {maintainers.threshold} "
            f"of {len(maintainers.keys)} keys"
        )
        for key in maintainers.keys:
            print(f"    maintainer {key.name}: key id {key.key_id}")
