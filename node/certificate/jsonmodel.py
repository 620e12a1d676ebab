"""The certificate model as JSON (documented in docs/certificate-json.md).

A plain mapping of the dataclasses: field names as keys, tuples as lists, dates as
ISO 8601 strings, decimals as strings (numbers are accepted), attachment bytes as
Base64. A `Text` may be written as a bare string or as {"value", "language"}.
Bad input raises `JsonModelError` naming the JSON path, e.g. `$.consignment.items[0]`;
so does hostile JSON (nested deeper than any certificate, numbers of thousands of
digits), refused before `json.loads` would recurse or convert its way into an error.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import types
import typing
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from itertools import accumulate
from typing import Any, TypeVar, Union

from node.certificate import model as m
from node.certificate.xml_build import format_datetime, format_decimal
from node.certificate.xml_parse import parse_datetime
from node.errors import InputError

_T = TypeVar("_T")

# The model's deepest value (a treatment characteristic's measure) is 8 levels down; far
# below where json.loads, which recurses once per level, runs out of stack.
MAX_DEPTH = 64
# Quantities and measures are real amounts; a decimal longer than this written out is not.
MAX_DECIMAL_DIGITS = 64
# A JSON string, escapes and all, ending where JSON ends it; and what is not a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes


class JsonModelError(InputError):
    """The JSON does not describe a certificate; the message says where and why."""


def certificate_from_json(data: bytes | str) -> m.Certificate:
    """A certificate from JSON text; raises JsonModelError."""
    try:
        # As json.loads reads bytes (UTF-8, -16 or -32), so that depth is counted on text.
        text = (
            data
            if isinstance(data, str)
            else data.decode(json.detect_encoding(data), "surrogatepass")
        )
    except UnicodeDecodeError as e:
        raise JsonModelError(f"not JSON: {e}") from None
    _check_depth(text)
    try:
        value = json.loads(text)
    except ValueError as e:
        # JSONDecodeError, and an integer past Python's 4,300-digit conversion limit.
        raise JsonModelError(f"not JSON: {e}") from None
    return from_plain(m.Certificate, value, "$")


def certificate_to_json(cert: m.Certificate) -> str:
    """The certificate as indented JSON text."""
    return json.dumps(to_plain(cert), indent=2, ensure_ascii=False)


def to_plain(value: object) -> Any:
    """Dataclass values to JSON-ready dicts, lists and strings; absent fields left out."""
    if isinstance(value, m.Text):
        return (
            value.value
            if value.language is None
            else {"value": value.value, "language": value.language}
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and item == f.default:
                continue  # optional and absent: leave it out, as a person would
            out[f.name] = to_plain(item)
        return out
    if isinstance(value, tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def from_plain(cls: type[_T], value: Any, path: str) -> _T:
    """Read a dataclass of the model from JSON-decoded data."""
    return typing.cast(_T, _read(cls, value, path))


def _check_depth(text: str) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, counting brackets outside strings.

    Strings are removed as JSON reads them, so the count is exact up to the first error
    json.loads would stop at; past an unterminated string it only counts more. Done
    with regular expressions and in C (a loop in Python costs seconds on 5 MiB).
    """
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text)).encode("ascii")
    steps = memoryview(brackets.translate(_STEPS)).cast("b")
    if max(accumulate(steps), default=0) > MAX_DEPTH:
        raise JsonModelError(f"not JSON for a certificate: nested deeper than {MAX_DEPTH}")


def _read(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _read(options[0], value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise JsonModelError(f"{path}: expected a list, got {_kind(value)}")
        (inner, _) = typing.get_args(tp)
        return tuple(_read(inner, v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is m.Text and isinstance(value, str):
        return m.Text(_xml_safe(value, path))
    if dataclasses.is_dataclass(tp):
        return _read_dataclass(tp, value, path)
    if tp is str:
        if not isinstance(value, str):
            raise JsonModelError(f"{path}: expected a string, got {_kind(value)}")
        return _xml_safe(value, path)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise JsonModelError(f"{path}: expected a whole number, got {_kind(value)}")
        return value
    if tp is Decimal:
        return _decimal(value, path)
    if tp is datetime:
        if not isinstance(value, str):
            raise JsonModelError(f"{path}: expected an ISO 8601 date-time string")
        try:
            return parse_datetime(value)
        except ValueError:
            raise JsonModelError(f"{path}: not an ISO 8601 date-time: {_shown(value)}") from None
    if tp is bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise JsonModelError(f"{path}: expected Base64 text") from None
    raise TypeError(f"unsupported model type {tp!r}")  # a bug in the model, not bad input


def _read_dataclass(tp: Any, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise JsonModelError(f"{path}: expected an object, got {_kind(value)}")
    hints = _hints(tp)
    unknown = sorted(set(value) - set(hints))
    if unknown:
        raise JsonModelError(f"{path}: unknown field {_shown(unknown[0])}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(tp):
        if f.name in value:
            kwargs[f.name] = _read(hints[f.name], value[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise JsonModelError(f"{path}: missing field {f.name!r}")
    return tp(**kwargs)


@cache
def _hints(tp: Any) -> dict[str, Any]:
    return typing.get_type_hints(tp, vars(m))


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise JsonModelError(f"{path}: expected a decimal number, got {_kind(value)}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise JsonModelError(f"{path}: not a decimal number: {_shown(value)}") from None
    if not number.is_finite():
        raise JsonModelError(f"{path}: not a finite decimal number: {_shown(value)}")
    if _plain_length(number) > MAX_DECIMAL_DIGITS:
        # The XML writes it out (xml_build.format_decimal): 1e999999999 is a gigabyte.
        raise JsonModelError(
            f"{path}: {_shown(value)} has more than {MAX_DECIMAL_DIGITS} digits written out"
        )
    return number


def _plain_length(number: Decimal) -> int:
    """How many digits `number` has in plain notation, without building it."""
    digits, exponent = len(number.as_tuple().digits), int(number.as_tuple().exponent)
    return digits + exponent if exponent >= 0 else max(digits, -exponent + 1)


def _shown(value: Any) -> str:
    """A value as a refusal quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _xml_safe(text: str, path: str) -> str:
    """Refuse characters XML 1.0 cannot carry, so building the XML never fails later."""
    for ch in text:
        code = ord(ch)
        if (
            (code < 0x20 and ch not in "\t\n\r")
            or 0xD800 <= code <= 0xDFFF
            or code
            in (
                0xFFFE,
                0xFFFF,
            )
        ):
            raise JsonModelError(f"{path}: character U+{code:04X} cannot appear in XML")
    return text


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), "a number")
