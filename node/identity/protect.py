"""The shell of `ephyto node protect-keys`: encrypt the node's plain private key files in
place with a passphrase, and record where the passphrase comes from in node.toml.

Everything is read and checked before the first write, so hostile input (no identity, a
key file missing, a passphrase that cannot be read or does not open a key encrypted
already) changes nothing. node.toml is written first: a node whose conversion was cut
short then finds a passphrase beside some plain keys, which load (with a warning), and
running the command again finishes the job. Each key file is replaced atomically
(node.fileio.write_atomic: a 0600 temporary file in the same folder, synced, renamed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from node.fileio import write_atomic
from node.identity.config import CONFIG_FILE, NodeConfig, dump_config, load_config
from node.identity.key_files import private_key_files, read_key_file
from node.identity.keys import encrypted_pem, is_encrypted_pem, load_private_key
from node.identity.passphrase import read_secret
from node.identity.protection import SecretSource

RETIRED_KEYS = "keys/retired"


@dataclass(frozen=True, slots=True)
class ProtectResult:
    """What `protect_keys` did: the files it encrypted, those encrypted already, and
    whether node.toml changed, and the passphrase source it names now."""

    encrypted: tuple[Path, ...]
    already: tuple[Path, ...]
    config_changed: bool
    source: SecretSource


def protect_keys(
    node_dir: Path,
    source: SecretSource,
    *,
    cwd: Path,
    environ: Mapping[str, str] | None = None,
) -> ProtectResult:
    """Encrypt every plain private key file of the node in `node_dir` with the passphrase
    `source` names (a relative file read from `cwd`), and record `source` in node.toml.

    Raises ConfigError (node.toml, a key file, the passphrase: nothing changed) and
    KeyFileError when a file encrypted already does not open with this passphrase.
    """
    config_path = node_dir / CONFIG_FILE
    config = load_config(config_path)
    passphrase = read_secret(source, prefix="passphrase", base=cwd, environ=environ)
    if source.kind == "file":
        # node.toml resolves paths against the node directory, the command against cwd.
        source = replace(source, value=str((cwd / source.value).resolve()))
    plain: list[tuple[Path, bytes]] = []
    already: list[Path] = []
    for path in _key_paths(config):
        data = read_key_file(path)
        if is_encrypted_pem(data):
            load_private_key(data, str(path), passphrase)  # KeyFileError: another passphrase
            already.append(path)
        else:
            plain.append((path, encrypted_pem(data, str(path), passphrase)))
    updated = replace(config, keys=replace(config.keys, passphrase=source))
    changed = updated.keys.passphrase != config.keys.passphrase
    if changed:
        write_atomic(config_path, dump_config(updated).encode("utf-8"), 0o600)
    for path, data in plain:
        write_atomic(path, data, 0o600)
    return ProtectResult(tuple(p for p, _ in plain), tuple(already), changed, source)


def _key_paths(config: NodeConfig) -> list[Path]:
    """The files node.toml names, then a `signing` file left beside a token, then the
    retired keys of finished rotations: a stolen backup must not give those either."""
    paths = [f.path for f in private_key_files(config)]
    signing = config.path(config.keys.signing)
    if config.keys.signing_pkcs11 is not None and signing.is_file():
        paths.append(signing)
    retired = config.path(RETIRED_KEYS)
    if retired.is_dir():
        paths.extend(sorted(p for p in retired.glob("*.key") if p.is_file()))
    return paths
