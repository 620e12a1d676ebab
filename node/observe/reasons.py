"""The reason class of a failure or a retry (pure): a few fixed words for a metric's
label, so that a partner's free text never becomes a label value (one time series per
distinct error message would grow without bound)."""

from __future__ import annotations

from typing import Final

# First match wins: the more specific phrases come before the general ones.
_CLASSES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("rejected", ("rejected",)),
    ("revoked", ("revoked", "suspended", "not active")),
    ("not-listed", ("not in the directory", "not listed", "no directory", "unknown")),
    ("schema-version", ("spscertificate version",)),
    ("tls", ("tls", "certificate refused", "ssl", "pin")),
    ("timeout", ("timeout", "timed out", "no answer")),
    ("connection", ("cannot connect", "connection", "refused", "unreachable")),
    ("hub", ("hub",)),
    ("seal", ("cannot seal",)),
    ("receipt", ("bad receipt",)),
    ("http", ("answered http",)),
)
REASON_CLASSES: Final[tuple[str, ...]] = (*(name for name, _ in _CLASSES), "other")


def reason_class(error: str) -> str:
    """The class of an error text, one of REASON_CLASSES ("other" when none fits)."""
    text = error.lower()
    for name, phrases in _CLASSES:
        if any(phrase in text for phrase in phrases):
            return name
    return "other"
