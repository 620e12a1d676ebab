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
    """`registry codelists import`: keep a newer list (published by the next publish).

    InputError (not a code list, not newer), nothing written; an audit entry otherwise.
    """
    with state.locked():  # the registry's one lock (registry/layout.py)
        kept = kept_lists(state.root)
        new = check_import(data, kept)
        folder = state.root / KEPT_DIR / new.name
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        path = folder / f"{new.version}.json"
        try:
            write_exclusive(path, data, 0o644)
        except FileExistsError:
            raise RegistryError(f"{path} appeared meanwhile: another import ran") from None
        result = KeptList(new, data, str(path))
        previous = kept.get(new.name)
        state.audit(
            "codelists-import",
            actor,
            now,
            {
                "name": new.name,
                "version": new.version,
                "previous": None if previous is None else previous.code_list.version,
                "codes": len(new.codes),
                "sha256": result.sha256,
                "length": len(data),
            },
            signer,
        )
    return result


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
