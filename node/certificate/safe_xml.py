"""Layer 1 of validation: bytes to an element tree, refusing hostile or foreign XML.

Refused before anything else reads the document: everything node.hostile_xml refuses
(oversize, not UTF-8, a DTD, too deep or too many elements), and a root that is not
rsm:SPSCertificate.
"""

from __future__ import annotations

from lxml import etree

from node.certificate.xmlns import ROOT_TAG
from node.errors import UnsafeXmlError
from node.hostile_xml import (
    DEFAULT_LIMITS,
    XmlLimits,
    check_bytes,
    check_tree,
    parse_any,
    validating_parser,
)

__all__ = ["DEFAULT_LIMITS", "XmlLimits", "parse", "parse_any", "parse_if_valid"]

_E = etree._Element


def parse(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> _E:
    """The rsm:SPSCertificate root of `data`; raises UnsafeXmlError saying why not."""
    root = parse_any(data, limits)
    _check_root(root)
    return root


def parse_if_valid(
    data: bytes, schema: etree.XMLSchema, limits: XmlLimits = DEFAULT_LIMITS
) -> _E | None:
    """The root, parsed and schema-validated in one pass; None if not valid or not well-formed.

    libxml2 validates while it parses, which costs less than a second walk over a new
    tree. On None, call `parse` (for the reason a document is refused) and validate the
    tree for every schema finding: this path only tells valid from not. Raises
    UnsafeXmlError like `parse`.
    """
    check_bytes(data, limits)
    try:
        root = etree.fromstring(data, validating_parser(schema))
    except etree.XMLSyntaxError:
        return None
    check_tree(root, data, limits)
    _check_root(root)
    return root


def _check_root(root: _E) -> None:
    if root.tag != ROOT_TAG:
        q = etree.QName(root)
        raise UnsafeXmlError(
            f"root element is {{{q.namespace or ''}}}{q.localname}, expected "
            "rsm:SPSCertificate in urn:un:unece:uncefact:data:standard:SPSCertificate:17"
        )
