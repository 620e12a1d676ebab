"""The officer console's optional second factor: time-based one-time passwords (TOTP,
RFC 6238, on HOTP, RFC 4226), as authenticator apps compute them.

A pure core: the time is passed in, nothing is read or written. Only `new_secret` draws
randomness. A secret is kept as base32 without padding (A-Z, 2-7), the form authenticator
apps take; the default parameters (HMAC-SHA1, 6 digits, 30-second steps) are the only
ones every app supports, so the console uses nothing else.

`matching_step` answers which time step a code belongs to, not just yes or no: the
caller keeps the last step it accepted for each user and refuses a code whose step is
not later, so that a code seen over a shoulder cannot be used again within its window
(RFC 6238, section 5.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from node.errors import InputError

DIGITS = 6
PERIOD = 30
WINDOW = 1
SECRET_BYTES = 20  # 160 bits: RFC 4226's recommended length (new_secret makes these)
# Accepted in the users file: 16 characters (80 bits, what some older tools made) to 64
# (320 bits). Anything else there is a damaged file, not a secret.
SECRET_MIN = 16
SECRET_MAX = 64
_SECRET = re.compile(r"[A-Z2-7]+")
# Only ASCII digits: \d would let Arabic-Indic or fullwidth digits through, which no
# authenticator shows and which int() would quietly read as the ASCII ones.
_ASCII_DIGITS = re.compile(r"[0-9]+")
# Spaces around a pasted or typed code are harmless; anything else is not a code.
_AROUND = " \t\r\n"
# Longer than any code with spaces around it: refused before any work is done on it.
_CODE_MAX = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS_RANGE = range(6, 9)  # RFC 4226 asks at least 6; 8 is the RFC 6238 vectors'
_PERIOD_MAX = 3600
_WINDOW_MAX = 10
_LABEL_MAX = 128


def new_secret() -> str:
    """A new random secret: 160 bits from the system's CSPRNG, base32 without padding
    (32 characters)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def valid_secret(secret: object) -> bool:
    """Whether `secret` is text this module takes as a secret: 16 to 64 characters
    A-Z and 2-7 (base32 without padding) that decode to bytes."""
    if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX:
        return False
    if _SECRET.fullmatch(secret) is None:
        return False
    try:
        _key(secret)
    except binascii.Error:  # a length no base32 text has (1, 3 or 6 characters mod 8)
        return False
    return True


def check_secret(secret: object) -> str:
    """`secret` if it is valid (see `valid_secret`), else InputError, which never quotes
    it: a secret does not belong in a log line."""
    if not valid_secret(secret):
        raise InputError(
            f"TOTP secret: must be {SECRET_MIN} to {SECRET_MAX} base32 characters"
            " (A-Z, 2-7, no padding)"
        )
    assert isinstance(secret, str)
    return secret


def time_step(at: datetime, *, period: int = PERIOD) -> int:
    """The number of whole `period`s from the Unix epoch to `at` (RFC 6238's T)."""
    _check_period(period)
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InputError("TOTP time: must be a datetime with a time zone")
    if at < _EPOCH:
        raise InputError("TOTP time: must not be before 1970")
    # Integer division of timedeltas: exact, where a float timestamp could round a time
    # a microsecond before a step's end into the next step.
    return (at - _EPOCH) // timedelta(seconds=period)


def code_at(secret: str, at: datetime, *, digits: int = DIGITS, period: int = PERIOD) -> str:
    """The code an authenticator shows at `at` for `secret`: HMAC-SHA1 of the time step,
    dynamically truncated (RFC 4226, section 5.3), `digits` digits with leading zeros."""
    _check_digits(digits)
    return _code(_key(check_secret(secret)), time_step(at, period=period), digits)


def matching_step(secret: str, code: str, at: datetime, *, window: int = WINDOW) -> int | None:
    """The time step (see `time_step`) whose code `code` is, among the steps from
    `window` before `at`'s to `window` after it; None if it is none of them or is not a
    code at all (not text, or not exactly 6 ASCII digits once the spaces, tabs and line
    ends around it are dropped).

    Every step in the window is computed and compared, in constant time each, whether or
    not an earlier one matched: how long this takes says nothing about the code. A bad
    secret, time or window is an InputError: a fault of the caller's, not the user's.
    """
    if isinstance(window, bool) or not isinstance(window, int):
        raise InputError("TOTP window: must be a whole number of steps")
    if not 0 <= window <= _WINDOW_MAX:
        raise InputError(f"TOTP window: must be 0 to {_WINDOW_MAX} steps")
    key = _key(check_secret(secret))
    now = time_step(at)
    candidate = _candidate(code)
    # Not a code: compared all the same (with nothing), so that a malformed code takes
    # as long as a wrong one.
    typed = (candidate or "").encode("ascii")
    # The current step first, so that in the (one in a million) case of two steps with
    # the same code, the answer is the current one.
    steps = [now, *(s for d in range(1, window + 1) for s in (now - d, now + d))]
    found: int | None = None
    for step in steps:
        if step < 0:
            continue
        if hmac.compare_digest(_code(key, step, DIGITS).encode("ascii"), typed):
            found = step if found is None else found
    return found if candidate is not None else None


def provisioning_uri(secret: str, *, user: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app takes (as text or as a QR code) to add
    `user`'s account at `issuer` with `secret`: Google's Key URI format, label
    `issuer:user`, every part percent-encoded (a space is %20, never +).

    InputError for a bad secret, or a user or issuer that is empty, longer than 128
    characters, has a colon (the label's separator, which apps split on even when
    encoded) or a control character.
    """
    check_secret(secret)
    for what, text in (("user", user), ("issuer", issuer)):
        if not isinstance(text, str) or not text or len(text) > _LABEL_MAX:
            raise InputError(f"TOTP {what}: must be 1 to {_LABEL_MAX} characters")
        if ":" in text or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
            raise InputError(f"TOTP {what}: must have no colon and no control character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"TOTP {what}: is not valid text (UTF-8)") from None
    label = f"{_quoted(issuer)}:{_quoted(user)}"
    query = "&".join(
        f"{name}={_quoted(value)}"
        for name, value in (
            ("secret", secret),
            ("issuer", issuer),
            ("algorithm", "SHA1"),
            ("digits", str(DIGITS)),
            ("period", str(PERIOD)),
        )
    )
    return f"otpauth://totp/{label}?{query}"


def _candidate(code: object) -> str | None:
    """`code` without the spaces around it, if it is then exactly DIGITS ASCII digits."""
    if not isinstance(code, str) or len(code) > _CODE_MAX:
        return None
    stripped = code.strip(_AROUND)
    if len(stripped) != DIGITS or _ASCII_DIGITS.fullmatch(stripped) is None:
        return None
    return stripped


def _key(secret: str) -> bytes:
    """The bytes a base32 secret (without padding) stands for; binascii.Error if none."""
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def _code(key: bytes, step: int, digits: int) -> str:
    digest = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def _check_digits(digits: int) -> None:
    if isinstance(digits, bool) or not isinstance(digits, int) or digits not in _DIGITS_RANGE:
        raise InputError("TOTP digits: must be 6, 7 or 8")


def _check_period(period: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= _PERIOD_MAX:
        raise InputError(f"TOTP period: must be 1 to {_PERIOD_MAX} seconds")


def _quoted(text: str) -> str:
    return quote(text, safe="")
