"""Code lists from the registry to the nodes, over real HTTP on loopback.

The registry is the real one (`ephyto registry ...` and its web app); the node side is the
real DirectoryRefresher and CodeListUpdater, and in the first test the whole running node
(`run_node`): a maintainer imports a newer `countries` list and publishes, and the node's
validator accepts a code only the new list has, without a restart. A file tampered with on
the server, or longer than the signed directory says, is refused and the old list stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Country
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes
from node.clock import SystemClock
from node.codelists.lists import bundled
from node.demo.network import free_port
from node.demo.scenario import routed
from node.directory import MaintainerSet
from node.directory.codelist_fetch import CODELISTS_DIR, CodeListUpdater, installed_lists
from node.directory.refresh import DirectoryRefresher, load
from node.identity.config import load_config
from node.service import Listening, run_node
from registry.web import create_registry_app
from tests.ephyto_cli import ok

WAIT = 30.0  # seconds: a bound on each wait, not a timing under test
NEW_CODE = "XK"  # Kosovo: a user-assigned code, not in the bundled ISO 3166 list


def _newer_countries(path: Path) -> bytes:
    """A `countries` list one version newer than the bundled one, with NEW_CODE in it."""
    current = bundled().get("countries")
    assert NEW_CODE not in current
    doc = {
        "list": "countries",
        "version": f"{int(current.version.split('.')[0]) + 1}",
        "source": "test: the bundled list and Kosovo",
        "codes": dict(current.codes) | {NEW_CODE: "Kosovo"},
    }
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    path.write_bytes(data)
    return data


def _registry(root: Path) -> Path:
    registry = root / "registry"
    ok("registry", "init", "--dir", registry)
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", root / "nl",
        "--endpoint", f"https://127.0.0.1:{free_port()}")  # fmt: skip
    ok("registry", "add", root / "nl" / "enrolment-request.json", "--dir", registry)
    ok("node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", root / "ke",
        "--endpoint", f"https://127.0.0.1:{free_port()}")  # fmt: skip
    ok("registry", "add", root / "ke" / "enrolment-request.json", "--dir", registry)
    ok("registry", "publish", "--dir", registry, "--expires-in", "1d")
    return registry


@asynccontextmanager
async def _serving(registry: Path) -> AsyncIterator[str]:
    """The registry's web app on loopback; the directory URL."""
    runner = web.AppRunner(create_registry_app(registry))
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}/directory.json"
    finally:
        await runner.cleanup()


def _anchor(registry: Path) -> MaintainerSet:
    return MaintainerSet.from_plain(
        json.loads((registry / "maintainers" / "maintainers.json").read_bytes())
    )


def _post(api_url: str, token: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"{api_url}/api/v1/certificates",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.asyncio
async def test_a_running_node_takes_a_newer_list_without_a_restart(tmp_path: Path) -> None:
    registry = await asyncio.to_thread(_registry, tmp_path)
    node_dir = tmp_path / "nl"
    # Goods grown in XK, sent to a partner in the directory: a certificate to a country
    # outside it is refused at the door whatever the code lists say.
    sent = routed(
        certificate_from_json(sample_model_bytes("phyto")),
        exporter="NL", importer="KE", number="NL-CODES-0001",
    )  # fmt: skip
    items = sent.consignment.items
    grown_in_kosovo = replace(items[0], origin_countries=(Country(NEW_CODE),))
    kosovo_goods = to_xml_bytes(
        replace(sent, consignment=replace(sent.consignment, items=(grown_in_kosovo, *items[1:])))
    )
    async with _serving(registry) as url:
        await asyncio.to_thread(
            ok, "node", "configure", "--dir", node_dir, "--registry", url,
            "--anchor", registry / "maintainers" / "maintainers.json",
            "--api-port", str(free_port()),
        )  # fmt: skip
        config = load_config(node_dir / "node.toml")
        stop, ready = asyncio.Event(), list[Listening]()
        node = asyncio.create_task(
            run_node(
                config, clock=SystemClock(), stop=stop, ready=ready.append,
                refresh_interval=timedelta(seconds=0.3),
            )
        )  # fmt: skip
        try:
            for _ in range(400):
                if ready or node.done():
                    break
                await asyncio.sleep(0.05)
            assert ready, node.result()
            api = ready[0].api_url
            # The bundled list has no XK: the certificate is refused as invalid.
            assert await asyncio.to_thread(_post, api, config.api_token, kosovo_goods) == 422

            new = _newer_countries(tmp_path / "countries.json")
            await asyncio.to_thread(
                ok, "registry", "codelists", "import", tmp_path / "countries.json",
                "--dir", registry,
            )  # fmt: skip
            await asyncio.to_thread(ok, "registry", "publish", "--dir", registry)

            fetched = node_dir / CODELISTS_DIR / "countries.json"
            deadline = asyncio.get_running_loop().time() + WAIT
            while not fetched.exists():
                assert asyncio.get_running_loop().time() < deadline, "never fetched"
                assert not node.done(), node.result()
                await asyncio.sleep(0.1)
            assert fetched.read_bytes() == new
            # The same running node, its validator told: XK is a country now.
            assert await asyncio.to_thread(_post, api, config.api_token, kosovo_goods) == 202
            assert not node.done()
        finally:
            stop.set()
            await asyncio.wait_for(node, timeout=20)
    # And a restart loads the fetched list from the node directory.
    assert NEW_CODE in installed_lists(node_dir / CODELISTS_DIR).get("countries")


@pytest.mark.asyncio
async def test_a_tampered_or_oversize_file_is_refused_and_the_old_list_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = await asyncio.to_thread(_registry, tmp_path)
    new = _newer_countries(tmp_path / "countries.json")
    await asyncio.to_thread(
        ok, "registry", "codelists", "import", tmp_path / "countries.json", "--dir", registry
    )
    await asyncio.to_thread(ok, "registry", "publish", "--dir", registry)
    version = json.loads(new)["version"]
    served = registry / "published" / "codelists" / "countries" / f"{version}.json"
    assert served.read_bytes() == new

    folder = tmp_path / "node-codelists"
    validator = Validator.default()
    old = validator.codelists
    async with _serving(registry) as url:
        cache = tmp_path / "directory.json"
        refresher = DirectoryRefresher(
            url, load(cache, _anchor(registry)), cache, SystemClock(), aiohttp.ClientSession
        )
        assert (await refresher.refresh()).outcome == "updated"
        directory = refresher.trusted.current
        updater = CodeListUpdater(url, folder, old, aiohttp.ClientSession, validator.use_codelists)

        # Tampered: the same length, other content (a code relabelled).
        served.write_bytes(new.replace(b'"Kosovo"', b'"Kosova"'))
        with caplog.at_level(logging.WARNING, logger="node.directory.codelist_fetch"):
            assert await updater.update(directory) == []
        assert "SHA-256" in caplog.text and "not installed" in caplog.text
        assert validator.codelists is old and not folder.exists()

        # Longer than the signed directory says: not even read to the end.
        caplog.clear()
        served.write_bytes(new + b" " * 4096)
        with caplog.at_level(logging.WARNING, logger="node.directory.codelist_fetch"):
            assert await updater.update(directory) == []
        assert "more than the" in caplog.text
        assert validator.codelists is old and not folder.exists()

        # The file as published: installed, and the validator told.
        served.write_bytes(new)
        assert await updater.update(directory) == ["countries"]
        assert (folder / "countries.json").read_bytes() == new
        assert validator.codelists.get("countries").version == version
        assert NEW_CODE in validator.codelists.get("countries")
        assert await updater.update(directory) == []  # nothing newer: nothing fetched


@pytest.mark.asyncio
async def test_the_code_list_path_is_strict_and_cacheable(tmp_path: Path) -> None:
    registry = await asyncio.to_thread(_registry, tmp_path)
    version = bundled().get("countries").version
    async with _serving(registry) as url, aiohttp.ClientSession() as session:
        base = url.rsplit("/", 1)[0]
        async with session.get(f"{base}/codelists/countries/{version}.json") as response:
            assert response.status == 200
            body = await response.read()
            etag = response.headers["ETag"]
            assert "immutable" in response.headers["Cache-Control"]
        assert body == (registry / "published/codelists/countries" / f"{version}.json").read_bytes()
        async with session.get(
            f"{base}/codelists/countries/{version}.json", headers={"If-None-Match": etag}
        ) as response:
            assert response.status == 304
        for bad in ("countries/1999", "Countries/2024", "countries/2024.", "..%2F../1",
                    "countries/%2E%2E", "countries/2024-x"):  # fmt: skip
            async with session.get(f"{base}/codelists/{bad}.json") as response:
                assert response.status == 404, bad
