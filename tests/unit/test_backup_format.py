"""The backup file's byte format (node.backup.format), pure: the header and its limits, the
sealed chunks (any byte flipped, a chunk moved or the end cut fails), and the archive's
entries parsed incrementally, refusing any path that could leave the restored folder."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.backup import format as fmt

N = 2**10  # the lowest cost a reader accepts: fast tests
SALT = bytes(range(16))
PREFIX = bytes(range(7))


def _key(passphrase: bytes = b"correct horse battery") -> bytes:
    return fmt.derive_key(passphrase, SALT, N, 8, 1)


def _header(key: bytes | None = None, chunk_bytes: int = fmt.CHUNK_BYTES) -> fmt.Header:
    key = key or _key()
    return fmt.Header(SALT, PREFIX, fmt.key_check(key), n=N, chunk_bytes=chunk_bytes)


def _raw_header(document: dict[str, object], version: int = fmt.VERSION) -> bytes:
    text = json.dumps(document).encode()
    return fmt.MAGIC + struct.pack(">HI", version, len(text)) + text


def _document() -> dict[str, object]:
    return json.loads(_header().to_bytes()[fmt.PREFIX_BYTES :])  # type: ignore[no-any-return]


def _archive(*entries: tuple[fmt.Entry, bytes]) -> bytes:
    manifest = fmt.manifest_entry({"format": fmt.VERSION, "country": "NL"})
    parts = [manifest, *entries, (fmt.Entry(fmt.END), b"")]
    return b"".join(
        fmt.Entry(e.kind, e.path, e.mode, len(data)).to_bytes() + data for e, data in parts
    )


def _read(data: bytes, step: int | None = None) -> list[tuple[str, object]]:
    reader = fmt.EntryReader()
    events: list[tuple[str, object]] = []
    step = step or max(len(data), 1)
    for start in range(0, len(data), step):
        events += reader.feed(data[start : start + step])
    reader.close()
    return events


def _files(events: list[tuple[str, object]]) -> dict[str, tuple[str, int, bytes]]:
    """path -> (kind, mode, content) from a reader's events."""
    out: dict[str, tuple[str, int, bytes]] = {}
    current: fmt.Entry | None = None
    content = b""
    for kind, value in events:
        if kind == "start":
            assert isinstance(value, fmt.Entry)
            current, content = value, b""
        elif kind == "data":
            assert isinstance(value, bytes)
            content += value
        else:
            assert current is not None and value == current
            if current.kind not in (fmt.MANIFEST, fmt.END):
                out[current.path] = (current.kind, current.mode, content)
    return out


# --- the header -------------------------------------------------------------------------


def test_a_header_reads_back_as_written() -> None:
    header = _header()
    assert fmt.parse_header(header.to_bytes()) == header
    assert fmt.header_length(header.to_bytes()[: fmt.PREFIX_BYTES]) == len(header.to_bytes()) - 14


def test_the_right_key_passes_the_check_and_another_is_a_wrong_passphrase() -> None:
    header = _header()
    fmt.check_key(header, _key())
    with pytest.raises(fmt.WrongPassphraseError, match="passphrase does not open"):
        fmt.check_key(header, _key(b"another passphrase"))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "not an ephyto backup"),
        (b"PK\x03\x04" + bytes(20), "not an ephyto backup"),
        (fmt.MAGIC + struct.pack(">HI", 2, 10), "format version 2"),
        (fmt.MAGIC + struct.pack(">HI", 1, 0), "header is damaged"),
        (fmt.MAGIC + struct.pack(">HI", 1, 10**9), "header is damaged"),
        (fmt.MAGIC + struct.pack(">HI", 1, 50) + b"{", "ends inside its header"),
        (_raw_header({"kdf": 1}), "header is damaged"),
        (fmt.MAGIC + struct.pack(">HI", 1, 5) + b"\xff\xfe{}x", "header is damaged"),
    ],
)
def test_what_is_not_a_header_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(fmt.BackupFormatError, match=problem):
        fmt.parse_header(data)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kdf": {"name": "argon2id", "n": N, "r": 8, "p": 1, "salt": SALT.hex()}}, "unknown KDF"),
        ({"cipher": "DES"}, "unknown KDF or cipher"),
        ({"kdf": {"name": "scrypt", "n": 2**30, "r": 8, "p": 1, "salt": SALT.hex()}}, "n is out"),
        ({"kdf": {"name": "scrypt", "n": 1000, "r": 8, "p": 1, "salt": SALT.hex()}}, "n is out"),
        ({"kdf": {"name": "scrypt", "n": N, "r": 10**6, "p": 1, "salt": SALT.hex()}}, "out of"),
        ({"kdf": {"name": "scrypt", "n": True, "r": 8, "p": 1, "salt": SALT.hex()}}, "damaged"),
        ({"kdf": {"name": "scrypt", "n": N, "r": 8, "p": 1, "salt": "zz"}}, "damaged"),
        ({"kdf": {"name": "scrypt", "n": N, "r": 8, "p": 1, "salt": "00"}}, "salt"),
        ({"chunk_bytes": 2**40}, "chunk size"),
        ({"chunk_bytes": 0}, "chunk size"),
        ({"chunk_bytes": "1"}, "damaged"),
        ({"nonce_prefix": "00"}, "nonce"),
        ({"key_check": ""}, "key check"),
    ],
)
def test_a_header_asking_too_much_or_malformed_is_refused(
    change: dict[str, object], problem: str
) -> None:
    with pytest.raises(fmt.BackupFormatError, match=problem):
        fmt.parse_header(_raw_header(_document() | change))


def test_a_header_without_a_field_is_refused() -> None:
    for field in _document():
        document = _document()
        del document[field]
        with pytest.raises(fmt.BackupFormatError, match="damaged"):
            fmt.parse_header(_raw_header(document))


# --- the chunks -------------------------------------------------------------------------


def test_a_chunk_opens_in_its_place_only() -> None:
    key, header = _key(), _header()
    frame = fmt.seal_chunk(key, header, 3, b"chunk three", last=False)
    sealed = frame[fmt.LENGTH_BYTES :]
    assert fmt.frame_length(frame[: fmt.LENGTH_BYTES], header) == len(sealed)
    assert fmt.open_chunk(key, header, 3, sealed, last=False) == b"chunk three"
    with pytest.raises(fmt.BackupFormatError, match="chunk 2 does not authenticate"):
        fmt.open_chunk(key, header, 2, sealed, last=False)  # moved
    with pytest.raises(fmt.BackupFormatError, match="last chunk does not authenticate"):
        fmt.open_chunk(key, header, 3, sealed, last=True)  # what followed it was cut off
    other = fmt.Header(SALT, bytes(7), header.key_check, n=N)
    with pytest.raises(fmt.BackupFormatError):
        fmt.open_chunk(key, other, 3, sealed, last=False)  # under another header


def test_a_flipped_bit_anywhere_in_a_sealed_chunk_fails() -> None:
    key, header = _key(), _header()
    sealed = fmt.seal_chunk(key, header, 0, b"node.toml and keys", last=True)[4:]
    for at in range(len(sealed)):
        for bit in (0x01, 0x80):
            damaged = sealed[:at] + bytes([sealed[at] ^ bit]) + sealed[at + 1 :]
            with pytest.raises(fmt.BackupFormatError, match="does not authenticate"):
                fmt.open_chunk(key, header, 0, damaged, last=True)


def test_a_chunk_length_past_the_chunk_size_is_refused_before_reading() -> None:
    header = _header(chunk_bytes=1024)
    with pytest.raises(fmt.BackupFormatError, match="chunk length"):
        fmt.frame_length(struct.pack(">I", 1024 + 17), header)
    with pytest.raises(fmt.BackupFormatError, match="chunk length"):
        fmt.frame_length(struct.pack(">I", 3), header)


# --- the entries ------------------------------------------------------------------------


def test_entries_read_back_whole_or_byte_by_byte() -> None:
    data = _archive(
        (fmt.Entry(fmt.FILE, "node.toml", 0o600), b"country = 'NL'\n"),
        (fmt.Entry(fmt.DIR, "keys", 0o700), b""),
        (fmt.Entry(fmt.FILE, "keys/tls.crt", 0o644), b"-----BEGIN"),
        (fmt.Entry(fmt.FILE, "empty", 0o600), b""),
        (fmt.Entry(fmt.DATABASE, fmt.DATABASE_PATH, 0o600), b"SQLite format 3\x00" * 100),
    )
    whole = _files(_read(data))
    assert whole == _files(_read(data, step=1)) == _files(_read(data, step=7))
    assert whole["node.toml"] == (fmt.FILE, 0o600, b"country = 'NL'\n")
    assert whole["keys"] == (fmt.DIR, 0o700, b"")
    assert whole["keys/tls.crt"] == (fmt.FILE, 0o644, b"-----BEGIN")
    assert whole["empty"] == (fmt.FILE, 0o600, b"")
    assert whole[fmt.DATABASE_PATH][2] == b"SQLite format 3\x00" * 100
    reader = fmt.EntryReader()
    reader.feed(data)
    assert reader.manifest == {"format": fmt.VERSION, "country": "NL"}


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,3})?", fullmatch=True),
            st.binary(max_size=300),
            st.integers(0, 0o777),
        ),
        max_size=8,
        unique_by=lambda t: t[0],
    ),
    st.integers(1, 64),
)
@settings(max_examples=60, deadline=None)
def test_any_archive_reads_back_in_any_pieces(
    files: list[tuple[str, bytes, int]], step: int
) -> None:
    data = _archive(*((fmt.Entry(fmt.FILE, name, mode), body) for name, body, mode in files))
    assert _files(_read(data, step)) == {name: (fmt.FILE, mode, body) for name, body, mode in files}


@pytest.mark.parametrize(
    "path",
    [
        "../node.toml",
        "/etc/passwd",
        "keys/../../x",
        "keys//tls.key",
        "./node.toml",
        "keys/",
        "",
        "..",
        "a\\..\\b",
        "a\x00b",
        "x" * 2000,
    ],
)
def test_a_path_that_could_leave_the_restored_folder_is_refused(path: str) -> None:
    data = _archive((fmt.Entry(fmt.FILE, path, 0o600), b"x"))
    with pytest.raises(fmt.BackupFormatError):
        _read(data)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([(fmt.Entry(fmt.FILE, "a", 0o600), b"1"), (fmt.Entry(fmt.FILE, "a", 0o600), b"2")],
         "appears twice"),
        ([(fmt.Entry(fmt.FILE, "a", 0o600), b"1"), (fmt.Entry(fmt.FILE, "a/b", 0o600), b"2")],
         "lies under a file"),
        ([(fmt.Entry(fmt.FILE, "a", 0o4755), b"1")], "size or mode"),
        ([(fmt.Entry(fmt.DATABASE, "other.db", 0o600), b"1")], "another name"),
        ([(fmt.Entry(fmt.DATABASE, fmt.DATABASE_PATH, 0o600), b"1"),
          (fmt.Entry(fmt.FILE, fmt.DATABASE_PATH, 0o600), b"2")], "appears twice"),
        ([(fmt.Entry("symlink", "a", 0o600), b"/etc/passwd")], "unknown kind"),
        ([(fmt.Entry(fmt.DIR, "d", 0o700), b"content")], "folder entry has content"),
        ([(fmt.Entry(fmt.MANIFEST, "manifest.json", 0o600), b"{}")], "start with its manifest"),
    ],
)  # fmt: skip
def test_entries_that_do_not_fit_together_are_refused(
    entries: list[tuple[fmt.Entry, bytes]], problem: str
) -> None:
    with pytest.raises(fmt.BackupFormatError, match=problem):
        _read(_archive(*entries))


def test_an_archive_must_start_with_its_manifest_and_end_with_its_mark() -> None:
    data = _archive((fmt.Entry(fmt.FILE, "a", 0o600), b"1"))
    first = fmt.Entry(fmt.FILE, "a", 0o600, 1).to_bytes() + b"1"
    with pytest.raises(fmt.BackupFormatError, match="start with its manifest"):
        _read(first + data)
    end = fmt.Entry(fmt.END).to_bytes()
    with pytest.raises(fmt.BackupFormatError, match="no end mark"):
        _read(data[: -len(end)])
    for cut in range(1, len(data)):
        with pytest.raises(fmt.BackupFormatError):
            _read(data[:cut])
    with pytest.raises(fmt.BackupFormatError, match="after its end mark"):
        _read(data + b"x")


@pytest.mark.parametrize(
    "meta",
    [b"{", b"[]", b'{"kind": "file"}', b'{"kind":"file","path":"a","mode":"644","size":1}',
     b'{"kind":"file","path":"a","mode":384,"size":-1}'],
)  # fmt: skip
def test_a_damaged_entry_is_refused(meta: bytes) -> None:
    manifest = fmt.manifest_entry({"format": 1})
    data = manifest[0].to_bytes() + manifest[1] + struct.pack(">I", len(meta)) + meta
    with pytest.raises(fmt.BackupFormatError):
        _read(data)


def test_an_entry_length_past_the_limit_is_refused() -> None:
    with pytest.raises(fmt.BackupFormatError, match="entry is damaged"):
        fmt.EntryReader().feed(struct.pack(">I", 2**31))


def test_a_damaged_manifest_is_refused() -> None:
    body = b"not json"
    data = fmt.Entry(fmt.MANIFEST, "manifest.json", 0o600, len(body)).to_bytes() + body
    with pytest.raises(fmt.BackupFormatError, match="manifest is damaged"):
        fmt.EntryReader().feed(data)
