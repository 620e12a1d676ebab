"""Strict readers of the directory's JSON fields, shared by the model, signing and trust.

Each reader takes a decoded JSON value and the path it came from, and returns the typed
value or raises MalformedDirectory naming that path.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import key_id
from node.directory.errors import MalformedDirectory

_T = TypeVar("_T")

_COUNTRY_RE: Final = re.compile(r"[A-Z]{2}")
_KEYID_RE: Final = re.compile(r"[0-9a-f]{32}")
_PIN_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SCHEMA_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# https only; a host name, IPv4 or [IPv6], an optional port and path; no user, query or
# fragment, so two nodes never read one endpoint differently.
_URL_RE: Final = re.compile(
    r"https://(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
)
_LABEL_RE: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def load_canonical_json(data: bytes, what: str) -> Any:
    """Parse `data` as JSON that must be canonical; MalformedDirectory naming `what`."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
        encoded = canonical_bytes(value)
    except (ValueError, RecursionError, CanonicalJsonError) as exc:
        raise MalformedDirectory(f"{what} is not JSON that canonical form allows: {exc}") from None
    # Signatures cover bytes: one content must have one byte form, or "what was signed" is moot.
    if encoded != data:
        raise MalformedDirectory(f"{what} is not in canonical JSON form (sorted keys, no spaces)")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate object key")
    return result


def _obj(value: object, path: str, fields: set[str], any_keys: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedDirectory(f"{path}: expected an object")
    if not any_keys:
        if missing := sorted(fields - value.keys()):
            raise MalformedDirectory(f"{path}: missing field {missing[0]!r}")
        if unknown := sorted(value.keys() - fields):
            raise MalformedDirectory(f"{path}: unknown field {unknown[0]!r}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedDirectory(f"{path}: expected an array")
    return value


def _items(value: object, path: str, parse: Callable[[object, str], _T]) -> tuple[_T, ...]:
    return tuple(parse(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path)))


def _unique(values: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise MalformedDirectory(f"{path}: duplicate {what} {value!r}")
        seen.add(value)


def _str(value: object, path: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise MalformedDirectory(f"{path}: expected a string")
    if not value or len(value) > max_len:
        raise MalformedDirectory(f"{path}: must be 1 to {max_len} characters")
    return value


def _name(value: object, path: str) -> str:
    text = _str(value, path, 256)
    # Names are shown to officers and in logs: no control characters, no padding.
    if text.strip() != text or any(unicodedata.category(c) == "Cc" for c in text):
        raise MalformedDirectory(f"{path}: control characters or surrounding spaces")
    return text


def _int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedDirectory(f"{path}: expected an integer")
    if not low <= value <= high:
        raise MalformedDirectory(f"{path}: {value} is outside {low}..{high}")
    return value


def _url(value: object, path: str) -> str:
    url = _str(value, path, 2048)
    match = _URL_RE.fullmatch(url)
    if match is None:
        raise MalformedDirectory(
            f"{path}: {url!r} is not an https URL without user, query or fragment"
        )
    host, port = match["host"], match["port"]
    if not host.startswith("[") and not all(_LABEL_RE.fullmatch(x) for x in host.split(".")):
        raise MalformedDirectory(f"{path}: {host!r} is not a host name")
    if port is not None and not 1 <= int(port) <= 65535:
        raise MalformedDirectory(f"{path}: port {port} is outside 1..65535")
    return url


def _time(value: object, path: str) -> datetime:
    text = _str(value, path, 64)
    try:
        if not _TIME_RE.fullmatch(text):
            raise ValueError
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise MalformedDirectory(f"{path}: {text!r} is not YYYY-MM-DDTHH:MM:SSZ (UTC)") from None


def _validity(doc: dict[str, Any], path: str) -> tuple[datetime, datetime]:
    start, end = (
        _time(doc["valid_from"], f"{path}.valid_from"),
        _time(doc["valid_until"], f"{path}.valid_until"),
    )
    if end <= start:
        raise MalformedDirectory(f"{path}.valid_until: not after valid_from")
    return start, end


def _keyid(doc: dict[str, Any], path: str, public_key: bytes) -> str:
    text = _str(doc["keyid"], f"{path}.keyid", 32)
    if not _KEYID_RE.fullmatch(text):
        raise MalformedDirectory(f"{path}.keyid: {text!r} is not 32 lowercase hex digits")
    if text != key_id(public_key):
        raise MalformedDirectory(f"{path}.keyid: {text} is not the key id of public_key")
    return text


def _b64d(value: object, path: str, size: int) -> bytes:
    text = _str(value, path, 4 * ((size + 2) // 3))
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    # Only the one padded standard form, so equal keys are equal strings.
    if len(raw) != size or _b64e(raw) != text:
        raise MalformedDirectory(f"{path}: not standard padded base64 of {size} bytes")
    return raw


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a naive datetime cannot be compared with directory times (UTC)")
    return at


def _time_text(at: datetime) -> str:
    if at.microsecond:
        # The wire form has whole seconds; dropping the rest would sign another time.
        raise ValueError(f"directory times are whole seconds, not {at.isoformat()}")
    return _shown(at)


def _shown(at: datetime) -> str:
    return _aware(at).astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
