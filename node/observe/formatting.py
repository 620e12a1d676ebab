"""Log lines as text or as JSON (pure: formatters turn a record into a string).

A record may carry fields (`extra={"fields": {...}}`, see `FIELDS`): the certificate
number, message id, partner, route, reason of a certificate event, say. As text they
follow the message as `key=value` pairs (a value quoted when it holds a space, a quote
or an equals sign); as JSON each is a member of the line's object beside `time`,
`level`, `logger` and `message`, for log shippers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

FIELDS: Final = "fields"
"""The attribute of a LogRecord holding its fields (a mapping of names to values)."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The members every JSON line has; a field of the same name is prefixed, never lost.
_RESERVED: Final = frozenset({"time", "level", "logger", "message", "exception"})
_BARE = re.compile(r"[A-Za-z0-9_.:/+@-]+")


def record_fields(record: logging.LogRecord) -> Mapping[str, Any]:
    """The fields a record carries (none when it carries something else there)."""
    fields = getattr(record, FIELDS, None)
    return fields if isinstance(fields, Mapping) else {}


def key_values(fields: Mapping[str, Any]) -> str:
    """`key=value` pairs, in the mapping's order; None values are left out."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items() if value is not None)


class TextFormatter(logging.Formatter):
    """The classic line (`time level logger: message`) followed by the record's fields."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = key_values(record_fields(record))
        if not pairs:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the line
        return f"{first} {pairs}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the
    record's fields, and `exception` (its traceback as text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            if value is not None:
                document[f"field_{key}" if key in _RESERVED else str(key)] = _plain(value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        # ensure_ascii: a control character or odd byte in a partner's text cannot break
        # the one-object-per-line framing a shipper relies on.
        return json.dumps(document, ensure_ascii=True, separators=(",", ":"))


def _value(value: Any) -> str:
    text = str(value)
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=True)


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
