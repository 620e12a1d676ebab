"""The backup file's byte format (pure): a header, then the archive in authenticated chunks.

    file    = magic "EPHYTOBK" | version u16 | header_length u32 | header (JSON) | frame*
    frame   = length u32 | AES-256-GCM(key, nonce, chunk, aad = magic..header)
    nonce   = nonce_prefix (7 bytes) | chunk index u32 | 1 if the last chunk else 0
    key     = scrypt(passphrase, salt, n, r, p), 32 bytes

The header (sorted-key JSON) holds the KDF's name, parameters and salt, the cipher, the
chunk size, the nonce prefix and a key check (HMAC-SHA256 of the key over a fixed label,
16 bytes), so a wrong passphrase is told apart from a damaged file. Each chunk's nonce
carries its index and whether it is the last (the STREAM construction), and every chunk
authenticates the whole header: a flipped, dropped, reordered or appended byte anywhere,
or a file cut short at any point, fails to open.

The decrypted chunks, joined, are the archive: entries one after another, each
`meta_length u32 | meta (JSON) | size bytes of content`, the first a manifest, the last
an end mark. `EntryReader` parses them incrementally, so a large store is never held in
memory whole; it refuses a path that could leave the directory restored into.

Values in, values or BackupFormatError out; no I/O, no clock (randomness is passed in).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from node.errors import InputError

MAGIC = b"EPHYTOBK"
VERSION = 1
KDF = "scrypt"
CIPHER = "AES-256-GCM"
# scrypt's cost: 128 * r * n bytes of memory (128 MiB) and about a second of CPU per guess.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
CHUNK_BYTES = 1 << 20
SALT_BYTES = 16
NONCE_PREFIX_BYTES = 7
TAG_BYTES = 16
# What a header may ask of the reader: a hostile file must not make it spend gigabytes.
_MAX_HEADER_BYTES = 4096
_MAX_N = 2**20
_MIN_N = 2**10
_MAX_CHUNK_BYTES = 16 << 20
_MAX_META_BYTES = 4096
_MAX_PATH_CHARS = 1024
_KEY_CHECK_LABEL = b"ephyto-backup key check v1"
_PREFIX = struct.Struct(">8sHI")  # magic, version, header length
_LENGTH = struct.Struct(">I")

# Entry kinds: the manifest (first), files and folders of the node's directory, the
# SQLite store (restored as node.db), and the end mark (last).
MANIFEST, FILE, DIR, DATABASE, END = "manifest", "file", "dir", "database", "end"
_KINDS = (MANIFEST, FILE, DIR, DATABASE, END)
DATABASE_PATH = "node.db"


class BackupFormatError(InputError):
    """The file is not a backup this version reads, or it is damaged."""


class WrongPassphraseError(BackupFormatError):
    """The passphrase does not open the backup."""


@dataclass(frozen=True, slots=True)
class Header:
    """What a reader needs before the first chunk: the KDF and cipher parameters."""

    salt: bytes
    nonce_prefix: bytes
    key_check: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    chunk_bytes: int = CHUNK_BYTES

    def to_bytes(self) -> bytes:
        """The magic, version, length and JSON: every chunk authenticates these bytes."""
        document = {
            "kdf": {"name": KDF, "n": self.n, "r": self.r, "p": self.p, "salt": self.salt.hex()},
            "cipher": CIPHER,
            "chunk_bytes": self.chunk_bytes,
            "nonce_prefix": self.nonce_prefix.hex(),
            "key_check": self.key_check.hex(),
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        return _PREFIX.pack(MAGIC, VERSION, len(text)) + text


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the archive: its kind, path (relative, POSIX), mode and size."""

    kind: str
    path: str = ""
    mode: int = 0
    size: int = 0

    def to_bytes(self) -> bytes:
        meta = {"kind": self.kind, "path": self.path, "mode": self.mode, "size": self.size}
        text = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
        return _LENGTH.pack(len(text)) + text


PREFIX_BYTES = _PREFIX.size
LENGTH_BYTES = _LENGTH.size


def derive_key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """scrypt: the 32-byte AES-256 key."""
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def new_header(
    key: bytes, salt: bytes, nonce_prefix: bytes, *, n: int = SCRYPT_N, r: int = SCRYPT_R
) -> Header:
    """The header of a new backup whose `key` was derived with `salt`, `n` and `r`."""
    _check(len(salt) == SALT_BYTES and len(nonce_prefix) == NONCE_PREFIX_BYTES, "bad sizes")
    return Header(salt, nonce_prefix, key_check(key), n=n, r=r)


def key_check(key: bytes) -> bytes:
    return hmac.new(key, _KEY_CHECK_LABEL, hashlib.sha256).digest()[:16]


def header_length(prefix: bytes) -> int:
    """From the first PREFIX_BYTES of a file: how long its JSON header is."""
    if len(prefix) < PREFIX_BYTES or prefix[:8] != MAGIC:
        raise BackupFormatError("not an ephyto backup (no EPHYTOBK at its start)")
    _, version, length = _PREFIX.unpack(prefix[:PREFIX_BYTES])
    if version != VERSION:
        raise BackupFormatError(
            f"backup format version {version}: this version of ephyto reads version {VERSION}"
        )
    _check(0 < length <= _MAX_HEADER_BYTES, "its header is damaged")
    return int(length)


def parse_header(data: bytes) -> Header:
    """The header from the file's first PREFIX_BYTES + header_length bytes."""
    length = header_length(data)
    _check(len(data) == PREFIX_BYTES + length, "it ends inside its header")
    try:
        doc = json.loads(data[PREFIX_BYTES:])
        kdf = doc["kdf"]
        _check(kdf["name"] == KDF and doc["cipher"] == CIPHER, "unknown KDF or cipher")
        header = Header(
            salt=bytes.fromhex(kdf["salt"]),
            nonce_prefix=bytes.fromhex(doc["nonce_prefix"]),
            key_check=bytes.fromhex(doc["key_check"]),
            n=_int(kdf["n"]),
            r=_int(kdf["r"]),
            p=_int(kdf["p"]),
            chunk_bytes=_int(doc["chunk_bytes"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BackupFormatError(f"its header is damaged ({type(e).__name__})") from None
    _check(
        _MIN_N <= header.n <= _MAX_N and header.n & (header.n - 1) == 0,
        "its KDF parameter n is out of range",
    )
    _check(1 <= header.r <= 32 and 1 <= header.p <= 16, "its KDF parameters are out of range")
    _check(0 < header.chunk_bytes <= _MAX_CHUNK_BYTES, "its chunk size is out of range")
    _check(len(header.salt) == SALT_BYTES, "its salt is damaged")
    _check(len(header.nonce_prefix) == NONCE_PREFIX_BYTES, "its nonce is damaged")
    _check(len(header.key_check) == 16, "its key check is damaged")
    return header


def check_key(header: Header, key: bytes) -> None:
    """WrongPassphraseError unless `key` is the one the backup was written with."""
    if not hmac.compare_digest(key_check(key), header.key_check):
        raise WrongPassphraseError(
            "the passphrase does not open this backup (or its header is damaged)"
        )


def seal_chunk(key: bytes, header: Header, index: int, chunk: bytes, *, last: bool) -> bytes:
    """One frame: the sealed chunk `index`, with its length in front."""
    sealed = AESGCM(key).encrypt(_nonce(header, index, last), chunk, header.to_bytes())
    return _LENGTH.pack(len(sealed)) + sealed


def frame_length(data: bytes, header: Header) -> int:
    """The length of the sealed chunk whose LENGTH_BYTES prefix is `data`."""
    (length,) = _LENGTH.unpack(data)
    _check(TAG_BYTES <= length <= header.chunk_bytes + TAG_BYTES, "a chunk length is damaged")
    return int(length)


def open_chunk(key: bytes, header: Header, index: int, sealed: bytes, *, last: bool) -> bytes:
    """The chunk `index`; BackupFormatError if any byte of it, of the header, or of its
    place in the file (its index, being the last) is not what was written."""
    try:
        return AESGCM(key).decrypt(_nonce(header, index, last), sealed, header.to_bytes())
    except InvalidTag:
        if last:
            problem = "damaged, altered or cut short: its last chunk does not authenticate"
        else:
            problem = f"damaged or altered: its chunk {index} does not authenticate"
        raise BackupFormatError(f"the backup is {problem}") from None


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """`data` cut into chunks of `size` bytes (none for no data)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def manifest_entry(manifest: dict[str, Any]) -> tuple[Entry, bytes]:
    data = json.dumps(manifest, sort_keys=True, indent=2).encode() + b"\n"
    return Entry(MANIFEST, "manifest.json", 0o600, len(data)), data


class EntryReader:
    """Parses the archive's plaintext as it arrives: `feed` bytes, get events back.

    Events: ("start", Entry), ("data", bytes), ("end", Entry). Refuses (BackupFormatError)
    a path that is absolute, climbs with "..", repeats, or lies under a file; a mode
    beyond rwx bits; anything before the manifest or after the end mark.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._current: Entry | None = None
        self._left = 0
        self._seen: dict[str, str] = {}
        self._count = 0
        self.manifest: dict[str, Any] | None = None
        self._manifest_bytes = b""
        self.ended = False

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        self._buffer += data
        while self._buffer:
            if self.ended:
                raise BackupFormatError("the archive has bytes after its end mark")
            if self._current is None:
                if not self._start(events):
                    break
                continue
            piece, self._buffer = self._buffer[: self._left], self._buffer[self._left :]
            self._left -= len(piece)
            self._data(piece, events)
            if self._left == 0:
                self._finish(events)
        return events

    def close(self) -> None:
        """After the last chunk: BackupFormatError unless the archive ended properly."""
        _check(self.ended and not self._buffer, "the archive inside has no end mark")

    def _start(self, events: list[tuple[str, Any]]) -> bool:
        if len(self._buffer) < LENGTH_BYTES:
            return False
        (length,) = _LENGTH.unpack(self._buffer[:LENGTH_BYTES])
        _check(0 < length <= _MAX_META_BYTES, "an entry is damaged")
        if len(self._buffer) < LENGTH_BYTES + length:
            return False
        meta, self._buffer = (
            self._buffer[LENGTH_BYTES : LENGTH_BYTES + length],
            self._buffer[LENGTH_BYTES + length :],
        )
        entry = self._entry(meta)
        self._current, self._left = entry, entry.size
        events.append(("start", entry))
        if entry.size == 0:
            self._finish(events)
        return True

    def _entry(self, meta: bytes) -> Entry:
        try:
            doc = json.loads(meta)
            entry = Entry(str(doc["kind"]), str(doc["path"]), _int(doc["mode"]), _int(doc["size"]))
        except (ValueError, KeyError, TypeError) as e:
            raise BackupFormatError(f"an entry is damaged ({type(e).__name__})") from None
        _check(entry.kind in _KINDS, f"an entry of unknown kind {entry.kind[:20]!r}")
        _check(entry.size >= 0 and 0 <= entry.mode <= 0o777, "an entry's size or mode is bad")
        first = self._count == 0
        self._count += 1
        _check(first == (entry.kind == MANIFEST), "the archive does not start with its manifest")
        if entry.kind == END:
            _check(entry.size == 0, "the end mark is damaged")
            self.ended = True
            return entry
        if entry.kind == MANIFEST:
            _check(entry.size <= _MAX_META_BYTES * 4, "the manifest is too large")
            return entry
        if entry.kind == DATABASE:
            _check(entry.path == DATABASE_PATH, "the store's entry has another name")
        self._claim(safe_path(entry.path), entry.kind)
        _check(entry.kind != DIR or entry.size == 0, "a folder entry has content")
        return entry

    def _claim(self, path: PurePosixPath, kind: str) -> None:
        text = str(path)
        _check(text not in self._seen, f"the path {text!r} appears twice")
        for parent in path.parents:
            _check(self._seen.get(str(parent)) in (None, DIR), f"{text!r} lies under a file")
        self._seen[text] = kind

    def _data(self, piece: bytes, events: list[tuple[str, Any]]) -> None:
        assert self._current is not None
        if self._current.kind == MANIFEST:
            self._manifest_bytes += piece
        elif piece:
            events.append(("data", piece))

    def _finish(self, events: list[tuple[str, Any]]) -> None:
        entry, self._current = self._current, None
        assert entry is not None
        if entry.kind == MANIFEST:
            try:
                manifest = json.loads(self._manifest_bytes)
            except ValueError:
                raise BackupFormatError("the manifest is damaged") from None
            _check(isinstance(manifest, dict), "the manifest is damaged")
            self.manifest = manifest
        events.append(("end", entry))


def safe_path(text: str) -> PurePosixPath:
    """A relative path that stays inside the folder it is restored into."""
    _check(0 < len(text) <= _MAX_PATH_CHARS, "a path is empty or too long")
    _check("\\" not in text and "\x00" not in text, f"the path {text[:80]!r} is not allowed")
    path = PurePosixPath(text)
    _check(
        not path.is_absolute()
        and str(path) == text
        and all(part not in ("", ".", "..") for part in path.parts),
        f"the path {text[:80]!r} could leave the folder restored into",
    )
    return path


def _nonce(header: Header, index: int, last: bool) -> bytes:
    _check(0 <= index < 2**32, "too many chunks")
    return header.nonce_prefix + struct.pack(">IB", index, 1 if last else 0)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


def _check(condition: bool, problem: str) -> None:
    if not condition:
        raise BackupFormatError(f"not a backup this version can restore: {problem}")
