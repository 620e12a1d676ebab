"""How node.toml says the private keys are protected (pure): where the passphrase that
encrypts the key files comes from, and which PKCS#11 token holds the signing key.

`[keys]` names at most one passphrase source:

- `passphrase_file = "PATH"`: a file (relative to the node directory, or absolute);
- `passphrase_env = "VAR"`: an environment variable of the node's process;
- `passphrase_credential = "NAME"`: a systemd credential, $CREDENTIALS_DIRECTORY/NAME
  (`LoadCredential=` or `LoadCredentialEncrypted=` in the unit).

`[keys.signing_pkcs11]` puts the signing key in a token (`module`, `token`, `key_label`
and one PIN source named the same way: `pin_file`, `pin_env` or `pin_credential`).

Deciding and checking happen here; reading a secret is the shell's
(node.identity.passphrase), and talking to the token is node.identity.pkcs11_signer's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from node.errors import ConfigError

SecretKind = Literal["file", "env", "credential"]
KINDS: tuple[SecretKind, ...] = ("file", "env", "credential")
# POSIX names for environment variables; systemd credential names are file names.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_.@:-]+")


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where one secret (a passphrase, a PIN) is read from: the value names it, it is
    never the secret itself."""

    kind: SecretKind
    value: str

    def describe(self, prefix: str) -> str:
        """`passphrase_env "EPHYTO_KEY_PASSPHRASE"`, as node.toml spells it, for messages."""
        return f'{prefix}_{self.kind} "{self.value}"'


@dataclass(frozen=True, slots=True)
class Pkcs11KeyRef:
    """The signing key in a PKCS#11 token: the module (shared library) that speaks to the
    token, the token's label, the key's label, and where the user PIN comes from."""

    module: str
    token: str
    key_label: str
    pin: SecretSource


def secret_source(
    prefix: str, values: Mapping[SecretKind, str | None], where: str
) -> SecretSource | None:
    """The one source among `{prefix}_file`, `{prefix}_env`, `{prefix}_credential` given in
    `values` (None: none is); ConfigError, `where` first, for two at once or a bad name."""
    given = [(kind, value) for kind in KINDS if (value := values.get(kind)) is not None]
    if not given:
        return None
    if len(given) > 1:
        names = " and ".join(f"{prefix}_{kind}" for kind, _ in given)
        raise ConfigError(f"{where}{names}: name one source of the {prefix}, not several")
    kind, value = given[0]
    check_secret_name(kind, value, f"{where}{prefix}_{kind}")
    return SecretSource(kind, value)


def check_secret_name(kind: SecretKind, value: str, where: str) -> None:
    """ConfigError (naming `where`) unless `value` can name a secret of `kind`."""
    if kind == "file":
        if not value or "\x00" in value:
            raise ConfigError(f"{where}: expected a file path")
    elif kind == "env":
        if not _ENV_NAME.fullmatch(value):
            raise ConfigError(f"{where}: {value!r} is not an environment variable name")
    elif not _CREDENTIAL_NAME.fullmatch(value) or value in (".", ".."):
        # A name with a slash would reach outside the credentials directory.
        raise ConfigError(f"{where}: {value!r} is not a systemd credential name")


def secret_fields(prefix: str, source: SecretSource | None) -> dict[str, str]:
    """The node.toml keys of `source` (none for None), as `secret_source` reads them."""
    return {} if source is None else {f"{prefix}_{source.kind}": source.value}


def pkcs11_ref(
    module: str, token: str, key_label: str, pin: SecretSource | None, where: str
) -> Pkcs11KeyRef:
    """The token reference of `[keys.signing_pkcs11]`; ConfigError naming `where`."""
    for name, value in (("module", module), ("token", token), ("key_label", key_label)):
        if not value.strip() or "\x00" in value:
            raise ConfigError(f"{where}{name}: must not be empty")
    if pin is None:
        raise ConfigError(
            f"{where}pin_file, pin_env or pin_credential: missing (where the token's user PIN"
            " comes from)"
        )
    return Pkcs11KeyRef(module, token, key_label, pin)


def pkcs11_fields(ref: Pkcs11KeyRef | None) -> dict[str, str]:
    """The `[keys.signing_pkcs11]` table of `ref` (empty for None)."""
    if ref is None:
        return {}
    return {
        "module": ref.module,
        "token": ref.token,
        "key_label": ref.key_label,
        **secret_fields("pin", ref.pin),
    }
