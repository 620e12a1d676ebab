"""Backing up a node's directory and SQLite store into one encrypted file (shell; the byte
format is `node.backup.format`, restoring is `node.backup.restoring`).

The store is copied with SQLite's online backup API from a connection of its own: one
read transaction gives a consistent snapshot while the node goes on writing (WAL mode
lets a reader and the writer run side by side). Everything else in the node directory
goes in as it is: node.toml, keys/, api-clients.json, directory.json, the trust anchor,
codelists/, store-state.json. A PostgreSQL store is not copied here: pg_dump does that,
and `keys_only` backs up the rest.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from node import __version__
from node.backup import format as fmt
from node.errors import InputError
from node.fileio import sync_folder
from node.identity.config import CONFIG_FILE, load_config
from node.store.database import redacted

BACKUPS_GUIDE = 'docs/operations.md, "Backups"'
_READ_BYTES = 1 << 20


class BackupError(InputError):
    """The backup or restore cannot be done as asked; nothing was written."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    country: str
    files: int
    database: str | None  # "sqlite" when the store is in the backup
    schema_revision: str | None
    size: int


def back_up(
    node_dir: Path,
    output: Path,
    passphrase: bytes,
    *,
    keys_only: bool,
    now: datetime,
    scrypt_n: int = fmt.SCRYPT_N,
) -> BackupResult:
    """Write the encrypted backup of the node in `node_dir` to `output` (mode 0600, never
    replacing a file). Raises BackupError, ConfigError, StoreDamagedError or OSError."""
    config = load_config(node_dir / CONFIG_FILE)
    database = None if keys_only else _sqlite_store(config.database_url)
    skipped = _store_files(config.database_url)
    output = output.absolute()
    if output.exists() or output.is_symlink():
        raise BackupError(f"{output} exists: give a new file name (nothing was written)")
    if output.resolve().is_relative_to(node_dir.resolve()):
        raise BackupError(f"{output}: keep backups outside the node directory {node_dir}")
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    partial = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        revision = None
        copy = work / fmt.DATABASE_PATH
        if database is not None:
            revision = _online_copy(database, copy)
        manifest = {
            "format": fmt.VERSION,
            "country": config.country,
            "name": config.name,
            "created": now.isoformat(timespec="seconds"),
            "ephyto_version": __version__,
            "database": None if database is None else "sqlite",
            "database_url": redacted(config.database_url),
            "schema_revision": revision,
        }
        files = list(_node_files(node_dir.resolve(), skipped))
        key, header = _new_key(passphrase, scrypt_n)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(header.to_bytes())
            sealer = _Sealer(out, key, header)
            sealer.entry(*fmt.manifest_entry(manifest))
            for relative, path, mode, is_dir in files:
                if is_dir:
                    sealer.entry(fmt.Entry(fmt.DIR, relative, mode), b"")
                else:
                    sealer.entry(fmt.Entry(fmt.FILE, relative, mode), path.read_bytes())
            if database is not None:
                sealer.stream(fmt.Entry(fmt.DATABASE, fmt.DATABASE_PATH, 0o600), copy)
            sealer.entry(fmt.Entry(fmt.END), b"")
            sealer.close()
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, output)  # atomic, and never over a file that appeared since
        except FileExistsError:
            raise BackupError(f"{output} exists: give a new file name") from None
        sync_folder(output.parent)
        size = output.stat().st_size
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    count = sum(1 for *_, is_dir in files if not is_dir)
    return BackupResult(
        config.country, count, None if database is None else "sqlite", revision, size
    )


def _sqlite_store(url: str) -> Path:
    """The node's SQLite file; BackupError for a PostgreSQL store (pg_dump's job)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BackupError(f"node.toml: database_url {redacted(url)!r} is not a URL") from None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise BackupError(
            f"the node's store is in {parsed.get_backend_name()} ({redacted(url)}): back it"
            " up with pg_dump, and the rest of the node with `ephyto node backup --keys-only`"
            f" ({BACKUPS_GUIDE})"
        )
    path = Path(parsed.database)
    if not path.is_file():
        raise BackupError(
            f"{path}: the store does not exist yet: nothing to back up but the node's"
            " files (--keys-only)"
        )
    return path


def _store_files(url: str) -> set[Path]:
    """The SQLite store's files, left out of the folder walk (copied online instead)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return set()
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return set()
    path = Path(parsed.database).resolve()
    return {path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")}


def _online_copy(database: Path, copy: Path) -> str | None:
    """SQLite's online backup of the live store into `copy` (0600, one file, checked);
    the schema revision it is at."""
    os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    # mode=rw: never create a store where there was none. The node may be writing: a
    # reader in WAL mode sees one snapshot and holds the writer up for no time.
    source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=30)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # the copy as one file, no -wal
        findings = [row[0] for row in target.execute("PRAGMA quick_check")]
        if findings != ["ok"]:
            raise BackupError(f"{database}: the copy of the store is damaged: {findings[0]}")
        tables = {row[0] for row in target.execute("SELECT name FROM sqlite_master")}
        if "alembic_version" not in tables:
            return None
        row = target.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{database}: cannot copy the store: {e}") from None
    finally:
        target.close()
        source.close()


def _node_files(root: Path, skipped: set[Path]) -> Iterator[tuple[str, Path, int, bool]]:
    """(relative path, path, mode, is a folder) of what the node directory holds, folders
    before what they hold; the store's own files, temporary files and symlinks left out."""
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        base = Path(folder)
        for name in sorted(dirs):
            path = base / name
            if not path.is_symlink():
                yield path.relative_to(root).as_posix(), path, _mode(path), True
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
        for name in sorted(names):
            path = base / name
            info = path.lstat()
            if path.resolve() in skipped or not stat.S_ISREG(info.st_mode):
                continue
            if name.startswith(".") and name.endswith(".tmp"):
                continue  # a crashed writer's leftover (node.fileio.write_atomic)
            yield path.relative_to(root).as_posix(), path, stat.S_IMODE(info.st_mode), False


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _new_key(passphrase: bytes, n: int) -> tuple[bytes, fmt.Header]:
    salt = secrets.token_bytes(fmt.SALT_BYTES)
    key = fmt.derive_key(passphrase, salt, n, fmt.SCRYPT_R, fmt.SCRYPT_P)
    return key, fmt.new_header(key, salt, secrets.token_bytes(fmt.NONCE_PREFIX_BYTES), n=n)


class _Sealer:
    """Cuts the archive's plaintext into chunks and writes each sealed; the last one is
    held back until `close`, since it is sealed as the last."""

    def __init__(self, out: IO[bytes], key: bytes, header: fmt.Header) -> None:
        self._out, self._key, self._header = out, key, header
        self._buffer = bytearray()
        self._index = 0

    def entry(self, entry: fmt.Entry, data: bytes) -> None:
        sized = fmt.Entry(entry.kind, entry.path, entry.mode, len(data))
        self._add(sized.to_bytes())
        self._add(data)

    def stream(self, entry: fmt.Entry, path: Path) -> None:
        with path.open("rb") as source:
            size = os.fstat(source.fileno()).st_size
            self._add(fmt.Entry(entry.kind, entry.path, entry.mode, size).to_bytes())
            left = size
            while left:
                piece = source.read(min(_READ_BYTES, left))
                if not piece:
                    raise BackupError(f"{path}: shorter than it was")
                self._add(piece)
                left -= len(piece)

    def close(self) -> None:
        last = fmt.seal_chunk(self._key, self._header, self._index, bytes(self._buffer), last=True)
        self._out.write(last)

    def _add(self, data: bytes) -> None:
        self._buffer += data
        size = self._header.chunk_bytes
        while len(self._buffer) > size:
            chunk = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._out.write(fmt.seal_chunk(self._key, self._header, self._index, chunk, last=False))
            self._index += 1
