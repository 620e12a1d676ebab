"""Bytes to an element tree, refusing hostile XML: the first check on any XML the project reads.

Refused before anything else reads a document: a body over the size limit, bytes that
are not UTF-8, any DTD (which is how entity expansion and external entities get in),
and nesting or element counts over the limits. Shared by the certificate
(node.certificate.safe_xml, which also checks the root), the code lists and the IPPC
contract (node.ippc), so it depends on nothing of theirs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, cast

from lxml import etree

from node.errors import UnsafeXmlError

_E = etree._Element

# An XML declaration naming an encoding other than UTF-8 (the ePhyto exchange is UTF-8).
_ENCODING_DECL = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """How much a document may be; defaults fit the largest real ePhytos with attachments."""

    max_bytes: int = 8 * 1024 * 1024
    max_depth: int = 32
    max_elements: int = 100_000


DEFAULT_LIMITS = XmlLimits()


_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "collect_ids": False,
}
# lxml's advice is one parser per thread; the node validates on one thread (the loop).
_PARSER = etree.XMLParser(**_PARSER_OPTIONS)


def parse_any(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> _E:
    """The root of any UTF-8 XML document, with every check but the root's name.

    For every XML the project reads but a certificate: code-list schemas, SOAP messages.
    """
    check_bytes(data, limits)
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        line = f" (line {e.lineno})" if e.lineno else ""
        raise UnsafeXmlError(f"not well-formed XML{line}: {e.msg}") from None
    check_tree(root, data, limits)
    return root


def check_bytes(data: bytes, limits: XmlLimits) -> None:
    """Refuse, before parsing, what the raw bytes already show: size, encoding, a DTD."""
    if len(data) > limits.max_bytes:
        raise UnsafeXmlError(
            f"document is {len(data)} bytes, over the limit of {limits.max_bytes} bytes"
        )
    if not data or data.isspace():  # isspace stops at the first other byte; strip copies
        raise UnsafeXmlError("document is empty")
    _check_utf8(data)
    # A DTD is never needed by an ePhyto and is the door for billion-laughs and XXE:
    # refuse it outright rather than trust parser switches to defuse it.
    head = data[: min(len(data), 64 * 1024)]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in data:
        raise UnsafeXmlError("document has a DTD (DOCTYPE or ENTITY); DTDs are not accepted")


def check_tree(root: _E, data: bytes, limits: XmlLimits) -> None:
    """Refuse, after parsing, a DTD the byte scan missed and a tree over the limits."""
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXmlError("document has a DTD; DTDs are not accepted")
    _check_shape(root, data, limits)


_VALIDATING: dict[int, tuple[etree.XMLSchema, etree.XMLParser]] = {}


def validating_parser(schema: etree.XMLSchema) -> etree.XMLParser:
    """A hardened parser that also validates against `schema`, one per schema."""
    cached = _VALIDATING.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, etree.XMLParser(schema=schema, **_PARSER_OPTIONS))
        _VALIDATING[id(schema)] = cached
    return cached[1]


def _check_utf8(data: bytes) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsafeXmlError("document is UTF-16; ePhytos are exchanged as UTF-8")
    body = data.removeprefix(b"\xef\xbb\xbf")
    match = _ENCODING_DECL.match(body)
    if match and match.group(1).lower() not in (b"utf-8", b"utf8"):
        encoding = match.group(1).decode("ascii")
        raise UnsafeXmlError(f"document declares encoding {encoding}; only UTF-8 is accepted")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeXmlError(f"document is not valid UTF-8 (byte offset {e.start})") from None


def _check_shape(root: _E, data: bytes, limits: XmlLimits) -> None:
    """Depth and size limits; libxml2's own depth limit (256) is far higher than ours.

    Compiled XPath runs in C: a Python walk over every element costs more than the
    parse itself. An element takes at least four bytes (`<a/>`), so a small document
    cannot break the element limit; `<` bytes bound the count of a larger one, and the
    exact count runs only near the limit.
    """
    too_deep, count = _shape_queries(limits.max_depth)
    if too_deep(root):
        raise UnsafeXmlError(f"document nests deeper than {limits.max_depth} levels")
    if len(data) <= 4 * limits.max_elements or data.count(b"<") <= limits.max_elements:
        return
    elements = int(cast(float, count(root)))
    if elements > limits.max_elements:
        raise UnsafeXmlError(f"document has more than {limits.max_elements} elements")


@functools.lru_cache(maxsize=8)
def _shape_queries(max_depth: int) -> tuple[etree.XPath, etree.XPath]:
    too_deep = etree.XPath("boolean(/*" + "/*" * max_depth + ")")
    return too_deep, etree.XPath("count(//*)")
