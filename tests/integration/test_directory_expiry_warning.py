"""A running node warns well before its directory expires, without repeating itself at every
refresh (issue 12): once a day inside the last 14 days, and at once as fewer than 7, 3 or 1
days are left. The registry's app on loopback serves a directory expiring in 6 days and a
fresh timestamp before each hourly refresh (tests/integration/test_directory_timestamp.py
has the fixtures). `registry serve`'s re-sign job warns the registry's operator the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.clock import FixedClock
from node.directory.timestamp import parse_timestamp
from registry.state import RegistryState
from registry.timestamp import TIMESTAMP_FILE, resign_forever
from tests.integration.test_directory_timestamp import (
    Registry,
    _bootstrapped,
    directory,
    registry,  # noqa: F401  (the fixture)
    timestamp,
)
from tests.timestamp_keys import NOW


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.message
        for r in caplog.records
        if r.levelno == logging.WARNING and "trusted directory version 1 expires" in r.message
    ]


@pytest.mark.asyncio
async def test_the_expiry_warning_is_daily_and_at_each_stage(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FixedClock(NOW)
    with caplog.at_level(logging.WARNING, logger="node.directory.refresh"):
        refresher = await _bootstrapped(registry, tmp_path, clock)  # v1 expires NOW + 6 days
        assert len(_warnings(caplog)) == 1 and "in 6 days" in _warnings(caplog)[0]

        async def refresh_after(*steps: float) -> None:
            for hours in steps:
                clock.advance(hours=hours)
                stamp = timestamp(
                    int(clock.now().timestamp()),
                    directory(1),
                    1,
                    expires=clock.now() + timedelta(days=1),
                )
                registry.serve(stamp=stamp)
                result = await refresher.refresh()
                assert result.outcome == "unchanged", result.message

        await refresh_after(*[1] * 23)
        assert len(_warnings(caplog)) == 1  # not at every refresh
        await refresh_after(1)  # a day on
        assert len(_warnings(caplog)) == 2 and "in 5 days" in _warnings(caplog)[-1]
        await refresh_after(*[1] * 23, 2.5)  # a day and 2.5 hours on: 3 days 22.5 hours left
        assert len(_warnings(caplog)) == 3
        # Three days left, 22.5 hours after the last warning: said at once, at the stage.
        await refresh_after(*[1] * 22)
        assert len(_warnings(caplog)) == 3
        await refresh_after(0.5)
        assert len(_warnings(caplog)) == 4
        assert "expires at 2026-03-08T00:00:00Z, in 3 days" in _warnings(caplog)[-1]
        # Meanwhile the node decides with its directory: the timestamp keeps it fresh.
        assert refresher.current(clock.now()).version == 1


@pytest.mark.asyncio
async def test_registry_serve_warns_its_operator_once_a_day_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    state = RegistryState.init(tmp_path / "r", maintainer="m", threshold=1, now=now, actor="t")
    state.publish(now, "t", code_lists={}, validity=timedelta(days=5))
    first = parse_timestamp((state.root / TIMESTAMP_FILE).read_bytes()).timestamp.version

    with caplog.at_level(logging.INFO, logger="registry.timestamp"):
        job = asyncio.create_task(
            resign_forever(state.root, timedelta(seconds=0.2), timedelta(minutes=1))
        )
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                stamp = parse_timestamp((state.root / TIMESTAMP_FILE).read_bytes()).timestamp
                if stamp.version >= first + 3:
                    break
            assert stamp.version >= first + 3  # re-signed three times at least
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1, warned
    assert "directory version 1 expires at" in warned[0] and "sign and publish" in warned[0]
