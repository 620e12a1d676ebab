"""Canonical JSON: the exact bytes that are signed and hashed.

Signatures are made and checked over bytes, never over a re-serialization, but a
document must still have one byte form when it is built. The rule (a subset of
RFC 8785 that needs no float formatting): UTF-8, object keys sorted by code point,
no insignificant whitespace, strings escaped only where JSON requires it, integers
only (no floats, no NaN), and `true`, `false`, `null`.
"""

from __future__ import annotations

import json
from typing import Any

from node.errors import InputError


class CanonicalJsonError(InputError):
    """A value that canonical JSON cannot hold (a float, a non-string key, ...)."""


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON bytes of `value`; raises CanonicalJsonError."""
    _check(value, "$")
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def is_canonical(data: bytes) -> bool:
    """Whether `data` is exactly the canonical form of what it parses to."""
    try:
        return canonical_bytes(json.loads(data)) == data
    except (ValueError, CanonicalJsonError):
        return False


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise CanonicalJsonError(f"{path}: floats are not allowed in canonical JSON")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError(f"{path}: object key {key!r} is not a string")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    raise CanonicalJsonError(f"{path}: {type(value).__name__} is not a JSON value")
