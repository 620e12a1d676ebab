"""`ephyto node hsm-import`: move the node's signing key into a PKCS#11 token (an HSM)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.cli.secret_options import chosen_source
from node.commandline import dir_argument
from node.errors import InputError
from node.identity.hsm_import import import_signing_key
from node.identity.protection import SecretSource, pkcs11_ref

SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian's softhsm2


def add_parser(sub: Any, default_dir: Path) -> None:
    """The `hsm-import` action of `ephyto node`."""
    hsm = sub.add_parser(
        "hsm-import",
        help="store the node's signing key in a PKCS#11 token (HSM) and sign there from now on",
        description="Store the node's current Ed25519 signing key in a PKCS#11 token "
        "(sensitive, not extractable: it can sign there but never be read back) and record "
        "[keys.signing_pkcs11] in node.toml. The enrolled key stays the same, so nothing "
        "changes for partners or the registry. The key file is left in place: move it to an "
        "offline backup yourself. Needs python-pkcs11 (pip install 'ephyto-exchange[hsm]'). "
        "Restart a running node.",
    )
    hsm.add_argument(
        "--module",
        default=SOFTHSM2_MODULE,
        metavar="PATH",
        help=f"the token's PKCS#11 library (default: {SOFTHSM2_MODULE})",
    )
    hsm.add_argument("--token", required=True, metavar="LABEL", help="the token's label")
    hsm.add_argument(
        "--key-label", required=True, metavar="LABEL", help="the label to store the key under"
    )
    pin = hsm.add_mutually_exclusive_group(required=True)
    pin.add_argument("--pin-file", metavar="FILE", help="read the user PIN from FILE")
    pin.add_argument("--pin-env", metavar="VAR", help="read it from the environment variable VAR")
    pin.add_argument(
        "--pin-credential", metavar="NAME", help="read it from the systemd credential NAME"
    )
    dir_argument(hsm, default_dir, "node")
    hsm.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    for option, value in (("--module", args.module), ("--token", args.token),
                          ("--key-label", args.key_label)):  # fmt: skip
        if not value.strip() or "\x00" in value:
            raise InputError(f"{option}: must not be empty")
    ref = pkcs11_ref(args.module, args.token, args.key_label, _pin(args), "")
    result = import_signing_key(args.directory, ref, cwd=Path.cwd())
    print(
        f"stored signing key {result.signing_key_id} in token {args.token!r} as {args.key_label!r}"
    )
    print(f"recorded [keys.signing_pkcs11] in {args.directory / 'node.toml'}")
    print(
        f"next: move {result.key_file} to an offline backup (the node no longer reads it),"
        " and restart a running node"
    )
    return 0


def _pin(args: argparse.Namespace) -> SecretSource | None:
    return chosen_source(args, "pin")  # argparse requires one; pkcs11_ref says so if not
