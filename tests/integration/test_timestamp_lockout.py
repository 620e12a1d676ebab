"""A timestamp is trusted only with the directory it names (issue 12).

A timestamp signed by the registry's online key but naming a directory the node refuses
(bad signatures, bytes other than those it names, or one it cannot fetch) must change
nothing: before issue 12 it was trusted and persisted anyway, so one with a version far
ahead of the clock (a misused online key, a registry bug) made the node refuse the
registry's real timestamps as rollbacks until the clock caught up. A timestamp naming the
directory the node already holds is trusted and persisted, as before: that is freshness.
A node restarting on such a timestamp an earlier release persisted drops it.

Against the registry's app on loopback, each test playing the registry or an attacker
(tests/integration/test_directory_timestamp.py has the fixtures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from node.clock import FixedClock
from node.directory import MixAndMatch, ThresholdNotMet, sign_directory
from tests.integration.test_directory_timestamp import (
    Registry,
    _bootstrapped,
    directory,
    node,
    registry,  # noqa: F401  (the fixture)
    timestamp,
)
from tests.timestamp_keys import INTRUDER, NOW

# A version no real re-sign reaches for centuries (the registry counts Unix seconds).
FAR_AHEAD = 2**62


def _forged_signatures(version: int) -> bytes:
    """Version `version` as the registry would publish it, signed by a key that is not a
    maintainer's: a node refuses it (ThresholdNotMet)."""
    plain = json.loads(directory(version))["signed"]
    return sign_directory(plain, [INTRUDER])


@pytest.mark.asyncio
@pytest.mark.parametrize("refused", ["bad signatures", "hash mismatch"])
async def test_a_far_ahead_timestamp_naming_a_refused_directory_locks_nothing_out(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
    refused: str,
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    stamp_before = refresher.timestamp_path.read_bytes()
    v2 = directory(2)
    if refused == "bad signatures":
        bad = _forged_signatures(2)
        registry.serve(bad, timestamp(FAR_AHEAD, bad, 2))
        expected: type[Exception] = ThresholdNotMet
    else:  # the timestamp names v2's bytes; another validly signed version 2 is served
        registry.serve(directory(2, name="NL"), timestamp(FAR_AHEAD, v2, 2))
        expected = MixAndMatch

    result = await refresher.refresh()

    assert result.outcome == "refused" and isinstance(result.error, expected), result.message
    # Neither trusted nor persisted: the node is where it was.
    assert refresher.timestamp.current is not None
    assert refresher.timestamp.current.version == 10
    assert refresher.timestamp_path.read_bytes() == stamp_before
    assert refresher.current(clock.now()).version == 1

    # The registry's next real timestamp (a version far below) is accepted, with its
    # directory, by this node and by one restarted from its files.
    registry.serve(v2, timestamp(11, v2, 2))
    restarted = node(registry, tmp_path, clock)
    for each in (refresher, restarted):
        result = await each.refresh()
        assert (result.outcome, result.version) == ("updated", 2), result.message
        assert each.timestamp.current is not None and each.timestamp.current.version == 11
    assert refresher.timestamp_path.read_bytes() == timestamp(11, v2, 2)


@pytest.mark.asyncio
async def test_a_timestamp_whose_directory_cannot_be_fetched_is_not_kept(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    v2 = directory(2)
    registry.serve(v2, timestamp(12, v2, 2))

    async def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503)

    registry.override["/directory.json"] = down
    result = await refresher.refresh()
    assert result.outcome == "unreachable", result.message
    assert refresher.timestamp.current is not None
    assert refresher.timestamp.current.version == 10
    assert refresher.timestamp_path.read_bytes() == timestamp(10, directory(1), 1)

    del registry.override["/directory.json"]
    result = await refresher.refresh()
    assert (result.outcome, result.version) == ("updated", 2), result.message
    assert refresher.timestamp_path.read_bytes() == timestamp(12, v2, 2)


@pytest.mark.asyncio
async def test_a_timestamp_naming_the_directory_held_is_trusted_and_persisted(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    v1 = directory(1)
    registry.serve(stamp=timestamp(11, v1, 1))

    result = await refresher.refresh()

    assert result.outcome == "unchanged", result.message
    assert "timestamp version 11" in result.message
    assert refresher.timestamp_path.read_bytes() == timestamp(11, v1, 1)
    assert registry.paths == ["/timestamp.json"]  # the directory held is not fetched again
    restarted = node(registry, tmp_path, clock)
    assert restarted.timestamp.current is not None
    assert restarted.timestamp.current.version == 11


@pytest.mark.asyncio
async def test_a_far_ahead_timestamp_an_earlier_release_persisted_is_dropped_at_start(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    clock = FixedClock(NOW)
    refresher = await _bootstrapped(registry, tmp_path, clock)
    bad = _forged_signatures(2)
    # What the bug left on disk: the online key's far-ahead timestamp naming a refused v2.
    refresher.timestamp_path.write_bytes(timestamp(FAR_AHEAD, bad, 2))

    restarted = node(registry, tmp_path, clock)

    assert restarted.timestamp.current is None  # names a directory never trusted: dropped
    v2 = directory(2)
    registry.serve(v2, timestamp(11, v2, 2))
    result = await restarted.refresh()
    assert (result.outcome, result.version) == ("updated", 2), result.message
    assert restarted.timestamp_path.read_bytes() == timestamp(11, v2, 2)
