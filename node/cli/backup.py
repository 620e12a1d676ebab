"""`ephyto node backup` and `ephyto node restore`: the node's directory and SQLite store in
one file encrypted with a passphrase, taken while the node runs, and restored into a new
directory to replace a node that is gone (docs/operations.md, "Backups")."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from node.commandline import dir_argument
from node.errors import InputError

# Long enough that guessing it through scrypt is out of reach; a sentence will do.
MIN_PASSPHRASE_CHARS = 12


def add_parser(sub: Any, default_dir: Path) -> None:
    """The `backup` and `restore` actions of `ephyto node`."""
    backup = sub.add_parser(
        "backup",
        help="back up the node (store, keys, config) into one encrypted file, while it runs",
        description="Write one file holding the node's SQLite store (copied with SQLite's "
        "online backup, consistent while the node runs) and everything else in its "
        "directory: node.toml, keys/, api-clients.json, directory.json, the trust anchor, "
        "codelists/, store-state.json. Encrypted and authenticated with a key derived from "
        "the passphrase (scrypt, AES-256-GCM); written with mode 0600, never over a file. "
        "A node whose store is in PostgreSQL: back the database up with pg_dump, and the "
        "rest with --keys-only.",
    )
    dir_argument(backup, default_dir, "node")
    backup.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="the backup file"
    )
    backup.add_argument(
        "--keys-only",
        action="store_true",
        help="everything but the store (for a store in PostgreSQL, backed up with pg_dump)",
    )
    _passphrase_arguments(backup)
    backup.set_defaults(func=_backup)

    restore = sub.add_parser(
        "restore",
        help="restore a backup into a new directory, to replace a node that is gone",
        description="Restore a backup made by `ephyto node backup` into DIR, which must be "
        "new or empty. Nothing is written unless the whole file authenticates with the "
        "passphrase. node.toml is pointed at the restored store; the identity (keys, "
        "country, endpoint) is the backed-up node's: never run the old node and the "
        "restored one at once.",
    )
    restore.add_argument("file", type=Path, metavar="FILE", help="the backup file")
    restore.add_argument(
        "--dir",
        type=Path,
        required=True,
        metavar="DIR",
        dest="directory",
        help="the node directory to create (new, or an empty folder)",
    )
    restore.add_argument(
        "--database-url",
        metavar="URL",
        help="a backup made with --keys-only: the database the store was restored into "
        "(postgresql+asyncpg://...)",
    )
    _passphrase_arguments(restore)
    restore.set_defaults(func=_restore)


def _passphrase_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help="read the passphrase from FILE (one line; keep it apart from the backups)",
    )
    source.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="read the passphrase from the environment variable VAR",
    )


def read_passphrase(args: argparse.Namespace, *, new: bool) -> bytes:
    """The passphrase from --passphrase-file or --passphrase-env; InputError if there is
    none, or (for a new backup) if it is too short."""
    if args.passphrase_file is not None:
        text = args.passphrase_file.read_text(encoding="utf-8")
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        where = str(args.passphrase_file)
    else:
        text = str(os.environ.get(args.passphrase_env, ""))
        where = f"${args.passphrase_env}"
    if not text:
        raise InputError(f"{where}: no passphrase there")
    if new and len(text) < MIN_PASSPHRASE_CHARS:
        raise InputError(
            f"{where}: the passphrase is too short ({MIN_PASSPHRASE_CHARS} characters or more)"
        )
    return str(text).encode("utf-8")


def _backup(args: argparse.Namespace) -> int:
    from node.backup.archive import back_up  # SQLAlchemy, cryptography: load on use
    from node.clock import SystemClock

    passphrase = read_passphrase(args, new=True)
    result = back_up(
        args.directory, args.output, passphrase, keys_only=args.keys_only, now=SystemClock().now()
    )
    if result.database is None:
        store = "without its store (back the database up with pg_dump)"
    else:
        store = f"with its store at schema revision {result.schema_revision}"
    print(f"backed up node {result.country} {store} and {result.files} files")
    print(f"  to {args.output} ({result.size} bytes, mode 0600)")
    print("keep the passphrase apart from the backup: without it the file cannot be read")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from node.backup.restoring import restore  # SQLAlchemy, cryptography: load on use

    passphrase = read_passphrase(args, new=False)
    result = restore(args.file, args.directory, passphrase, database_url=args.database_url)
    print(f"restored node {result.country} as backed up at {result.created} into {args.directory}")
    if result.database is not None:
        print(f"  store    node.db, at schema revision {result.schema_revision}")
    else:
        print("  store    not in this backup: restore the database from its own backup")
    print(f"  database {result.database_url}")
    print(
        "the old node must stay stopped: the restored one has its identity. Next:"
        f" `ephyto node serve --dir {args.directory}` (after `ephyto node migrate` if this"
        " version asks for it)"
    )
    return 0
