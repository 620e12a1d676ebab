"""Code lists from the registry: which to fetch, how to check one, how to install it.

The signed directory names each list's version (`code_lists`) and its file's SHA-256 and
length (`code_list_files`); the registry, or any mirror, serves the file at
`<base>/codelists/<name>/<version>.json`, base being the directory URL without its last
segment (docs/protocol.md, Part F). The signature covers the digest, so the file needs
none: a file whose length or digest differs is refused, whoever served it.

Pure core: `lists_to_fetch`, `code_list_url`, `check_fetched`. Shell: `CodeListUpdater`
(HTTP through an injected session factory, as node/directory/refresh.py, so this package
imports no network library; files written atomically; the running validator told).
A refused file changes nothing: the lists in use stay, and the next refresh tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from node.codelists.directory import load_directory
from node.codelists.lists import MAX_BYTES, CodeList, CodeLists, bundled, version_key
from node.directory.model import Directory
from node.directory.refresh import SessionFactory, fetch
from node.errors import EphytoError, InputError
from node.fileio import write_atomic

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(seconds=30)
# In the node directory: the lists fetched from the registry, loaded over the bundled ones.
CODELISTS_DIR = "codelists"


class CodeListRefused(InputError):
    """A fetched code list file is not the one the signed directory names; not installed."""


@dataclass(frozen=True, slots=True)
class WantedList:
    """A code list version the directory names that is newer than the installed one."""

    name: str
    version: str
    sha256: str
    length: int
    installed: str | None  # the version in use, None when the node has no such list


def lists_to_fetch(directory: Directory, installed: CodeLists) -> list[WantedList]:
    """The lists to fetch: named in `code_lists` with a file digest, and strictly newer than
    the installed version (or not installed at all). Pure.

    A list without a digest (a registry older than `code_list_files`) cannot be checked,
    so it is not fetched; an older or equal version never replaces what is installed.
    """
    files = {f.name: f for f in directory.code_list_files}
    wanted = []
    for name, version in directory.code_lists:
        file = files.get(name)
        if file is None:
            continue
        current = installed.lists.get(name)
        if current is not None and version_key(version) <= version_key(current.version):
            continue
        wanted.append(
            WantedList(
                name,
                version,
                file.sha256,
                file.length,
                None if current is None else current.version,
            )
        )
    return wanted


def code_list_url(directory_url: str, name: str, version: str) -> str:
    """Where `name` `version` is served, next to the directory (so a mirror serves both)."""
    base = directory_url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[0]
    return f"{base}/codelists/{name}/{version}.json"


def check_fetched(wanted: WantedList, data: bytes) -> CodeList:
    """The list in `data` if it is exactly the file the directory names; CodeListRefused."""
    what = f"code list {wanted.name} version {wanted.version}"
    if len(data) != wanted.length:
        raise CodeListRefused(
            f"{what}: {len(data)} bytes, the signed directory says {wanted.length}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != wanted.sha256:
        raise CodeListRefused(
            f"{what}: SHA-256 {digest} is not the {wanted.sha256} the signed directory"
            " names (tampered, or a mirror out of step)"
        )
    try:
        code_list = CodeList.from_json_bytes(data)
    except InputError as exc:
        raise CodeListRefused(f"{what}: {exc}") from None
    if (code_list.name, code_list.version) != (wanted.name, wanted.version):
        raise CodeListRefused(
            f"{what}: the file holds {code_list.name} version {code_list.version}"
        )
    return code_list


def installed_lists(folder: Path) -> CodeLists:
    """The bundled lists updated with the newer ones in `folder` (absent: none); ConfigError
    naming a malformed file there."""
    return load_directory(folder, bundled()) if folder.is_dir() else bundled()


class CodeListUpdater:
    """Fetches the newer lists a trusted directory names into `folder`, and hands the
    updated set to `install` (the running validator's `use_codelists`).

    `folder` holds one `<name>.json` per list, the node's override directory, which the
    node loads over its bundled lists at start (node.codelists.directory.load_directory).
    """

    def __init__(
        self,
        directory_url: str,
        folder: Path,
        lists: CodeLists,
        session_factory: SessionFactory,
        install: Callable[[CodeLists], None],
        *,
        timeout: timedelta = DEFAULT_TIMEOUT,
    ) -> None:
        self.directory_url = directory_url
        self.folder = folder
        self.lists = lists
        self._session_factory = session_factory
        self._install = install
        self._timeout = timeout.total_seconds()
        self._lock = asyncio.Lock()

    async def update(self, directory: Directory | None) -> list[str]:
        """Fetch, check and install every newer list `directory` names; the names installed.

        Never raises for the registry's, the network's or the file's faults: each refusal
        is logged (a WARNING naming the list and why) and the list in use stays.
        """
        if directory is None:
            return []
        async with self._lock:  # a scheduled and a start-up run must not interleave
            done = []
            for wanted in lists_to_fetch(directory, self.lists):
                if await self._one(wanted):
                    done.append(wanted.name)
            if done:
                self._install(self.lists)
            return done

    async def _one(self, wanted: WantedList) -> bool:
        url = code_list_url(self.directory_url, wanted.name, wanted.version)
        try:
            data = await self._fetch(url, min(wanted.length, MAX_BYTES))
            code_list = check_fetched(wanted, data)
            lists = self.lists.updated_with(code_list)
            await asyncio.to_thread(_save, self.folder / f"{wanted.name}.json", data)
        except EphytoError as exc:
            log.warning("code list %s %s not installed: %s", wanted.name, wanted.version, exc)
            return False
        except OSError as exc:
            log.error(
                "code list %s %s not installed: cannot write %s: %s",
                wanted.name, wanted.version, self.folder, exc,
            )  # fmt: skip
            return False
        self.lists = lists
        log.info(
            "code list %s updated from version %s to %s (from %s)",
            wanted.name, wanted.installed or "none", wanted.version, url,
        )  # fmt: skip
        return True

    async def _fetch(self, url: str, cap: int) -> bytes:
        """The body of `url`, at most `cap` bytes; CodeListRefused or RegistryUnreachableError."""
        _, data = await fetch(
            self._session_factory,
            url,
            timeout=self._timeout,
            limit=cap,
            too_large=lambda size, at_least: CodeListRefused(
                _too_large(url, size, cap, at_least=at_least)
            ),
        )
        return data


def _too_large(url: str, size: int, cap: int, *, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return f"{url} is {more}{size} bytes, more than the {cap} the signed directory names"


def _save(path: Path, data: bytes) -> None:
    # The node loads this folder at start: a crash must leave the old file or the new one.
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_atomic(path, data, 0o644)
