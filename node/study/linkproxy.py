"""A fault-injecting forward proxy: the WAN between an emulation's parties, on loopback.

The kernel here has no `netem`, so `ephyto study emulate` imposes each link's conditions
in user space. Every party (each node, the hub) sends through a listener of its own,
named in its process's HTTPS_PROXY: the listener knows who sends, the `CONNECT` says to
whom, so each (sender, destination) pair gets its own one-way delay, jitter and loss.
TLS stays end to end: the proxy only moves bytes and never sees plaintext.

- **Delay and jitter.** Each chunk is passed on after the link's one-way latency plus a
  uniform share of its jitter; chunks keep their order (none overtakes the one before).
- **Loss** is a reset connection: when the sender starts a new exchange on a connection
  (its first bytes after the other side last spoke), the link drops the connection with
  its loss probability, as a lost packet that TCP gives up on would look to the node.
- **Outages** are not the proxy's: a party that is down has no process, so the proxy's
  connection to it is refused and it answers the `CONNECT` with 502.

Only the destinations it is given are reachable: it is no open relay. The bytes each
pair sends are counted (the emulation's bytes on the wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_REQUEST_HEAD: Final = 8192
HEAD_TIMEOUT: Final = 10.0
CHUNK: Final = 65536
# Closing cancels the connections' tasks, then any started meanwhile, this many times.
MAX_SHUTDOWN_SWEEPS: Final = 10


@dataclass(frozen=True, slots=True)
class Conditions:
    """One direction of a link."""

    latency_s: float
    jitter_s: float
    loss: float


# (sender, destination) -> the conditions from sender to destination.
LinkConditions = Callable[[str, str], Conditions]
# A loopback port -> the party listening there, or None: not a destination.
Destinations = Callable[[int], str | None]


class LinkProxy:
    """One listener per sending party, on one event loop in a thread of its own."""

    def __init__(self, conditions: LinkConditions, destinations: Destinations, seed: int) -> None:
        self._conditions = conditions
        self._destinations = destinations
        self._rng = random.Random(f"linkproxy:{seed}")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._lock = threading.Lock()
        self.bytes_sent: dict[tuple[str, str], int] = {}
        self.resets: dict[tuple[str, str], int] = {}
        self.refused: dict[tuple[str, str], int] = {}
        self._thread.start()

    def listen(self, party: str) -> str:
        """A listener for `party`'s outgoing connections; its proxy URL."""
        future = asyncio.run_coroutine_threadsafe(self._listen(party), self._loop)
        return future.result(timeout=10)

    def close(self) -> None:
        async def shut() -> None:
            for server in self._servers:
                server.close()
            # Cancel every connection's tasks and let them close their sockets before
            # the loop stops. Again while any are left: a connection accepted just
            # before the listeners closed starts its task after the first sweep, and a
            # task left pending is destroyed with the loop, mid-write.
            for _ in range(MAX_SHUTDOWN_SWEEPS):
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    break
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.sleep(0)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self, party: str) -> str:
        server = await asyncio.start_server(
            lambda r, w: self._serve(party, r, w), host="127.0.0.1", port=0
        )
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(
        self, sender: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._tunnel(sender, reader, writer)
        except asyncio.CancelledError:
            # The proxy is closing: the connection ends here, quietly (Python 3.11's
            # start_server logs a connection handler that ends cancelled as an error).
            writer.close()

    async def _tunnel(
        self, sender: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            target = await asyncio.wait_for(_connect_target(reader), HEAD_TIMEOUT)
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await _answer(writer, b"400 Bad Request")
            return
        except OSError:
            writer.close()
            return
        destination = self._destinations(target)
        if destination is None:
            await _answer(writer, b"403 Forbidden")
            return
        pair = (sender, destination)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            self._count(self.refused, pair, 1)
            await _answer(writer, b"502 Bad Gateway")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        link = _Link(self, pair, writer, up_writer)
        try:
            await asyncio.gather(
                link.pump(reader, up_writer, self._conditions(sender, destination), outward=True),
                link.pump(up_reader, writer, self._conditions(destination, sender), outward=False),
                return_exceptions=True,
            )
        finally:
            # Both sides are done (or reset): close the sockets now, not at garbage
            # collection, or a long emulation runs out of file descriptors.
            writer.close()
            up_writer.close()

    def _count(self, counts: dict[tuple[str, str], int], pair: tuple[str, str], n: int) -> None:
        with self._lock:
            counts[pair] = counts.get(pair, 0) + n

    def counts(self) -> dict[str, dict[tuple[str, str], int]]:
        """Copies of the counters (taken under the lock: the proxy's thread adds to them)."""
        with self._lock:
            return {
                "bytes_sent": dict(self.bytes_sent),
                "resets": dict(self.resets),
                "refused": dict(self.refused),
            }

    def count_bytes(self, pair: tuple[str, str], n: int) -> None:
        self._count(self.bytes_sent, pair, n)

    def count_reset(self, pair: tuple[str, str]) -> None:
        self._count(self.resets, pair, 1)

    def draw(self) -> float:
        return self._rng.random()


class _Link:
    """One proxied connection: both directions, and whose turn it is to speak."""

    def __init__(
        self,
        proxy: LinkProxy,
        pair: tuple[str, str],
        client: asyncio.StreamWriter,
        server: asyncio.StreamWriter,
    ) -> None:
        self._proxy = proxy
        self._pair = pair
        self._client = client
        self._server = server
        self._last_outward = True  # the client speaks first (its TLS ClientHello)
        self._reset = False

    async def pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conditions: Conditions,
        *,
        outward: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(queue, writer))
        due_last = 0.0
        first = True
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                starts_exchange = outward and (first or not self._last_outward)
                if starts_exchange and conditions.loss > 0 and self._proxy.draw() < conditions.loss:
                    self._proxy.count_reset(self._pair)
                    self._abort()
                    break
                first = False
                self._last_outward = outward
                pair = self._pair if outward else (self._pair[1], self._pair[0])
                self._proxy.count_bytes(pair, len(data))
                delay = conditions.latency_s + self._proxy.draw() * conditions.jitter_s
                due_last = max(due_last, loop.time() + delay)
                queue.put_nowait((due_last, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            queue.put_nowait(None)
            await sender

    async def _deliver(
        self, queue: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self._reset:
                    return
                writer.write(data)
                await writer.drain()
            if not self._reset and writer.can_write_eof():
                writer.write_eof()
        except OSError:
            self._abort()

    def _abort(self) -> None:
        """Reset both sides (RST, not FIN): a connection the network gave up on."""
        self._reset = True
        for writer in (self._client, self._server):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


async def _connect_target(reader: asyncio.StreamReader) -> int:
    """The loopback port a `CONNECT 127.0.0.1:PORT HTTP/1.1` request asks for.

    ValueError for anything else: another method, another host, a malformed head.
    """
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_REQUEST_HEAD:
        raise ValueError("request head too long")
    line = head.split(b"\r\n", 1)[0].decode("ascii")
    words = line.split(" ")
    if len(words) != 3 or words[0] != "CONNECT" or not words[2].startswith("HTTP/1."):
        raise ValueError(f"not a CONNECT request: {line[:80]!r}")
    host, _, port_text = words[1].rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port_text.isdigit():
        raise ValueError(f"not a loopback destination: {words[1][:80]!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"not a port: {port}")
    return port


async def _answer(writer: asyncio.StreamWriter, status: bytes) -> None:
    with contextlib.suppress(OSError):
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    writer.close()
