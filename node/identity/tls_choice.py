"""Which TLS certificate a node presents while its TLS key rotates (pure).

After `ephyto node rotate-keys` a node holds two TLS identities: the current certificate
and key, and the next ones. Partners know a node by the TLS pins their copy of the
directory lists, both when it is their server (they pin our server certificate) and when
it is their client (their server lets in only certificates whose pins it knows). Which of
the two a node presents is decided here, from the directory's pins and the time, given as
values; the shell (node.identity.next_keys) reads the files and the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from node.directory.model import TlsPin, in_use


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """A TLS certificate and its private key, as the files TLS contexts load, and the
    certificate's pin (what partners know it by)."""

    certificate: Path
    key: Path
    pin: str
    # The passphrase of an encrypted key file (node.identity.protection), handed to
    # `load_cert_chain`; never shown.
    password: bytes | None = field(default=None, repr=False)


PresentedTls = Callable[[], TlsIdentity]
"""The TLS identity to present now; TLS contexts ask it at every connection they make."""


@dataclass(frozen=True, slots=True)
class HeldTls:
    """The TLS identities a node holds: the current one, and the next while a rotation
    of the TLS key is under way."""

    current: TlsIdentity
    next: TlsIdentity | None = None

    @property
    def pins(self) -> frozenset[str]:
        return frozenset(i.pin for i in (self.current, self.next) if i is not None)


class TlsHolder:
    """The running node's TLS identities and the one it presents. A reload replaces each
    attribute whole (one assignment), so a connection being set up reads one consistent
    identity, with no lock to take. Calling the holder returns the presented identity
    (it is a PresentedTls)."""

    def __init__(self, held: HeldTls, presented: TlsIdentity | None = None) -> None:
        self.held = held
        self.presented = held.current if presented is None else presented
        # The last warning logged, as Keyring.warned: once per situation, not per refresh.
        self.warned = ""

    def __call__(self) -> TlsIdentity:
        return self.presented


def presented_pin(current: str, next_: str | None, listed: Sequence[TlsPin], now: datetime) -> str:
    """The pin whose certificate to present at `now`: `next_` once the directory lists it
    as valid now AND either `current` is no longer valid now or `now` is past the midpoint
    of the overlap; `current` otherwise (and always when there is no `next_`).

    Why wait for the midpoint: a partner that has not refreshed its directory since the
    rotation was published does not know the new pin. As our TLS client it pins our
    server certificate to the pins it knows, and as our TLS server it lets in only
    certificates whose pins it knows: either way a handshake with the new certificate
    fails. Presenting the old one through the first half of the overlap gives every
    partner half the overlap to refresh; the old one stays valid to the end, so a node
    whose own refresh comes late still switches in time.
    """
    if next_ is None or next_ == current:
        return current
    chosen = in_use((p for p in listed if p.pin in (current, next_)), now)
    return current if chosen is None else chosen.pin


def presented(held: HeldTls, listed: Sequence[TlsPin], now: datetime) -> TlsIdentity:
    """The identity of `held` to present at `now`, by `presented_pin`."""
    if held.next is None:
        return held.current
    pin = presented_pin(held.current.pin, held.next.pin, listed, now)
    return held.next if pin == held.next.pin else held.current


def unheld_pins(listed: Sequence[TlsPin], held: HeldTls, now: datetime) -> tuple[TlsPin, ...]:
    """Our pins the directory lists (valid now or later) that `held` lacks: partners may
    expect a certificate this node has not loaded."""
    return tuple(p for p in listed if now < p.valid_until and p.pin not in held.pins)
