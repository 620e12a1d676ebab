"""The code lists the registry publishes: kept, imported, written out for nodes to fetch.

Layout, under the registry directory (docs/maintainers.md):

    codelists/<name>/<version>.json            a list a maintainer imported, the exact
                                               bytes given, never changed
    published/codelists/<name>/<version>.json  what nodes fetch (docs/protocol.md, Part F),
                                               written by publish, never overwritten

The lists in force are the node's bundled ones (the package data file, byte for byte)
unless a newer version of a list was imported. A node checks a fetched file against the
SHA-256 and length the signed directory gives (`code_list_files`), so the files themselves
need no signature, and a mirror may serve them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Final

from node.codelists.lists import MAX_BYTES, CodeList, version_key
from node.directory import CodeListFile
from node.errors import InputError
from node.fileio import write_exclusive
from registry.governance import Signer
from registry.layout import RegistryFiles
from registry.publish import RegistryError

KEPT_DIR: Final = "codelists"
PUBLISHED_DIR: Final = ("published", "codelists")
# The same shapes as node.codelists.lists: a path segment of either can hold no "/" or "..".
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_VERSION_RE: Final = re.compile(r"[0-9]{1,9}(?:[.-][0-9]{1,9}){0,7}")


@dataclass(frozen=True, slots=True)
class KeptList:
    """A code list as the registry publishes it: parsed, and its exact file bytes."""

    code_list: CodeList
    data: bytes
    origin: str  # "bundled" or the file it was imported to

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def file(self) -> CodeListFile:
        return CodeListFile(self.code_list.name, self.sha256, len(self.data))


def bundled_lists() -> dict[str, KeptList]:
    """The node's bundled lists with the bytes of their package data files."""
    found: dict[str, KeptList] = {}
    data_dir = resources.files("node.codelists") / "data"
    for entry in sorted(data_dir.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            data = entry.read_bytes()
            code_list = CodeList.from_json_bytes(data)
            found[code_list.name] = KeptList(code_list, data, "bundled")
    return found


def kept_lists(root: Path) -> dict[str, KeptList]:
    """Name -> the newest version of each list: bundled, or imported into `root`.

    RegistryError naming the file when an imported file no longer reads as what its path
    says (hand-edited): it is never published.
    """
    lists = bundled_lists()
    folder = root / KEPT_DIR
    if not folder.is_dir():
        return lists
    for path in sorted(folder.glob("*/*.json")):
        name, version = path.parent.name, path.name.removesuffix(".json")
        if not (_NAME_RE.fullmatch(name) and _VERSION_RE.fullmatch(version)):
            continue  # not ours (an editor's backup, say)
        data = path.read_bytes()
        try:
            code_list = CodeList.from_json_bytes(data)
        except InputError as exc:
            raise RegistryError(f"{path}: no longer a code list ({exc}): restore it") from None
        if (code_list.name, code_list.version) != (name, version):
            raise RegistryError(
                f"{path} holds {code_list.name} version {code_list.version}: restore it"
            )
        current = lists.get(name)
        if current is None or code_list.is_newer_than(current.code_list):
            lists[name] = KeptList(code_list, data, str(path))
    return lists


def check_import(data: bytes, kept: dict[str, KeptList]) -> CodeList:
    """The list in `data` if the registry may publish it after `kept`; InputError otherwise.

    Pure. A list may only move forward: a version not newer than the one published would
    either change nothing or roll nodes back, and nodes refuse to roll back anyway.
    """
    if len(data) > MAX_BYTES:
        raise InputError(f"the file is larger than {MAX_BYTES} bytes, the limit of a code list")
    new = CodeList.from_json_bytes(data)
    current = kept.get(new.name)
    if current is not None and not new.is_newer_than(current.code_list):
        raise InputError(
            f"code list {new.name} version {new.version} is not newer than version"
            f" {current.code_list.version} the registry publishes: nothing imported"
        )
    return new


def import_code_list(
    state: RegistryFiles, data: bytes, now: datetime, actor: str, signer: Signer | None = None
) -> KeptList:
    """`registry codelists import FILE`: keep a newer list (published by the next publish).

    InputError (not a code list, not newer), nothing written; an audit entry otherwise.
    """
    imported = import_code_lists(
        state, [("the code list file", data)], now, actor, signer, pass_over_kept=False
    )
    return imported.kept[0]


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did: the lists kept now, and those given that were kept already."""

    kept: tuple[KeptList, ...]
    already: tuple[CodeList, ...]


def import_code_lists(
    state: RegistryFiles,
    files: Sequence[tuple[str, bytes]],
    now: datetime,
    actor: str,
    signer: Signer | None = None,
    *,
    pass_over_kept: bool = True,
) -> Imported:
    """`registry codelists import FILE|DIR ...`: keep newer lists, all or none.

    `files` are (where from, bytes). A file the registry keeps already, byte for byte (a
    sync's folder holds the lists it did not change, and those fetched from us), is
    passed over, unless not `pass_over_kept`. InputError naming the file (not a code
    list, not newer, one list twice), nothing written; an audit entry per list kept.
    """
    with state.locked():  # the registry's one lock (registry/layout.py)
        kept = kept_lists(state.root)
        new: list[tuple[CodeList, bytes]] = []
        already: list[CodeList] = []
        origins: dict[str, str] = {}
        for origin, data in files:
            try:
                same = _kept_already(state.root, data, kept) if pass_over_kept else None
                if same is not None:
                    already.append(same)
                    continue
                code_list = check_import(data, kept)
            except InputError as exc:
                raise InputError(f"{origin}: {exc}") from None
            if code_list.name in origins:
                raise InputError(
                    f"{origin} and {origins[code_list.name]} both hold code list"
                    f" {code_list.name}: nothing imported"
                )
            origins[code_list.name] = origin
            new.append((code_list, data))
        written = _write_all(state.root, new)
        for entry in written:
            previous = kept.get(entry.code_list.name)
            state.audit(
                "codelists-import",
                actor,
                now,
                {
                    "name": entry.code_list.name,
                    "version": entry.code_list.version,
                    "previous": None if previous is None else previous.code_list.version,
                    "codes": len(entry.code_list.codes),
                    "sha256": entry.sha256,
                    "length": len(entry.data),
                },
                signer,
            )
    return Imported(tuple(written), tuple(already))


def _kept_already(root: Path, data: bytes, kept: dict[str, KeptList]) -> CodeList | None:
    """The list in `data` if the registry keeps these very bytes (as its newest version, or
    an older one it imported); None otherwise."""
    if len(data) > MAX_BYTES:
        return None  # check_import says why
    code_list = CodeList.from_json_bytes(data)
    current = kept.get(code_list.name)
    if current is not None and current.data == data:
        return code_list
    if not (_NAME_RE.fullmatch(code_list.name) and _VERSION_RE.fullmatch(code_list.version)):
        return None
    path = root / KEPT_DIR / code_list.name / f"{code_list.version}.json"
    return code_list if path.is_file() and path.read_bytes() == data else None


def _write_all(root: Path, lists: list[tuple[CodeList, bytes]]) -> list[KeptList]:
    """Keep each list as codelists/<name>/<version>.json; on a failure, remove those this
    call wrote, so that an import is all or nothing."""
    written: list[KeptList] = []
    try:
        for code_list, data in lists:
            folder = root / KEPT_DIR / code_list.name
            folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            path = folder / f"{code_list.version}.json"
            try:
                write_exclusive(path, data, 0o644)
            except FileExistsError:
                raise RegistryError(f"{path} appeared meanwhile: another import ran") from None
            written.append(KeptList(code_list, data, str(path)))
    except BaseException:
        for entry in written:
            Path(entry.origin).unlink(missing_ok=True)
        raise
    return written


def directory_members(root: Path) -> tuple[dict[str, str], tuple[CodeListFile, ...]]:
    """The directory's `code_lists` (name -> version) and `code_list_files` for the kept
    lists: what the next publish names."""
    kept = kept_lists(root)
    versions = {name: entry.code_list.version for name, entry in kept.items()}
    return versions, tuple(kept[name].file() for name in sorted(kept))


def write_published(root: Path, files: tuple[CodeListFile, ...]) -> None:
    """Write the kept list of each of `files` to published/codelists/<name>/<version>.json.

    Called by publish before the directory naming them is published, so a node never
    reads a directory whose files are missing. RegistryError when a kept list no longer
    matches `files` (imported since the directory was built: build it again). A file
    already there must hold the same bytes (a publish that failed later, run again):
    different bytes under a published name are refused, since nodes may have them.
    """
    kept = kept_lists(root)
    for wanted in files:
        entry = kept.get(wanted.name)
        if entry is None or entry.file() != wanted:
            raise RegistryError(
                f"code list {wanted.name} changed since this directory was built:"
                " publish again (or propose again)"
            )
        name = wanted.name
        folder = root.joinpath(*PUBLISHED_DIR, name)
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        path = folder / f"{entry.code_list.version}.json"
        try:
            write_exclusive(path, entry.data, 0o644)
        except FileExistsError:
            if path.read_bytes() != entry.data:
                raise RegistryError(
                    f"{path} was published with other content than {entry.origin}: a"
                    " published version never changes; import the list as a newer version"
                ) from None


def published_path(root: Path, name: str, version: str) -> Path | None:
    """The published file of `name` `version`, or None when the names are not well formed
    (the web server answers 404 without touching the disk)."""
    if not (_NAME_RE.fullmatch(name) and _VERSION_RE.fullmatch(version)):
        return None
    try:
        version_key(version)
    except InputError:
        return None
    return root.joinpath(*PUBLISHED_DIR, name, f"{version}.json")
