"""One leader among the processes sharing a PostgreSQL store (node.leadership): the lock
is the leader's session, so when its process dies another takes over at its next check;
on SQLite the one process always leads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.leadership import HUB_LEADER_KEY, NODE_LEADER_KEY, Leadership
from tests.databases import postgres_database


@pytest_asyncio.fixture
async def pg() -> AsyncIterator[str]:
    async for url in postgres_database("ephyto_leader_test"):
        yield url


@pytest.mark.asyncio
async def test_on_sqlite_the_one_process_leads(tmp_path: Path) -> None:
    leadership = Leadership(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", NODE_LEADER_KEY, what="t")
    assert leadership.leading and not leadership.shared
    assert await leadership.check()
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    await leadership.only(job)()
    assert ran == [1]
    await leadership.close()


@pytest.mark.asyncio
async def test_one_of_two_leads_and_the_other_takes_over_when_it_closes(pg: str) -> None:
    first = Leadership(pg, NODE_LEADER_KEY, what="first")
    second = Leadership(pg, NODE_LEADER_KEY, what="second")
    hub = Leadership(pg, HUB_LEADER_KEY, what="hub")  # another kind: a lock of its own
    try:
        assert await first.check()
        assert not await second.check()
        assert await first.check()  # still ours
        assert await hub.check()
        ran: list[str] = []

        async def job() -> None:
            ran.append("ran")

        await second.only(job)()
        assert ran == []

        async def follow() -> None:
            ran.append("followed")

        await second.only(job, meanwhile=follow)()  # not leading: keeps up instead
        assert ran == ["followed"]
        ran.clear()
        await first.close()
        assert await second.check()
        await second.only(job)()
        assert ran == ["ran"]
    finally:
        for leadership in (first, second, hub):
            await leadership.close()


@pytest.mark.asyncio
async def test_the_lock_of_a_killed_process_is_taken_over(pg: str, tmp_path: Path) -> None:
    """A process holding the lock is SIGKILLed: PostgreSQL ends its session."""
    script = tmp_path / "leader.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, sys
            from node.leadership import Leadership, NODE_LEADER_KEY
            async def main():
                leadership = Leadership({pg!r}, NODE_LEADER_KEY, what="child")
                assert await leadership.check()
                print("leading", flush=True)
                await asyncio.sleep(600)
            asyncio.run(main())
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    other = Leadership(pg, NODE_LEADER_KEY, what="other")
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        assert line.strip() == "leading"
        assert not await other.check()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        for _ in range(100):  # PostgreSQL notices the closed socket at once, or nearly
            if await other.check():
                break
            await asyncio.sleep(0.1)
        assert other.leading
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        await other.close()


@pytest.mark.asyncio
async def test_an_unreachable_database_means_not_leading_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = Leadership(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", NODE_LEADER_KEY, what="nowhere"
    )
    assert not await nowhere.check()
    assert not nowhere.leading
    assert "cannot check leadership now" in caplog.text
    await nowhere.close()
