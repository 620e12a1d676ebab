"""Restoring a backup of a node into a new directory (shell; the byte format is
`node.backup.format`).

A restore writes into a fresh folder beside the target and renames it into place only
once every chunk has authenticated, so a wrong passphrase or a damaged file leaves
nothing behind. The restored node.toml names the restored store (its database URL is
an absolute path); nothing else changes: same keys, same country, same endpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import tomli_w

from node.backup import format as fmt
from node.backup.archive import BackupError
from node.fileio import sync_folder
from node.identity.config import CONFIG_FILE, default_database_url, load_config
from node.store.database import redacted

_FOLDER_MODE = 0o700


@dataclass(frozen=True, slots=True)
class RestoreResult:
    country: str
    created: str
    files: int
    database: str | None
    schema_revision: str | None
    database_url: str


def restore(
    archive: Path, target: Path, passphrase: bytes, *, database_url: str | None = None
) -> RestoreResult:
    """Restore the backup `archive` into the new or empty folder `target`; nothing is
    written unless all of it authenticates. `database_url`: where a PostgreSQL store was
    restored (a backup made with keys_only). Raises BackupError (BackupFormatError,
    WrongPassphraseError), ConfigError or OSError."""
    target = target.absolute()
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise BackupError(f"{target} is not a folder: restore into a new one")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore into a new folder (nothing was written)")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent}: no such folder (nothing was written)")
    with archive.open("rb") as source:
        header = _read_header(source)
        key = fmt.derive_key(passphrase, header.salt, header.n, header.r, header.p)
        fmt.check_key(header, key)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
        try:
            writer = _Restorer(work)
            reader = fmt.EntryReader()
            for chunk in _open_chunks(source, key, header):
                for event in reader.feed(chunk):
                    writer.handle(event, reader.manifest)
            reader.close()
            result = _finish(work, target, reader.manifest, writer, database_url)
            writer.set_folder_modes()
            sync_folder(work)
            os.rename(work, target)  # replaces an empty folder; never a full one
            sync_folder(target.parent)
            return result
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


def _read_header(source: BinaryIO) -> fmt.Header:
    prefix = source.read(fmt.PREFIX_BYTES)
    length = fmt.header_length(prefix)
    return fmt.parse_header(prefix + _exactly(source, length))


def _open_chunks(source: BinaryIO, key: bytes, header: fmt.Header) -> Iterator[bytes]:
    """Each chunk, opened; the last one known by the end of the file after it."""
    index = 0
    length = source.read(fmt.LENGTH_BYTES)
    if not length:
        raise fmt.BackupFormatError("the backup is cut short: it holds no chunk")
    while True:
        if len(length) != fmt.LENGTH_BYTES:
            raise fmt.BackupFormatError("the backup is cut short inside a chunk length")
        sealed = _exactly(source, fmt.frame_length(length, header))
        following = source.read(fmt.LENGTH_BYTES)
        yield fmt.open_chunk(key, header, index, sealed, last=not following)
        if not following:
            return
        index, length = index + 1, following


def _exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise fmt.BackupFormatError("the backup is cut short")
    return data


class _Restorer:
    """Writes the entries of an archive under `root`, each file created new (0600 until
    its content is complete, then its own mode); folder modes set last."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0
        self.database = False
        self._out: IO[bytes] | None = None
        self._folders: list[tuple[Path, int]] = []

    def handle(self, event: tuple[str, Any], manifest: dict[str, Any] | None) -> None:
        kind, value = event
        if kind == "data":
            assert self._out is not None
            self._out.write(value)
            return
        entry: fmt.Entry = value
        if entry.kind in (fmt.MANIFEST, fmt.END):
            if entry.kind == fmt.MANIFEST and kind == "end":
                _check_manifest(manifest)
            return
        path = self.root / entry.path
        if entry.kind == fmt.DIR:
            if kind == "start":
                path.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
                self._folders.append((path, entry.mode))
            return
        if kind == "start":
            path.parent.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            self._out = os.fdopen(os.open(path, flags, 0o600), "wb")
            return
        assert self._out is not None
        self._out.flush()
        os.fsync(self._out.fileno())
        os.fchmod(self._out.fileno(), 0o600 if entry.kind == fmt.DATABASE else entry.mode)
        self._out.close()
        self._out = None
        if entry.kind == fmt.DATABASE:
            self.database = True
        else:
            self.files += 1

    def set_folder_modes(self) -> None:
        for path, mode in reversed(self._folders):
            path.chmod(mode)


def _check_manifest(manifest: dict[str, Any] | None) -> None:
    if manifest is None or manifest.get("format") != fmt.VERSION:
        raise fmt.BackupFormatError("its manifest is not one this version reads")


def _finish(
    work: Path,
    target: Path,
    manifest: dict[str, Any] | None,
    writer: _Restorer,
    database_url: str | None,
) -> RestoreResult:
    """node.toml pointed at the restored store, and checked as the node will read it."""
    assert manifest is not None
    config_file = work / CONFIG_FILE
    if not config_file.is_file():
        raise fmt.BackupFormatError(f"the backup holds no {CONFIG_FILE}")
    if writer.database and database_url is not None:
        raise BackupError(
            "this backup holds the node's SQLite store, restored as node.db:"
            " drop --database-url (nothing was written)"
        )
    url = default_database_url(target) if writer.database else database_url
    if url is not None:
        document = tomllib.loads(config_file.read_text(encoding="utf-8"))
        document["database_url"] = url
        fd = os.open(config_file.with_suffix(".new"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(tomli_w.dumps(document))
        os.replace(config_file.with_suffix(".new"), config_file)
    config = load_config(config_file)
    if config.country != manifest.get("country"):
        raise fmt.BackupFormatError("its manifest and node.toml name different countries")
    return RestoreResult(
        country=config.country,
        created=str(manifest.get("created")),
        files=writer.files,
        database=manifest.get("database") if writer.database else None,
        schema_revision=manifest.get("schema_revision") if writer.database else None,
        database_url=redacted(config.database_url),
    )
