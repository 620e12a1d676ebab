"""The observability settings shared by node.toml, hub.toml and the registry's options
(pure): where the metrics and health listener listens, and the log line format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from node.errors import InputError

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A TCP listen address; port 0 lets the system choose (tests, the demo)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`HOST:PORT` (an IPv6 host in brackets) as a ListenAddress; InputError otherwise."""
    if not isinstance(text, str) or len(text) > 300:
        raise InputError("expected HOST:PORT, such as 127.0.0.1:9464")
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit():
        raise InputError(f"{text!r} is not HOST:PORT, such as 127.0.0.1:9464")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise InputError(f"{text!r}: an IPv6 host goes in brackets, [::1]:9464")
        host = host[1:-1]
    elif ":" in host:
        raise InputError(f"{text!r}: an IPv6 host goes in brackets, [::1]:9464")
    if any(c.isspace() or c in "/?#@" for c in host) or not host.isprintable():
        raise InputError(f"{text!r}: {host!r} is not a host name or address")
    port = int(port_text)
    if port > 65535:
        raise InputError(f"{text!r}: port {port} is out of range (0-65535)")
    return ListenAddress(host, port)


def parse_log_format(text: str) -> LogFormat:
    """`text` or `json`; InputError otherwise."""
    for known in LOG_FORMATS:
        if text == known:
            return known
    raise InputError(f"{text!r} is not one of {', '.join(LOG_FORMATS)}")
