"""What the console's lists share: their filters, read strictly from the query string,
their pages, and any list as CSV.

A filter that does not read (a date that is not a date, a country that is not two
letters) is dropped rather than refused: a list is a place to look, and an officer who
mistyped a date sees the whole list with that filter empty, not an error page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from aiohttp import web

_TEXT_MAX = 100
_PAGE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Filters:
    states: tuple[str, ...] = ()
    number: str | None = None
    country: str | None = None
    commodity: str | None = None
    since: datetime | None = None  # from the start of this day, UTC
    until: datetime | None = None  # to the end of this day, UTC
    since_text: str = ""
    until_text: str = ""


def filters_of(query: Mapping[str, str], *, states: Sequence[str]) -> Filters:
    since_day = _day(query.get("from"))
    until_day = _day(query.get("to"))
    country = (query.get("country") or "").strip().upper()
    return Filters(
        states=tuple(s for s in states if s in _all(query, "state")),
        number=_text(query.get("number")),
        country=country if len(country) == 2 and country.isascii() and country.isalpha() else None,
        commodity=_text(query.get("commodity")),
        since=None if since_day is None else datetime.combine(since_day, time(), UTC),
        until=None
        if until_day is None
        else datetime.combine(until_day + timedelta(days=1), time(), UTC),
        since_text="" if since_day is None else since_day.isoformat(),
        until_text="" if until_day is None else until_day.isoformat(),
    )


def without_page(query_string: str) -> str:
    """The query string of a list minus its page: the pager's links keep the filters."""
    kept = [part for part in query_string.split("&") if part and not part.startswith("page=")]
    return "&".join(kept)[:4000]


def page_number(query: Mapping[str, str]) -> int:
    text = query.get("page", "0")
    return int(text) if text.isdigit() and len(text) <= 5 and int(text) < _PAGE_MAX else 0


def csv_response(
    name: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> web.Response:
    """A list as a CSV download. A cell that a spreadsheet would run as a formula (it
    starts with =, +, - or @) is written with a leading apostrophe: certificate data
    comes from exporters, and a CSV is opened in a spreadsheet (CSV injection)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return web.Response(
        body=out.getvalue().encode("utf-8-sig"),  # the BOM: spreadsheets then read UTF-8
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _all(query: Mapping[str, str], key: str) -> list[str]:
    getall = getattr(query, "getall", None)
    if getall is None:
        value = query.get(key)
        return [] if value is None else [value]
    return list(getall(key, []))[:20]


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = "".join(c for c in value if c.isprintable()).strip()[:_TEXT_MAX]
    return cleaned or None


def _day(value: str | None) -> date | None:
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
