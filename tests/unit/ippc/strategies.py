"""Hypothesis strategies for every hub dataclass, read from the same type hints the codec reads."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from hypothesis import strategies as st
from lxml import etree

from node.ippc import RESPONSE_OF, XmlTree

# Every character XML 1.0 can carry: no C0 controls but tab, newline and carriage
# return, no surrogates, no U+FFFE/U+FFFF.
XML_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cs",),
    exclude_characters="".join(chr(c) for c in range(0x20) if c not in (9, 10, 13))
    + "\ufffe\uffff",
)
XML_TEXT = st.text(XML_CHARS, max_size=40)
# Specials of XML and of our own escaping, mixed in often enough to matter.
TRICKY_TEXT = st.one_of(
    XML_TEXT,
    st.sampled_from(["", " ", "<a>&amp;</a>", "]]>", "\r\n", "\r", " x ", "&#13;", "'\""]),
    st.lists(st.sampled_from(["<", ">", "&", "\r", "\n", "é", "中", "🌱", " ", "]]>"])).map(
        "".join
    ),
)
TIMEZONES = st.one_of(
    st.none(),
    st.just(UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)


def instances(cls: type) -> st.SearchStrategy[Any]:
    """Arbitrary instances of a hub dataclass, nested values included."""
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: _tree(f.metadata["xml"].tag, hints[f.name])
        if XmlTree in (hints[f.name], *typing.get_args(hints[f.name]))
        else _for(hints[f.name])
        for f in dataclasses.fields(cls)
    }
    return st.builds(cls, **fields)


def _tree(tag: str, hint: Any) -> st.SearchStrategy[Any]:
    """Typed trees rooted at `tag`: nested children in another namespace, any text."""

    def build(texts: list[str]) -> XmlTree:
        root = etree.Element(tag)
        parent = root
        for text in texts:
            parent = etree.SubElement(parent, "{urn:test:child}Item", attrib={"n": text})
            parent.text = text
        # Parsed back, as a reader sees it: empty text (`<a></a>`) reads as none (`<a/>`).
        return XmlTree.of(etree.fromstring(etree.tostring(root)))

    trees = st.lists(TRICKY_TEXT, max_size=3).map(build)
    return trees if hint is XmlTree else st.none() | trees


def _for(hint: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return st.lists(_for(typing.get_args(hint)[0]), max_size=3).map(tuple)
    if origin in (typing.Union, types.UnionType):
        (kind,) = (a for a in typing.get_args(hint) if a is not type(None))
        return st.none() | _for(kind)
    if hint is str:
        return TRICKY_TEXT
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**31), 2**31 - 1)
    if hint is datetime:
        return st.datetimes(timezones=TIMEZONES)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(hint)
    return st.deferred(lambda: instances(hint))


requests = st.one_of([instances(cls) for cls in RESPONSE_OF])
responses = st.one_of([instances(cls) for cls in RESPONSE_OF.values()])
