"""Values and errors of the hub's store, and the checks on what callers hand it (pure).

The errors split by what the caller does next, so the SOAP layer maps each to one fault:
an envelope it may not see (`EnvelopeNotFoundError`, the same for unknown and not
yours, so existence does not leak), one already settled, a value to fix, an account to
top up, an NPPO the hub does not know, or a database the operator must look at.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from node.errors import EphytoError, InputError
from node.hub.accounts import AccountPolicy, LedgerEntry, Payer, Refusal

TrackingState = Literal["PendingDelivery", "Delivered", "DeliveredWithWarnings", "FailedDelivery"]
Outcome = Literal["Delivered", "DeliveredWithWarnings", "Failed"]

PENDING: TrackingState = "PendingDelivery"
OUTCOME_STATE: dict[str, TrackingState] = {
    "Delivered": "Delivered",
    "DeliveredWithWarnings": "DeliveredWithWarnings",
    "Failed": "FailedDelivery",
}
EXPIRED_MESSAGE = "expired"
MAX_MESSAGE_CHARS = 4000
MAX_CERTIFICATE_NUMBER_CHARS = 128


class HubError(EphytoError):
    """Base of the hub store's errors."""


class HubStoreError(HubError):
    """The database failed or is not what the hub expects (check the database URL)."""


class EnvelopeNotFoundError(HubError, InputError):
    """No envelope with that tracking number that this caller may see (EnvelopeNotExists)."""


class EnvelopeSettledError(HubError, InputError):
    """The envelope was already acknowledged otherwise, or expired: nothing was changed."""

    def __init__(self, tracking_number: str, state: str, message: str | None) -> None:
        why = f" ({message})" if message else ""
        super().__init__(f"envelope {tracking_number} is already {state}{why}")
        self.tracking_number = tracking_number
        self.state = state


class InvalidValueError(HubError, InputError):
    """A value the hub refuses (bad country code, oversized content, ...): nothing stored."""


class DuplicateConflictError(HubError, InputError):
    """The same content was delivered before with other header fields: nothing stored."""


class UnknownNppoError(HubError, InputError):
    """The NPPO has no account at this hub: it must be enrolled (`set_policy`) first."""


class InsufficientFundsError(HubError):
    """The payer's account refused the charge (top up or change the policy): nothing stored."""

    def __init__(self, nppo: str, refusal: Refusal) -> None:
        super().__init__(f"{nppo}: {refusal.reason}")
        self.nppo = nppo
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Hub-wide rules: who pays for an envelope, and the largest content accepted."""

    payer: Payer = "sender"
    max_content_bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.payer not in ("sender", "receiver"):
            raise ValueError(f"payer is sender or receiver, not {self.payer!r}")
        if self.max_content_bytes < 1:
            raise ValueError("max_content_bytes must be positive")


class Delivery(NamedTuple):
    """What `deliver` answers: the hub tracking number, and whether it was a repeat."""

    tracking_number: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """An envelope without its content: what headers, tracking and audits show."""

    tracking_number: str
    sender: str
    recipient: str
    certificate_type: int
    certificate_status: int
    certificate_number: str
    content_sha256: str
    content_size: int
    state: TrackingState
    message: str | None
    created_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A pending envelope with its (opaque) content, as the recipient pulls it."""

    header: EnvelopeHeader
    content: bytes


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The settled state after `acknowledge`; `repeated` if it was settled so already."""

    tracking_number: str
    state: TrackingState
    repeated: bool


@dataclass(frozen=True, slots=True)
class PushItem:
    """A pending envelope claimed for pushing to its recipient's endpoint until `claimed_until`."""

    envelope: Envelope
    url: str
    attempts: int
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class Account:
    """An NPPO's account as it stands."""

    nppo: str
    policy: AccountPolicy
    balance: int
    period: str
    used: int


@dataclass(frozen=True, slots=True)
class Statement:
    """The ledger lines of [since, until) with the balance before and after them."""

    nppo: str
    currency: str
    since: datetime
    until: datetime
    opening_balance: int
    closing_balance: int
    entries: tuple[LedgerEntry, ...]


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One line of the append-only audit trail."""

    at: datetime
    kind: str
    tracking_number: str | None
    nppo: str | None
    detail: dict[str, object]


def check_nppo(role: str, code: object) -> str:
    """An NPPO's ISO 3166-1 alpha-2 code as given, or InvalidValueError."""
    if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
        shown = repr(code)[:20]
        raise InvalidValueError(f"{role} must be an ISO 3166-1 alpha-2 code like NL, not {shown}")
    return code


def check_header(certificate_type: object, certificate_status: object, number: object) -> None:
    """Refuse header fields the hub could not store or show back faithfully."""
    for name, value in (("certificate type", certificate_type), ("status", certificate_status)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9999:
            raise InvalidValueError(f"{name} must be a code between 0 and 9999, not {value!r:.20}")
    if not isinstance(number, str) or not number.strip():
        raise InvalidValueError("the NPPO certificate number is empty")
    if len(number) > MAX_CERTIFICATE_NUMBER_CHARS:
        raise InvalidValueError(
            f"the NPPO certificate number is longer than {MAX_CERTIFICATE_NUMBER_CHARS} characters"
        )
    if not number.isprintable():
        raise InvalidValueError("the NPPO certificate number has control characters")


def check_content(content: object, limit: int) -> bytes:
    if not isinstance(content, bytes):
        raise InvalidValueError(f"content must be bytes, not {type(content).__name__}")
    if not content:
        raise InvalidValueError("the envelope has no content")
    if len(content) > limit:
        raise InvalidValueError(f"content of {len(content)} bytes is over the {limit}-byte limit")
    return content


def check_outcome(outcome: object, message: object) -> tuple[TrackingState, str | None]:
    """The tracking state an acknowledgement sets, and its message (required for Failed)."""
    if not isinstance(outcome, str) or outcome not in OUTCOME_STATE:
        raise InvalidValueError(
            f"an acknowledgement is Delivered, DeliveredWithWarnings or Failed, not {outcome!r:.30}"
        )
    if message is not None and not isinstance(message, str):
        raise InvalidValueError("the acknowledgement's message must be text")
    if message is not None and len(message) > MAX_MESSAGE_CHARS:
        raise InvalidValueError(f"the acknowledgement's message is over {MAX_MESSAGE_CHARS} chars")
    text = message.strip() if message else None
    if outcome == "Failed" and not text:
        raise InvalidValueError("a failed acknowledgement must say why")
    return OUTCOME_STATE[outcome], text or None


def tracking_key(tracking_number: object) -> str | None:
    """The canonical form of a tracking number, or None for one the hub never issues."""
    if not isinstance(tracking_number, str) or len(tracking_number) > 40:
        return None
    try:
        canonical = str(uuid.UUID(tracking_number))
    except ValueError:
        return None
    return canonical if canonical == tracking_number.strip().lower() else None


def new_tracking_number() -> str:
    return str(uuid.uuid4())


_COUNTRY = re.compile(r"[A-Z]{2}")
