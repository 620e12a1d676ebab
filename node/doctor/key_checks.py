"""The checks of `ephyto doctor` on how the private keys are protected, pure: the passphrase
of encrypted key files, plain files beside it, and the signing key in a PKCS#11 token.

Each says, in one finding, what the node itself would meet at start (node.runtime reads
the keys with the same functions), so a passphrase the doctor cannot read is one problem
naming its source, not one "restore from backup" per key file it could not open. The
shell (node.doctor.key_access) reads the secrets and the files and passes what it found.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from node.doctor.checks import Finding, ok, problem, warning
from node.identity.config import NodeConfig
from node.identity.protection import Pkcs11KeyRef, SecretSource

PASSPHRASE: Final = "passphrase"
PLAIN: Final = "unencrypted keys"
SIGNING: Final = "signing key"


def passphrase_unreadable(
    config: NodeConfig, source: SecretSource, error: str, locked: Sequence[Path]
) -> Finding:
    """node.toml names a passphrase source this process cannot read (`error` says why):
    the node, started the same way, would not start; the `locked` files went unchecked."""
    unchecked = (
        f"; not checked without it: {_names(locked)} (and the connections made with them)"
        if locked
        else ""
    )
    return problem(PASSPHRASE, f"{error}{unchecked}", _same_environment(config, source))


def passphrase_missing(locked: Sequence[Path]) -> Finding:
    """Encrypted key files, but node.toml names no passphrase source: the node cannot
    decrypt them (node.toml older than the keys, or edited since)."""
    return problem(
        PASSPHRASE,
        f"{_names(locked)} {_are(locked)} encrypted, but node.toml names no passphrase:"
        " the node cannot start",
        "name the source `ephyto node protect-keys` was given in node.toml's [keys]:"
        ' passphrase_file = "PATH", passphrase_env = "VAR" or passphrase_credential = "NAME"',
    )


def passphrase_refused(
    source: SecretSource, undecrypted: Sequence[Path], opened: Sequence[Path]
) -> Finding:
    """The passphrase was read but does not decrypt the `undecrypted` files (`opened`:
    the encrypted files it does decrypt)."""
    name = source.describe(PASSPHRASE)
    if not opened:
        return problem(
            PASSPHRASE,
            f"the passphrase from {name} does not decrypt {_names(undecrypted)}: a wrong"
            " passphrase; the node cannot start with it",
            f"make {name} hold the passphrase these files were encrypted with (the one"
            " `ephyto node protect-keys` was given)",
        )
    return problem(
        PASSPHRASE,
        f"the passphrase from {name} decrypts {_names(opened)} but not"
        f" {_names(undecrypted)}: encrypted with another passphrase, or damaged; the node"
        " cannot start",
        f"restore {_names(undecrypted)} from a backup made with this passphrase (a restored"
        " plain file is encrypted by `ephyto node protect-keys`)",
    )


def passphrase_works(source: SecretSource, opened: Sequence[Path]) -> Finding:
    """The passphrase was read and decrypts every encrypted key file."""
    name = source.describe(PASSPHRASE)
    if not opened:
        return ok(PASSPHRASE, f"read from {name}; no key file is encrypted yet")
    return ok(PASSPHRASE, f"read from {name}; it decrypts {len(opened)} key file(s)")


def plain_beside_passphrase(
    config: NodeConfig, source: SecretSource, plain: Sequence[Path]
) -> Finding | None:
    """A warning listing the plain key files of a node whose node.toml names a passphrase
    (a conversion cut short, or a key copied in since); None when there are none."""
    if not plain:
        return None
    return warning(
        PLAIN,
        f"node.toml names a passphrase, but {_names(plain)} {_are(plain)} not encrypted: a"
        " copy of the disk or a backup gives" + (" them" if len(plain) > 1 else " it"),
        f"run `ephyto node protect-keys --dir {config.directory} {_option(config, source)}`"
        " (the same passphrase source), then restart the node",
    )


def token_signs(ref: Pkcs11KeyRef, key_id: str) -> Finding:
    """The signing key in the token opened and signed a probe that verifies."""
    return ok(
        SIGNING,
        f'in PKCS#11 token "{ref.token}", key "{ref.key_label}" (module {ref.module}):'
        f" logged in, signs, key id {key_id}",
    )


def token_refused(
    config: NodeConfig, ref: Pkcs11KeyRef, error: str, cause: Literal["pin", "library", "token"]
) -> Finding:
    """The token, its PIN or its key cannot be used; `error` is one line without the PIN.
    `cause`: the PIN's source could not be read, or python-pkcs11 is not installed (the
    token was not asked then), or the module, token, PIN or key refused."""
    if cause == "pin":
        action = _same_environment(config, ref.pin, prefix="pin")
    elif cause == "library":
        action = (
            "install the hsm extra in the node's environment (pip install"
            " 'ephyto-exchange[hsm]'), and run doctor from that environment"
        )
    else:
        action = (
            "check [keys.signing_pkcs11] in node.toml (module, token, key_label), that the"
            " token is attached and the PIN is the user PIN, and run doctor with the"
            " environment of the node's service (for SoftHSM2, SOFTHSM2_CONF)"
        )
    return problem(SIGNING, f"{error}: the node cannot sign, so it cannot start", action)


# --- helpers --------------------------------------------------------------------------------


def _same_environment(config: NodeConfig, source: SecretSource, prefix: str = PASSPHRASE) -> str:
    """What to do when a secret's source cannot be read here: most often doctor was run
    without the environment of the node's service, where the node reads it."""
    if source.kind == "env":
        return (
            f"run doctor with the same environment as the service: {source.value} must hold"
            f" the {prefix}; if the service lacks it too, set it there (systemd: Environment="
            " or EnvironmentFile=), or the node cannot start"
        )
    if source.kind == "credential":
        return (
            "run doctor as the service gets its credentials: `systemd-run --pipe --wait -p"
            f" LoadCredential={source.value}:PATH ephyto doctor --dir {config.directory}`"
            " (LoadCredentialEncrypted= for an encrypted one), with the unit's PATH"
        )
    path = config.path(source.value)  # an absolute value stays absolute
    return (
        f"run doctor as the node's user, who can read {path}; if it is missing or empty,"
        f" restore it (the {prefix} is kept apart from the node's backups)"
    )


def _option(config: NodeConfig, source: SecretSource) -> str:
    """The protect-keys option naming `source`; a relative file is made absolute, since
    the command reads it from the working directory and node.toml from the node's."""
    value = str(config.path(source.value)) if source.kind == "file" else source.value
    return f"--passphrase-{source.kind} {value}"


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def _are(paths: Sequence[Path]) -> str:
    return "are" if len(paths) > 1 else "is"
