"""Frozen dataclasses to and from XML elements, driven by each field's `xml` metadata.

One description per field serves both directions, so what we render is what we parse.
Decoding raises SoapError (Client) naming the element path; encoding raises ValueError,
which the envelope layer turns into the fault code that fits its side.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from lxml import etree

from node.errors import UnsafeXmlError
from node.hostile_xml import parse_any
from node.ippc.errors import FaultCode, SoapError
from node.ippc.names import XSI

_E = etree._Element
T = TypeVar("T")

_INT = re.compile(r"[+-]?[0-9]+")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # xs:int
_NIL = f"{{{XSI}}}nil"


@dataclass(frozen=True, slots=True)
class Xml:
    """Where a field lives: an element (or attribute) name, its namespace ("" unqualified).

    `item` names the repeated child of a wrapper element (the WSDL's ArrayOf... types),
    in `item_ns` if that differs; a repeated field without it repeats the element itself.
    A wrapper is written only when it has items, unless `keep_empty`.
    """

    ns: str
    name: str
    attribute: bool = False
    item: str | None = None
    item_ns: str | None = None
    keep_empty: bool = False

    @property
    def tag(self) -> str:
        return f"{{{self.ns}}}{self.name}" if self.ns else self.name


class XmlTree(str):
    """An element carried as a typed tree (the WSDL's SPSCertificate, SPSAcknowledgement),
    held as the text of a standalone XML document whose root is that element.

    The codec checks nothing of the tree but that it is XML with the field's root: what
    a tree means is for the certificate package (node.certificate) to judge.
    """

    __slots__ = ()

    @classmethod
    def of(cls, el: _E) -> XmlTree:
        """The tree of `el`, with only the namespace declarations it uses."""
        tree = copy.deepcopy(el)  # a document of its own: no declarations of the SOAP parts
        etree.cleanup_namespaces(tree)
        return cls(etree.tostring(tree, encoding="unicode"))


def element(
    ns: str,
    name: str,
    *,
    item: str | None = None,
    item_ns: str | None = None,
    keep_empty: bool = False,
) -> Mapping[str, Xml]:
    """Field metadata for a child element."""
    return {"xml": Xml(ns, name, item=item, item_ns=item_ns, keep_empty=keep_empty)}


def attribute(name: str) -> Mapping[str, Xml]:
    """Field metadata for an unqualified attribute."""
    return {"xml": Xml("", name, attribute=True)}


def decode(el: _E, cls: type[T], where: str) -> T:
    """An instance of dataclass `cls` read from `el`; raises SoapError saying where and why."""
    spec = _spec(cls)
    by_tag = {f.xml.tag: f for f in spec if not f.xml.attribute}
    values: dict[str, Any] = {}
    repeated: dict[str, list[Any]] = {f.attr: [] for f in spec if f.repeated and not f.xml.item}
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions carry nothing
        f = by_tag.get(child.tag)
        if f is None:
            raise _error(f"unexpected element {_show(child.tag)} in {where}")
        here = f"{where}/{f.xml.name}"
        if f.attr in repeated:
            if not _is_nil(child):
                repeated[f.attr].append(_value(child, f.kind, here))
            continue
        if f.attr in values:
            raise _error(f"element {here} appears more than once")
        if f.repeated:
            values[f.attr] = tuple(_items(child, f, here))
        elif _is_nil(child):
            if f.required:
                raise _error(f"required element {here} is nil")
            values[f.attr] = None
        else:
            values[f.attr] = _value(child, f.kind, here)
    for f in spec:
        if f.xml.attribute and (raw := el.get(f.xml.name)) is not None:
            values[f.attr] = _scalar(f.kind, raw, f"{where}/@{f.xml.name}")
    values.update((k, tuple(v)) for k, v in repeated.items())
    missing = [f for f in spec if f.required and f.attr not in values]
    if missing:
        what = "attribute @" if missing[0].xml.attribute else "element "
        raise _error(f"missing required {what}{missing[0].xml.name} in {where}")
    return cls(**values)


def encode(parent: _E, tag: str, obj: object) -> _E:
    """Append `obj` (a dataclass described by `xml` metadata) to `parent` as element `tag`."""
    el = etree.SubElement(parent, tag)
    for f in _spec(type(obj)):
        value = getattr(obj, f.attr)
        if f.xml.attribute:
            if value is not None:
                _set(el, f.xml.name, _text(f.kind, value, f.xml.name))
        elif f.repeated and f.xml.item is None:
            for item in value:
                _put(el, f.xml.tag, f.kind, item)
        elif f.repeated:
            if value or f.xml.keep_empty:
                wrapper = etree.SubElement(el, f.xml.tag)
                for item in value:
                    _put(wrapper, _item_tag(f), f.kind, item)
        elif value is not None:
            _put(el, f.xml.tag, f.kind, value)
    return el


@dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    xml: Xml
    kind: type
    repeated: bool
    required: bool


def _spec(cls: type) -> tuple[_Field, ...]:
    return _spec_of(cls)  # mypy holds type[T] unhashable; as plain `type` it is cached


@functools.cache
def _spec_of(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind, repeated = _shape(hints[f.name])
        required = f.default is dataclasses.MISSING
        out.append(_Field(f.name, f.metadata["xml"], kind, repeated, required))
    return tuple(out)


def _shape(hint: Any) -> tuple[type, bool]:
    """(item type, repeated) of `X`, `X | None` or `tuple[X, ...]`."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return typing.get_args(hint)[0], True
    if origin in (typing.Union, types.UnionType):
        (kind,) = (a for a in typing.get_args(hint) if a is not type(None))
        return kind, False
    return hint, False


def _items(wrapper: _E, f: _Field, where: str) -> list[Any]:
    tag, out = _item_tag(f), []
    for child in wrapper:
        if not isinstance(child.tag, str):
            continue
        if child.tag != tag:
            raise _error(f"unexpected element {_show(child.tag)} in {where}")
        if not _is_nil(child):
            out.append(_value(child, f.kind, f"{where}/{f.xml.item}"))
    return out


def _item_tag(f: _Field) -> str:
    ns = f.xml.ns if f.xml.item_ns is None else f.xml.item_ns
    return Xml(ns, f.xml.item or "").tag


def _value(el: _E, kind: type, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return decode(el, kind, where)
    if kind is XmlTree:
        return XmlTree.of(el)
    if any(isinstance(c.tag, str) for c in el):
        raise _error(f"element {where} must hold text, not elements")
    return _scalar(kind, el.text or "", where)


def _scalar(kind: type, text: str, where: str) -> Any:
    if kind is str:
        return text
    raw = text.strip()  # xs:int, xs:boolean, xs:dateTime and enumerations collapse whitespace
    if kind is bool:
        if raw in ("true", "1", "false", "0"):
            return raw in ("true", "1")
        raise _error(f"{where} is {raw[:40]!r}, not a boolean (true or false)")
    if kind is int:
        if _INT.fullmatch(raw) and _INT_MIN <= int(raw) <= _INT_MAX:
            return int(raw)
        raise _error(f"{where} is {raw[:40]!r}, not a 32-bit integer")
    if kind is datetime:
        try:
            if _DATETIME.fullmatch(raw):
                return datetime.fromisoformat(raw)
        except ValueError:
            pass
        raise _error(f"{where} is {raw[:40]!r}, not an xs:dateTime")
    if issubclass(kind, Enum):
        try:
            return kind(raw)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in kind)
            raise _error(f"{where} is {raw[:40]!r}, not one of {allowed}") from None
    raise TypeError(f"no XML mapping for {kind!r}")  # a mistake in a dataclass, not input


def _put(parent: _E, tag: str, kind: type, value: Any) -> None:
    if dataclasses.is_dataclass(kind):
        encode(parent, tag, value)
    elif kind is XmlTree:
        parent.append(_tree(tag, value))
    else:
        name = etree.QName(tag).localname
        text = _text(kind, value, name)
        try:
            etree.SubElement(parent, tag).text = text
        except ValueError:  # lxml refuses NUL, most C0 controls and lone surrogates
            raise ValueError(f"{name} holds a character XML 1.0 cannot carry") from None


def _tree(tag: str, text: str) -> _E:
    name = etree.QName(tag).localname
    try:
        root = parse_any(text.encode("utf-8"))
    except (UnsafeXmlError, UnicodeEncodeError) as e:
        raise ValueError(f"{name} is not an XML tree: {e}") from None
    if root.tag != tag:
        raise ValueError(f"{name} holds a {_show(root.tag)} tree, not {_show(tag)}")
    return root


def _set(el: _E, name: str, text: str) -> None:
    try:
        el.set(name, text)
    except ValueError:
        raise ValueError(f"@{name} holds a character XML 1.0 cannot carry") from None


def _text(kind: type, value: Any, name: str) -> str:
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"{name} is {value}, outside the 32-bit range of xs:int")
        return str(int(value))
    if kind is datetime:
        offset = value.utcoffset()
        if offset is not None and offset.total_seconds() % 60:
            raise ValueError(f"{name} has a UTC offset in seconds, which xs:dateTime lacks")
        return str(value.isoformat())
    return str(value.value if isinstance(value, Enum) else value)


def _is_nil(el: _E) -> bool:
    return el.get(_NIL) in ("true", "1")


def _show(tag: str) -> str:
    q = etree.QName(tag)
    return f"{{{q.namespace}}}{q.localname}" if q.namespace else q.localname


def _error(reason: str) -> SoapError:
    return SoapError(FaultCode.CLIENT, reason)
