"""`ephyto node protect-keys`: encrypt the node's private key files with a passphrase."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.cli.secret_options import chosen_source
from node.commandline import dir_argument
from node.errors import InputError
from node.identity.protect import protect_keys
from node.identity.protection import SecretSource


def add_parser(sub: Any, default_dir: Path) -> None:
    """The `protect-keys` action of `ephyto node`."""
    protect = sub.add_parser(
        "protect-keys",
        help="encrypt the node's private key files with a passphrase",
        description="Encrypt every plain private key file of the node (signing, encryption, "
        "TLS, the next keys of a rotation, the retired keys) in place with a passphrase "
        "(PKCS#8, the best encryption the library offers), and record in node.toml where "
        "the node reads the passphrase from at start: a file, an environment variable or a "
        "systemd credential ($CREDENTIALS_DIRECTORY/NAME). Keys encrypted already are left "
        "as they are (they must open with this passphrase). Nothing changes when a file or "
        "the passphrase cannot be read. A running node goes on with the keys it holds; "
        "restart it so that it reads the passphrase from its source.",
    )
    source = protect.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="read the passphrase from FILE (one trailing newline ignored); node.toml "
        "records its absolute path. Keep it outside the node directory and its backups",
    )
    source.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="read it from the environment variable VAR, here and in the node's process",
    )
    source.add_argument(
        "--passphrase-credential",
        metavar="NAME",
        help="read it from the systemd credential NAME, here and in the node's unit "
        "(LoadCredential=NAME:... or LoadCredentialEncrypted=NAME:...)",
    )
    dir_argument(protect, default_dir, "node")
    protect.set_defaults(func=_protect)


def _protect(args: argparse.Namespace) -> int:
    source = _source(args)
    result = protect_keys(args.directory, source, cwd=Path.cwd())
    for path in result.encrypted:
        print(f"  encrypted          {path}")
    for path in result.already:
        print(f"  already encrypted  {path}")
    recorded = result.source.describe("passphrase")
    if result.config_changed:
        print(f"recorded [keys] {recorded} in {args.directory / 'node.toml'}")
    else:
        print(f"node.toml names [keys] {recorded} already")
    if source.kind == "file" and _inside(Path(args.passphrase_file), args.directory):
        print(
            "warning: the passphrase file is inside the node directory: a copy or backup of"
            " the directory carries the passphrase with the keys; move it elsewhere"
        )
    print(
        "next: keep the passphrase where the node reads it at start, and a copy of it"
        " apart from the key backups; restart a running node"
    )
    return 0


def _source(args: argparse.Namespace) -> SecretSource:
    source = chosen_source(args, "passphrase")
    if source is None:
        raise InputError("give --passphrase-file, --passphrase-env or --passphrase-credential")
    return source


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())
