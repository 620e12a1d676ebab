"""The emulation's fault-injecting forward proxy (node/study/linkproxy.py), on loopback.

A plain asyncio echo server stands for the destination party; a raw socket, for the
sending party's HTTP client: `CONNECT`, then bytes. No node process, no TLS (the proxy
only moves bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from node.study import linkproxy
from node.study.linkproxy import Conditions, LinkProxy

TIMEOUT = 5.0
CLEAR = Conditions(latency_s=0.0, jitter_s=0.0, loss=0.0)


class EchoServer:
    """A TCP echo server on its own event loop in a thread; counts the connections it got."""

    def __init__(self) -> None:
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(TIMEOUT)
        self.port: int = self._server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._echo, host="127.0.0.1", port=0)

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # the proxy reset the connection: nothing to echo to
        except asyncio.CancelledError:
            pass  # closing (ended quietly: Python 3.11 logs a cancelled handler as an error)
        finally:
            writer.close()

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0)  # the closed transports' connection_lost callbacks

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self._loop.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def running_proxy(
    conditions: Callable[[str, str], Conditions], destinations: dict[int, str]
) -> Iterator[tuple[LinkProxy, int]]:
    """A proxy with one listener, for party "A"; its listener's port."""
    proxy = LinkProxy(conditions, destinations.get, seed=1)
    try:
        url = proxy.listen("A")
        assert url.startswith("http://127.0.0.1:")
        yield proxy, int(url.rsplit(":", 1)[1])
    finally:
        proxy.close()


def same_everywhere(conditions: Conditions) -> Callable[[str, str], Conditions]:
    return lambda sender, destination: conditions


def request(listener: int, head: bytes) -> tuple[socket.socket, bytes]:
    """A connection to the proxy that sent `head`; the proxy's answer's head."""
    sock = socket.create_connection(("127.0.0.1", listener), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(head)
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = sock.recv(4096)
        if not data:
            break
        answer += data
    return sock, answer


def status(listener: int, head: bytes) -> bytes:
    """The status line the proxy answers `head` with (the connection closed after)."""
    sock, answer = request(listener, head)
    sock.close()
    return answer.split(b"\r\n", 1)[0]


def connect(listener: int, port: int) -> socket.socket:
    """A tunnel through the proxy to the loopback `port`, established."""
    sock, answer = request(
        listener, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    if not answer.startswith(b"HTTP/1.1 200 "):
        sock.close()
        pytest.fail(f"CONNECT refused: {answer!r}")
    return sock


def receive(sock: socket.socket, size: int) -> bytes:
    received = b""
    while len(received) < size:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    return received


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_bytes_come_back_intact_after_both_directions_latency(echo: EchoServer) -> None:
    latency = 0.05
    conditions = Conditions(latency_s=latency, jitter_s=0.01, loss=0.0)
    with (
        running_proxy(same_everywhere(conditions), {echo.port: "B"}) as (_, listener),
        connect(listener, echo.port) as sock,
    ):
        payload = bytes(range(256)) * 40
        began = time.monotonic()
        sock.sendall(payload)
        back = receive(sock, len(payload))
        elapsed = time.monotonic() - began
    assert back == payload
    # There and back, each way at least the link's latency (a millisecond's slack for
    # the clocks' resolution). No upper bound: the machine may be slow.
    assert elapsed >= 2 * latency - 0.001


def test_many_small_chunks_keep_their_order_under_jitter(echo: EchoServer) -> None:
    # Jitter much larger than the latency: chunks drawn a long delay must still hold
    # back the ones after them.
    conditions = Conditions(latency_s=0.001, jitter_s=0.03, loss=0.0)
    chunks = [f"<{i:03d}>".encode() for i in range(120)]
    with (
        running_proxy(same_everywhere(conditions), {echo.port: "B"}) as (_, listener),
        connect(listener, echo.port) as sock,
    ):
        for chunk in chunks:
            sock.sendall(chunk)
            time.sleep(0.002)  # separate reads at the proxy, so separate draws
        back = receive(sock, sum(map(len, chunks)))
    assert back == b"".join(chunks)


def test_certain_loss_resets_the_connection_and_counts_it(echo: EchoServer) -> None:
    conditions = Conditions(latency_s=0.0, jitter_s=0.0, loss=1.0)
    with running_proxy(same_everywhere(conditions), {echo.port: "B"}) as (proxy, listener):
        with connect(listener, echo.port) as sock:
            sock.sendall(b"hello")
            try:
                answer = sock.recv(100)
            except ConnectionResetError:
                answer = b""
        assert answer == b""
        assert proxy.resets == {("A", "B"): 1}
        # Dropped before it was passed on: nothing reached B, nothing counted as sent.
        assert proxy.bytes_sent.get(("A", "B"), 0) == 0


def test_no_loss_never_resets(echo: EchoServer) -> None:
    with running_proxy(same_everywhere(CLEAR), {echo.port: "B"}) as (proxy, listener):
        for _ in range(5):
            with connect(listener, echo.port) as sock:
                for message in (b"ping", b"pong", b"again"):
                    sock.sendall(message)
                    assert receive(sock, len(message)) == message
        assert proxy.resets == {}


def test_a_port_that_is_no_destination_is_forbidden_and_not_connected(echo: EchoServer) -> None:
    stranger = EchoServer()
    try:
        with running_proxy(same_everywhere(CLEAR), {echo.port: "B"}) as (proxy, listener):
            head = f"CONNECT 127.0.0.1:{stranger.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            assert status(listener, head) == b"HTTP/1.1 403 Forbidden"
            assert proxy.bytes_sent == {} and proxy.refused == {}
        assert stranger.connections == 0
    finally:
        stranger.close()


@pytest.mark.parametrize(
    "head",
    [
        b"CONNECT 10.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT [::1]:{port} HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:70000 HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:+{port} HTTP/1.1\r\n\r\n",
        b"CONNECT 127.0.0.1:{port} HTTP/2\r\n\r\n",
        b"CONNECT 127.0.0.1:{port}\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"\r\n\r\n",
        b"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n",
        b"CONNECT \xc3\xa9\xff:{port} HTTP/1.1\r\n\r\n",
        b"CONNECT\t127.0.0.1:{port}\tHTTP/1.1\r\n\r\n",
    ],
    ids=[
        "other-host",
        "a-name",
        "ipv6",
        "no-port",
        "port-0",
        "port-too-big",
        "signed-port",
        "not-http1",
        "no-version",
        "get",
        "absolute-get",
        "garbage",
        "empty-head",
        "head-over-8k",
        "non-ascii",
        "tabs",
    ],
)
def test_a_bad_request_is_400_and_the_next_client_is_served(echo: EchoServer, head: bytes) -> None:
    with running_proxy(same_everywhere(CLEAR), {echo.port: "B"}) as (proxy, listener):
        bad = head.replace(b"{port}", str(echo.port).encode())
        assert status(listener, bad) == b"HTTP/1.1 400 Bad Request"
        assert echo.connections == 0
        with connect(listener, echo.port) as sock:
            sock.sendall(b"still here")
            assert receive(sock, 10) == b"still here"
        assert echo.connections == 1
        assert proxy.resets == {} and proxy.refused == {}


def test_a_client_that_hangs_up_or_stalls_does_not_hold_up_others(
    echo: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(linkproxy, "HEAD_TIMEOUT", 0.3)
    with running_proxy(same_everywhere(CLEAR), {echo.port: "B"}) as (_, listener):
        # Gone before its head is complete.
        with socket.create_connection(("127.0.0.1", listener), timeout=TIMEOUT) as gone:
            gone.sendall(b"CONNECT 127.0.0.1:")
        with socket.create_connection(("127.0.0.1", listener), timeout=TIMEOUT) as stalled:
            stalled.sendall(b"CONNECT 127.0.0.1:")
            # Served while the stalled client still holds its connection.
            with connect(listener, echo.port) as sock:
                sock.sendall(b"meanwhile")
                assert receive(sock, 9) == b"meanwhile"
            answer = receive(stalled, 1)  # the timeout's answer, then the close
            answer += receive(stalled, 1000)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_a_destination_with_nothing_listening_is_502_and_counted_refused(
    echo: EchoServer,
) -> None:
    down = unused_port()
    destinations = {echo.port: "B", down: "C"}
    with running_proxy(same_everywhere(CLEAR), destinations) as (proxy, listener):
        head = f"CONNECT 127.0.0.1:{down} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        assert status(listener, head) == b"HTTP/1.1 502 Bad Gateway"
        assert status(listener, head) == b"HTTP/1.1 502 Bad Gateway"
        assert proxy.refused == {("A", "C"): 2}
        assert proxy.resets == {}


def test_bytes_sent_counts_each_direction_of_each_pair(echo: EchoServer) -> None:
    other = EchoServer()
    try:
        destinations = {echo.port: "B", other.port: "C"}
        with running_proxy(same_everywhere(CLEAR), destinations) as (proxy, listener):
            with connect(listener, echo.port) as sock:
                for size in (1000, 70_000, 5):  # 70,000: more than one of the proxy's reads
                    sock.sendall(b"x" * size)
                    assert receive(sock, size) == b"x" * size
            with connect(listener, other.port) as sock:
                sock.sendall(b"y" * 333)
                assert receive(sock, 333) == b"y" * 333
            assert proxy.bytes_sent == {
                ("A", "B"): 71_005,
                ("B", "A"): 71_005,
                ("A", "C"): 333,
                ("C", "A"): 333,
            }
    finally:
        other.close()


def test_each_direction_takes_its_own_conditions(echo: EchoServer) -> None:
    # Certain loss from B back to A does not matter (loss is drawn when the sender
    # starts an exchange); certain loss from A to B resets at once.
    def conditions(sender: str, destination: str) -> Conditions:
        return Conditions(0.0, 0.0, 1.0) if sender == "B" else CLEAR

    with running_proxy(conditions, {echo.port: "B"}) as (proxy, listener):
        with connect(listener, echo.port) as sock:
            sock.sendall(b"hello")
            assert receive(sock, 5) == b"hello"
            sock.sendall(b"again")
            assert receive(sock, 5) == b"again"
        assert proxy.resets == {}


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_finished_tunnel_closes_its_sockets(echo: EchoServer) -> None:
    # Without the garbage collector's help: a long emulation makes thousands of tunnels.
    gc.collect()
    gc.disable()
    try:
        with running_proxy(same_everywhere(CLEAR), {echo.port: "B"}) as (_, listener):
            before = open_descriptors()
            for _ in range(20):
                with connect(listener, echo.port) as sock:
                    sock.sendall(b"x")
                    assert receive(sock, 1) == b"x"
                    sock.shutdown(socket.SHUT_WR)
                    assert receive(sock, 1) == b""  # the proxy passed the echo's end on
            deadline = time.monotonic() + TIMEOUT
            while open_descriptors() > before and time.monotonic() < deadline:
                time.sleep(0.02)
            assert open_descriptors() <= before
    finally:
        gc.enable()


def test_closing_the_proxy_ends_open_tunnels_quietly(
    echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    with running_proxy(same_everywhere(CLEAR), {echo.port: "B"}) as (_, listener):
        tunnel = connect(listener, echo.port)
        stalled = socket.create_connection(("127.0.0.1", listener), timeout=TIMEOUT)
        stalled.sendall(b"CONNECT 127.0.0.1:")
        tunnel.sendall(b"abc")
        assert receive(tunnel, 3) == b"abc"
    with tunnel, stalled:
        for sock in (tunnel, stalled):
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(100) == b""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
