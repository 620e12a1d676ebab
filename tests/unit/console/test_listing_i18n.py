"""The console's list filters, CSV cells and language choice (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import MultiDict

from node.console import i18n
from node.console.listing import _cell, filters_of, page_number, without_page


def test_filters_read_strictly_and_drop_what_does_not_read() -> None:
    query = MultiDict([("state", "issued"), ("state", "bogus"), ("number", " NL-1\x00 "),
                       ("country", "ke"), ("from", "2026-11-01"), ("to", "2026-11-30"),
                       ("commodity", "x" * 500)])  # fmt: skip
    found = filters_of(query, states=("draft", "issued"))
    assert found.states == ("issued",)
    assert found.number == "NL-1"
    assert found.country == "KE"
    assert found.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert found.until == datetime(2026, 12, 1, tzinfo=UTC)  # the whole last day
    assert found.commodity is not None and len(found.commodity) == 100


@pytest.mark.parametrize(
    "key,value", [("country", "K"), ("country", "KEN"), ("country", "ÉÉ"), ("from", "2026-02-30"),
                  ("to", "yesterday"), ("from", "2026-1-1")],
)  # fmt: skip
def test_a_filter_that_does_not_read_is_dropped(key: str, value: str) -> None:
    found = filters_of(MultiDict([(key, value)]), states=())
    assert found.country is None and found.since is None and found.until is None


@pytest.mark.parametrize("text,page", [("3", 3), ("-1", 0), ("x", 0), ("9" * 50, 0), ("", 0)])
def test_page_number(text: str, page: int) -> None:
    assert page_number({"page": text}) == page


def test_the_pager_keeps_the_filters() -> None:
    assert without_page("state=issued&page=3&country=KE") == "state=issued&country=KE"
    assert without_page("page=1") == ""
    assert len(without_page("a=" + "x" * 10_000)) == 4000


@pytest.mark.parametrize("value", ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx"])
def test_a_csv_cell_is_never_a_formula(value: str) -> None:
    assert _cell(value).startswith("'")


def test_plain_cells_are_kept() -> None:
    assert _cell("NL-2026-1") == "NL-2026-1" and _cell(None) == "" and _cell(3) == "3"


@pytest.mark.parametrize(
    "header,lang",
    [(None, "en"), ("", "en"), ("fr-CA,en;q=0.5", "fr"), ("de,es;q=0.8", "es"),
     ("ar", "ar"), ("zh-Hans-CN", "zh"), ("ru;q=0, fr", "fr"), ("xx," * 5000, "en"),
     ("de, " * 40 + "ru", "en")],
)  # fmt: skip
def test_the_browser_language(header: str | None, lang: str) -> None:
    assert i18n.preferred(header) == lang


def test_languages_and_direction() -> None:
    assert [lang.code for lang in i18n.LANGUAGES] == ["en", "fr", "es", "ar", "zh", "ru"]
    assert i18n.language("ar").rtl and not i18n.language("fr").rtl
    assert i18n.language("../x").code == "en"
