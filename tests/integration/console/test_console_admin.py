"""The admin's user pages over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.validate import Validator
from node.console import users
from tests.integration.console.console_app import Console, console

pytestmark = pytest.mark.asyncio
NEW = "a brand new password"


@pytest_asyncio.fixture
async def app(tmp_path: Path, validator: Validator) -> AsyncIterator[Console]:
    async with console(tmp_path, validator) as running:
        yield running


async def test_an_admin_adds_and_disables_users(app: Console) -> None:
    await app.login("admin")
    page = await (await app.client.get("/console/users")).text()
    assert "officer2" in page
    added = await app.post("/console/users", {"name": "clerk3", "role": "clerk",
                                              "password": NEW, "password2": NEW})  # fmt: skip
    assert added.status == 303
    assert any(u.name == "clerk3" for u in users.list_users(users.users_path(app.node_dir)))
    await app.post("/console/users/clerk3/disable", {})
    found = [u for u in users.list_users(users.users_path(app.node_dir)) if u.name == "clerk3"]
    assert found[0].disabled is not None
    await app.logout()
    assert (await app.login("clerk3", NEW)).status == 401


@pytest.mark.parametrize(
    "data",
    [{"name": "x", "role": "clerk", "password": "short", "password2": "short"},
     {"name": "clerk9", "role": "king", "password": NEW, "password2": NEW},
     {"name": "../etc", "role": "clerk", "password": NEW, "password2": NEW},
     {"name": "clerk", "role": "clerk", "password": NEW, "password2": NEW},
     {"name": "clerk9", "role": "clerk", "password": NEW, "password2": NEW + "x"}],
)  # fmt: skip
async def test_refusals_change_nothing(app: Console, data: dict[str, str]) -> None:
    before = users.list_users(users.users_path(app.node_dir))
    await app.login("admin")
    response = await app.post("/console/users", data)
    assert response.status == 303
    assert users.list_users(users.users_path(app.node_dir)) == before


async def test_only_an_admin(app: Console) -> None:
    await app.login("officer")
    assert (await app.client.get("/console/users")).status == 403
    response = await app.post("/console/users/clerk/disable", {})
    assert response.status == 403
    assert all(u.disabled is None for u in users.list_users(users.users_path(app.node_dir)))


async def test_the_last_admin_stays(app: Console) -> None:
    await app.login("admin")
    await app.post("/console/users/admin/disable", {})
    assert all(u.disabled is None for u in users.list_users(users.users_path(app.node_dir)))


async def test_settings_number_and_start_new_drafts(app: Console) -> None:
    await app.login("admin")
    values = {"number_prefix": "nvwa-pc-", "place_of_issue": "NLRTM", "statement": "1"}
    saved = await app.post("/console/settings", values)
    assert saved.status == 303
    await app.logout()
    await app.login("clerk")
    response = await app.post("/console/export/new", {})
    page = await (await app.client.get(response.headers["Location"])).text()
    assert "NVWA-PC-000001" in page
    assert 'value="NLRTM' in page


@pytest.mark.parametrize(
    "data", [{"number_prefix": "<script>"}, {"place_of_issue": "Rotterdam"},
             {"statement": "x" * 100}, {"number_prefix": "-X"}],
)  # fmt: skip
async def test_bad_settings_are_refused_beside_the_field(
    app: Console, data: dict[str, str]
) -> None:
    await app.login("admin")
    response = await app.post("/console/settings", data)
    assert response.status == 422
    assert "level-severe" in await response.text()
    assert await app.store.console_settings() == {}


async def test_only_an_admin_changes_settings(app: Console) -> None:
    await app.login("officer")
    assert (await app.client.get("/console/settings")).status == 403
    assert (await app.post("/console/settings", {"number_prefix": "X-"})).status == 403
    assert await app.store.console_settings() == {}
