"""The API's parameters, read strictly: what the OpenAPI description allows, nothing else.

Python's own readings are too kind for input from the network: `str.isdigit()` and
`int()` take any Unicode digit ('²', '٣'), and `int()` takes signs, spaces and
underscores. Numbers here are ASCII digits, bounded before they are converted.
"""

from __future__ import annotations

import re

from aiohttp import web

from node.api.problems import bad_request, not_found

# A store id is a signed 64-bit integer (BIGINT on PostgreSQL, INTEGER on SQLite).
MAX_ID = 2**63 - 1
# The route takes at most this many digits, so that no huge number is ever converted.
ID_PATTERN = r"[0-9]{1,19}"
MAX_REASON_CHARS = 1000

_DIGITS = re.compile(r"[0-9]{1,19}")
# The replacement's reason, as the OpenAPI description's pattern says it (in ASCII
# terms, which JSON Schema's and Python's regular expressions read alike): a character
# other than a space, no control characters, nothing XML 1.0 cannot carry (the reason
# goes into the certificate's ADRPR note). Surrogates cannot reach us in UTF-8; refused
# here anyway, as XML cannot carry them either.
_NOT_IN_REASON = r"\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff"
_REASON = re.compile(f"[^{_NOT_IN_REASON}]*[^\\x20{_NOT_IN_REASON}][^{_NOT_IN_REASON}]*")


def message_id(request: web.Request) -> int:
    """The `{id}` of the path: 1..2**63-1, else 404 (no message can have that id)."""
    raw = request.match_info["id"]
    number = int(raw) if _DIGITS.fullmatch(raw) else 0
    if not 1 <= number <= MAX_ID:
        raise not_found(f"no certificate has the id {raw!r} (ids are 1..{MAX_ID})")
    return number


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within low..high, else 400."""
    raw = request.query.get(name)
    if raw is None:
        return default
    number = int(raw) if _DIGITS.fullmatch(raw) else None
    if number is None or not low <= number <= high:
        raise bad_request(f"{name} must be a whole number {low}..{high}")
    return number


def choice_query(request: web.Request, name: str, choices: dict[str, str], default: str) -> str:
    """A query parameter that is one of `choices` (its value is what the choice means)."""
    raw = request.query.get(name, default)
    if raw not in choices:
        raise bad_request(f"{name} must be one of {', '.join(map(repr, choices))}")
    return choices[raw]


def reason_query(request: web.Request) -> str:
    """The `reason` of a replacement: required, one line, text XML can carry."""
    reason = request.query.get("reason")
    if reason is None:
        raise bad_request("reason is required: why the certificate is replaced (ADRPR)")
    if len(reason) > MAX_REASON_CHARS or _REASON.fullmatch(reason) is None:
        raise bad_request(
            f"reason must be one line of at most {MAX_REASON_CHARS} characters, not only"
            " spaces, without control characters"
        )
    return reason.strip(" ")
