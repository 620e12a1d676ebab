"""The hub follows the registry's code lists as a node does, over real HTTP on loopback.

The registry is the real one (its CLI for the maintainer, its web app serving the
directory and the list files); the hub is the whole running service (`run_hub`) behind
real mutual TLS, asked over SOAP as an NPPO asks it. A maintainer imports a newer `units`
list and publishes: after the hub's next refresh, ValidatePhytoXML accepts a unit only the
new list has and GetUnitMeasures lists it, from the same hub, without a restart. A file
tampered with on the server is refused and the lists in use stay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from node.clock import SystemClock
from node.codelists.lists import bundled, version_key
from node.directory.codelist_fetch import CODELISTS_DIR
from node.hub.config import load_hub_config
from node.hub.service import HubListening, run_hub
from node.hub.web import SERVICE_PATH
from node.ippc import (
    Envelope,
    GetUnitMeasures,
    HubFault,
    ValidateAndDeliverEnvelope,
    ValidatePhytoXML,
    ValidationLevel,
)
from registry.web import create_registry_app
from tests.ephyto_cli import ok
from tests.integration.hub_world import SoapClient, World, make_world

WAIT = 30.0  # seconds: a bound on each wait, not a timing under test
REFRESH = timedelta(seconds=0.3)
OLD_UNIT = "KGM"  # in the sample ePhyto, and in the bundled list
NEW_UNIT = "XKG"  # in no bundled list: the newer lists below add it
NEWEST_UNIT = "XKH"  # only in the newest list


def _newer(step: int) -> str:
    """A version `step` ahead of the bundled units list's, whatever form that takes."""
    return f"{bundled().get('units').version}.{step}"


def _units(version: str, *extra: str) -> bytes:
    """A `units` list `version`, the bundled codes and `extra` in it."""
    current = bundled().get("units")
    assert version_key(version) > version_key(current.version)
    assert not set(extra) & set(current.codes)
    doc = {
        "list": "units",
        "version": version,
        "source": "test: the bundled list and made-up units",
        "codes": dict(current.codes) | {code: f"test unit {code}" for code in extra},
    }
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()


def _import(world: World, data: bytes, folder: Path) -> None:
    """The maintainer's `registry codelists import` (published by the next publish)."""
    path = folder / f"units-{json.loads(data)['version']}.json"
    path.write_bytes(data)
    ok("registry", "codelists", "import", path, "--dir", world.registry.root)


def _publish(world: World) -> None:
    ok("registry", "publish", "--dir", world.registry.root)


def _with_unit(phyto_xml: bytes, unit: str) -> str:
    """The sample ePhyto, its weights in `unit`."""
    return phyto_xml.decode().replace(f'unitCode="{OLD_UNIT}"', f'unitCode="{unit}"')


@asynccontextmanager
async def _running_hub(world: World, hub_dir: Path) -> AsyncIterator[SoapClient]:
    """The registry's web app and `run_hub` (its home `hub_dir`) on loopback; NL's client."""
    registry = web.AppRunner(create_registry_app(world.registry.root))
    await registry.setup()
    await web.TCPSite(registry, "127.0.0.1", 0).start()
    config = dataclasses.replace(
        load_hub_config(world.hub.directory / "hub.toml"),
        directory=hub_dir,  # cache, database and code lists here, keys from the hub's home
        database_url=f"sqlite+aiosqlite:///{hub_dir / 'hub.db'}",
        listen_port=0,
        tls_key=str(world.hub.key_path),
        tls_certificate=str(world.hub.cert_path),
        registry_url=f"http://127.0.0.1:{registry.addresses[0][1]}/directory.json",
        registry_anchor="maintainers.json",
    )
    (hub_dir / "maintainers.json").write_bytes(
        (world.registry.root / "maintainers" / "maintainers.json").read_bytes()
    )
    stop, ready = asyncio.Event(), list[HubListening]()
    hub = asyncio.create_task(
        run_hub(config, clock=SystemClock(), stop=stop, ready=ready.append,
                refresh_interval=REFRESH)
    )  # fmt: skip
    try:
        for _ in range(400):
            if ready or hub.done():
                break
            await asyncio.sleep(0.05)
        assert ready, hub.result()
        yield SoapClient(ready[0].url + SERVICE_PATH, world.hub, world.nppos["NL"])
        assert not hub.done()  # the same hub all along: never restarted
    finally:
        stop.set()
        await asyncio.wait_for(hub, timeout=20)
        await registry.cleanup()


async def _unit_findings(nl: SoapClient, phyto_xml: bytes, unit: str) -> list[str]:
    """The hub's ValidatePhytoXML findings on the sample ePhyto weighed in `unit`."""
    results = (await nl.call(ValidatePhytoXML(_with_unit(phyto_xml, unit)))).results
    assert all(r.level is ValidationLevel.SEVERE for r in results)
    return [r.msg for r in results]


async def _refused(nl: SoapClient, phyto_xml: bytes, unit: str) -> bool:
    """Whether ValidatePhytoXML refuses the sample weighed in `unit`, and only for it."""
    findings = await _unit_findings(nl, phyto_xml, unit)
    return bool(findings) and all(f"unknown unit code '{unit}'" in m for m in findings)


async def _units_listed(nl: SoapClient) -> set[str]:
    return {u.code for u in (await nl.call(GetUnitMeasures())).entries}


async def _until_accepted(nl: SoapClient, phyto_xml: bytes, unit: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while await _unit_findings(nl, phyto_xml, unit):
        assert asyncio.get_running_loop().time() < deadline, f"{unit} never accepted"
        await asyncio.sleep(0.1)


def _envelope(content: str) -> Envelope:
    return Envelope(
        from_="NL",
        to="KE",
        certificate_type=851,
        certificate_status=70,
        nppo_certificate_number="NL-UNITS-0001",
        content=content,
    )


@pytest.mark.asyncio
async def test_a_running_hub_takes_a_newer_list_without_a_restart(
    tmp_path: Path, phyto_xml: bytes
) -> None:
    world = await asyncio.to_thread(make_world, tmp_path / "world")
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    async with _running_hub(world, hub_dir) as nl:
        # The bundled list has no XKG: the ePhyto is refused, the look-up does not list it.
        assert await _refused(nl, phyto_xml, NEW_UNIT)
        assert OLD_UNIT in await _units_listed(nl) and NEW_UNIT not in await _units_listed(nl)
        with pytest.raises(HubFault, match="not valid"):
            await nl.call(ValidateAndDeliverEnvelope(_envelope(_with_unit(phyto_xml, NEW_UNIT))))

        new = _units(_newer(1), NEW_UNIT)
        await asyncio.to_thread(_import, world, new, tmp_path)
        await asyncio.to_thread(_publish, world)

        # After the hub's refresh: the same hub validates and answers with the new list.
        await _until_accepted(nl, phyto_xml, NEW_UNIT)
        assert NEW_UNIT in await _units_listed(nl)
        measures = (await nl.call(GetUnitMeasures())).entries
        assert [u.name for u in measures if u.code == NEW_UNIT] == [f"test unit {NEW_UNIT}"]
        content = _with_unit(phyto_xml, NEW_UNIT)
        header = (await nl.call(ValidateAndDeliverEnvelope(_envelope(content)))).result
        assert header.hub_tracking_info == "PendingDelivery"
        assert (hub_dir / CODELISTS_DIR / "units.json").read_bytes() == new
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.asyncio
async def test_a_tampered_file_is_refused_and_the_lists_in_use_stay(
    tmp_path: Path, phyto_xml: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    world = await asyncio.to_thread(make_world, tmp_path / "world")
    newer, newest = _units(_newer(1), NEW_UNIT), _units(_newer(2), NEW_UNIT, NEWEST_UNIT)
    await asyncio.to_thread(_import, world, newer, tmp_path)
    await asyncio.to_thread(_import, world, newest, tmp_path)
    await asyncio.to_thread(_publish, world)
    served = world.registry.root / "published" / "codelists" / "units" / f"{_newer(2)}.json"
    assert served.read_bytes() == newest
    # Tampered on the server: the same length, another label.
    served.write_bytes(newest.replace(b"test unit XKH", b"test unit XKX"))
    # The hub fetched `newer` before it was stopped: it loads it at start, over the bundled.
    hub_dir = tmp_path / "hub"
    (hub_dir / CODELISTS_DIR).mkdir(parents=True)
    (hub_dir / CODELISTS_DIR / "units.json").write_bytes(newer)

    with caplog.at_level(logging.WARNING, logger="node.directory.codelist_fetch"):
        async with _running_hub(world, hub_dir) as nl:
            # Refused at start (and at every refresh since): the lists in use stay.
            assert f"units {_newer(2)} not installed" in caplog.text
            assert "SHA-256" in caplog.text
            assert await _unit_findings(nl, phyto_xml, NEW_UNIT) == []
            assert await _refused(nl, phyto_xml, NEWEST_UNIT)
            listed = await _units_listed(nl)
            assert NEW_UNIT in listed and NEWEST_UNIT not in listed
            assert (hub_dir / CODELISTS_DIR / "units.json").read_bytes() == newer

            # The file as published again: the next refresh installs it, still no restart.
            served.write_bytes(newest)
            await _until_accepted(nl, phyto_xml, NEWEST_UNIT)
            assert NEWEST_UNIT in await _units_listed(nl)
            assert (hub_dir / CODELISTS_DIR / "units.json").read_bytes() == newest
