"""The options that name where a secret is read from (`--passphrase-file|env|credential`,
`--pin-...`), one way for every command that takes one."""

from __future__ import annotations

import argparse

from node.identity.protection import SecretKind, SecretSource, check_secret_name

_KINDS: tuple[SecretKind, ...] = ("file", "env", "credential")


def chosen_source(args: argparse.Namespace, noun: str) -> SecretSource | None:
    """The source the `--NOUN-file`, `--NOUN-env` or `--NOUN-credential` option names
    (checked: ConfigError in one line), or None when none is given."""
    for kind in _KINDS:
        value: str | None = getattr(args, f"{noun}_{kind}")
        if value is not None:
            check_secret_name(kind, value, f"--{noun}-{kind}")
            return SecretSource(kind, value)
    return None
