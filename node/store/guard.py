"""Whether a node's store is the one it had: a damaged or emptied store refused at start.

A node that finds its store empty cannot tell, from the store alone, a first start from a
store that was lost (a 0-byte file after a full disk, a removed file, a new database
behind the same URL): both hold nothing. Starting on a lost one silently forgets the
certificates sent and received, and the message ids that make replays harmless. So the
node keeps a note beside its node.toml, `store-state.json`, written once its store holds
its first message; a store found empty while the note says the node has exchanged is
refused, unless the operator says `--accept-empty-store`, which starts afresh and
removes the note (written again after the next first message).

The note is written at start when the store holds messages (a node upgraded to this
version, say), within a few seconds of the first message while the node runs, and at
stop. It is a file beside the store rather than a row in it, since what it guards
against is the store being gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from node.clock import Clock
from node.errors import EphytoError
from node.fileio import write_atomic
from node.store.database import STORE_GUIDE, StoreError
from node.store.store import Store

log = logging.getLogger(__name__)

STORE_STATE_FILE = "store-state.json"
STATE_VERSION = 1
# How often a running node that has not exchanged yet looks for its first message.
WATCH_EVERY = timedelta(seconds=5)


class EmptyStoreError(StoreError):
    """The store is empty but this node has exchanged before: restore it, or accept it."""


class StoreGuard:
    """The node's note of having exchanged, checked before the store is used."""

    def __init__(
        self, state_file: Path, clock: Clock, *, watch_every: timedelta = WATCH_EVERY
    ) -> None:
        self._file = state_file
        self._clock = clock
        self._every = watch_every.total_seconds()
        self._recorded = False

    async def check(self, store: Store, *, accept_empty: bool) -> None:
        """Before migrating: refuse a damaged store (StoreDamagedError) and an empty one
        of a node that has exchanged (EmptyStoreError, unless `accept_empty`)."""
        await store.check()
        state = self._read()
        if state is None:
            return
        if not await _is_empty(store):
            # A note that cannot be read is written again, now that the store says it.
            self._recorded = state.get("exchanged") is True
            if accept_empty:
                log.info("--accept-empty-store: the store is not empty; nothing to accept")
            return
        since = state.get("since", "an unknown time")
        if not accept_empty:
            raise EmptyStoreError(
                f"{store.name}: the store is empty, but this node has exchanged before"
                f" ({self._file}, since {since}): its history and replay protection are"
                f" gone. Restore the store from your latest backup ({STORE_GUIDE}), or"
                " start afresh on purpose with `ephyto node serve --accept-empty-store`"
            )
        log.warning(
            "%s: starting on an empty store as told (--accept-empty-store): the messages"
            " exchanged since %s are not in it, and a partner's old envelope would be"
            " taken as new",
            store.name,
            since,
        )
        self._file.unlink()
        self._recorded = False

    async def follow(self, stack: AsyncExitStack, store: Store) -> None:
        """After migrating: note now that the node has exchanged if its store holds a
        message; otherwise once it does (looked for every few seconds, and at stop)."""
        if self._recorded:
            return
        if await store.holds_messages():
            self._record(store)
            return
        watcher = asyncio.get_running_loop().create_task(self._watch(store))

        async def stop() -> None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._record_if_exchanged(store)

        stack.push_async_callback(stop)

    async def _watch(self, store: Store) -> None:
        while not self._recorded:
            await asyncio.sleep(self._every)
            await self._record_if_exchanged(store)

    async def _record_if_exchanged(self, store: Store) -> None:
        if self._recorded:
            return
        try:
            if await store.holds_messages():
                self._record(store)
        except (EphytoError, SQLAlchemyError, OSError) as e:
            # The note is looked for again later; a failing store says so elsewhere.
            log.warning("%s: cannot note that this node has exchanged: %s", self._file, e)

    def _record(self, store: Store) -> None:
        state = {
            "version": STATE_VERSION,
            "exchanged": True,
            "since": self._clock.now().isoformat(timespec="seconds"),
            "database": store.name,
        }
        write_atomic(self._file, (json.dumps(state, indent=2) + "\n").encode(), 0o600)
        self._recorded = True
        log.info("%s: this node has exchanged; an empty store will be refused", self._file)

    def _read(self) -> dict[str, object] | None:
        """The note; None if there is none. One that cannot be read counts as a note
        that the node has exchanged: the store decides, not a damaged file."""
        try:
            state = json.loads(self._file.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"{self._file}: cannot read: {e.strerror or e}") from None
        except ValueError:
            state = None
        if isinstance(state, dict) and state.get("exchanged") is True:
            return state
        log.warning("%s: not a note this node wrote; taken as 'has exchanged'", self._file)
        return {}


async def _is_empty(store: Store) -> bool:
    return store.empty_file or not await store.holds_messages()
