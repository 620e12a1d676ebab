"""Free loopback ports for the demo's services."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Final

from node.demo.errors import DemoError

# Where the kernel picks the local ports of outgoing connections (Linux default).
EPHEMERAL_PORTS_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_LOW: Final = 32768
LOWEST_PORT: Final = 10000


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port asked of the kernel with bind(0) comes from the ephemeral range, and is free
    only until the listener binds it: in between, an outgoing connection (a node's
    refresh every second) can take it as its local port, and the listener fails with
    "address already in use". Ports below that range are never handed out that way.
    """
    high = _ephemeral_low() - 1
    if high <= LOWEST_PORT:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    chooser = random.SystemRandom()
    for _ in range(200):
        port = chooser.randrange(LOWEST_PORT, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DemoError(f"no free port on 127.0.0.1 between {LOWEST_PORT} and {high}")


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_PORTS_FILE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return LINUX_EPHEMERAL_LOW


def free_port_pair() -> int:
    """A port whose successor is free too: a node listens on both (exchange, API)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise DemoError("no two adjacent free ports on 127.0.0.1")
