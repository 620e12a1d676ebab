"""The registry's HTTP face: the signed directory, newest and by version (Part F).

Bytes are served exactly as published and read from disk per request, so a publish is
served at once without a restart. The ETag is the quoted SHA-256 hex of those bytes,
which lets a node derive it from its cached copy. Authenticity comes from the
maintainers' signatures, not from this server, so plain HTTP behind TLS is fine.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Final

from aiohttp import web

from registry.codelists import published_path
from registry.state import CURRENT_FILE
from registry.timestamp import TIMESTAMP_FILE

CURRENT_PATH: Final = "/directory.json"
VERSION_PATH: Final = "/directory/{version}.json"
CODE_LIST_PATH: Final = "/codelists/{name}/{version}.json"
TIMESTAMP_PATH: Final = "/timestamp.json"
_VERSION = re.compile(r"[1-9][0-9]{0,18}")


def create_registry_app(state_dir: Path) -> web.Application:
    """An aiohttp app serving the registry at `state_dir` (which need not be published yet)."""
    app = web.Application()
    handlers = _Handlers(state_dir)
    app.router.add_get(CURRENT_PATH, handlers.current)
    app.router.add_get(VERSION_PATH, handlers.version)
    app.router.add_get(CODE_LIST_PATH, handlers.code_list)
    app.router.add_get(TIMESTAMP_PATH, handlers.timestamp)
    return app


def etag_of(data: bytes) -> str:
    """The strong ETag of a document: its SHA-256 in lowercase hex, quoted."""
    return f'"{hashlib.sha256(data).hexdigest()}"'


class _Handlers:
    def __init__(self, root: Path) -> None:
        self._root = root

    async def current(self, request: web.Request) -> web.StreamResponse:
        data = await asyncio.to_thread(_read, self._root / CURRENT_FILE)
        if data is None:
            raise web.HTTPNotFound(text="nothing is published yet\n")
        return _document(request, data, "no-cache")

    async def version(self, request: web.Request) -> web.StreamResponse:
        text = request.match_info["version"]
        if not _VERSION.fullmatch(text):
            raise web.HTTPNotFound(text="a version is a positive integer\n")
        data = await asyncio.to_thread(_read, self._root / "published" / f"{text}.json")
        if data is None:
            raise web.HTTPNotFound(text=f"version {text} was never published\n")
        # A published version never changes, so it may be cached for good.
        return _document(request, data, "public, max-age=31536000, immutable")

    async def timestamp(self, request: web.Request) -> web.StreamResponse:
        data = await asyncio.to_thread(_read, self._root / TIMESTAMP_FILE)
        if data is None:
            raise web.HTTPNotFound(text="no timestamp is signed (yet)\n")
        # Re-signed every hour or so: a cache must ask again, or nodes see it as frozen.
        return _document(request, data, "no-cache")

    async def code_list(self, request: web.Request) -> web.StreamResponse:
        name, version = request.match_info["name"], request.match_info["version"]
        path = published_path(self._root, name, version)  # None: not a name or version
        data = None if path is None else await asyncio.to_thread(_read, path)
        if data is None:
            raise web.HTTPNotFound(text=f"code list {name} version {version} is not published\n")
        # Never overwritten once published (registry/codelists.py): cacheable for good.
        return _document(request, data, "public, max-age=31536000, immutable")


def _document(request: web.Request, data: bytes, cache_control: str) -> web.StreamResponse:
    etag = etag_of(data)
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    # RFC 9110 13.1.2: weak comparison, a list of tags or "*".
    if if_none_match is None:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
