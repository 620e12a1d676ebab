"""Reading the secrets node.toml points at: the key files' passphrase and a token's PIN.

The shell of node.identity.protection: a file, an environment variable, or a systemd
credential ($CREDENTIALS_DIRECTORY/NAME). Every failure is a SecretSourceError (a
ConfigError) saying which source and what to do; the secret itself is never in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from node.errors import ConfigError
from node.identity.config import NodeConfig
from node.identity.protection import SecretSource

# A passphrase or PIN is short; a larger file is a wrong path (a key, a log), not a secret.
MAX_SECRET_BYTES = 4096


class SecretSourceError(ConfigError):
    """The passphrase or PIN cannot be read from where node.toml (or the command) says."""


def read_secret(
    source: SecretSource,
    *,
    prefix: str,
    base: Path,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The secret `source` names (one trailing newline dropped: `echo` writes one).

    `prefix` (passphrase, pin) names it in messages; a relative file is read from `base`;
    `environ` defaults to the process environment. SecretSourceError when it is absent,
    unreadable, empty or implausibly large.
    """
    env = os.environ if environ is None else environ
    name = source.describe(prefix)
    if source.kind == "env":
        if source.value not in env:
            raise SecretSourceError(
                f"{name}: the environment variable {source.value} is not set for this process"
            )
        data = os.fsencode(env[source.value])
    else:
        if source.kind == "file":
            path = base / source.value  # an absolute value stays absolute
        else:
            folder = env.get("CREDENTIALS_DIRECTORY")
            if not folder:
                raise SecretSourceError(
                    f"{name}: CREDENTIALS_DIRECTORY is not set: systemd sets it for a unit with"
                    f" LoadCredential={source.value}:... (outside systemd, use {prefix}_file"
                    f" or {prefix}_env)"
                )
            path = Path(folder) / source.value
        data = _read_small(path, name)
    data = data.removesuffix(b"\n").removesuffix(b"\r")
    if not data:
        raise SecretSourceError(f"{name}: the {prefix} is empty")
    return data


def node_passphrase(config: NodeConfig, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The passphrase of the node's key files; None when node.toml names no source."""
    source = config.keys.passphrase
    if source is None:
        return None
    return read_secret(source, prefix="passphrase", base=config.directory, environ=environ)


def _read_small(path: Path, name: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise SecretSourceError(f"{name}: cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise SecretSourceError(
            f"{name}: {path} holds more than {MAX_SECRET_BYTES} bytes: not a passphrase"
        )
    return data
