"""Validation findings, located and graded the way the IPPC Hub reports them."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from lxml import etree

from node.certificate.xmlns import PREFIX_BY_NAMESPACE


class Level(enum.Enum):
    """How bad a finding is; only SEVERE makes a certificate invalid."""

    SEVERE = "SEVERE"
    WARNING = "WARNING"
    INFO = "INFO"


class Area(enum.Enum):
    """Which layer of validation raised the finding (the Hub's vocabulary)."""

    SCHEMA = "Schema"
    MANDATORY = "MandatoryElements"
    MAPPING = "Mapping"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a certificate, with where it is."""

    level: Level
    area: Area
    message: str
    xpath: str = "/"
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "level": self.level.value,
            "area": self.area.value,
            "message": self.message,
            "xpath": self.xpath,
            "line": self.line,
        }

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "line ?"
        return f"{self.level.value} {self.area.value} {where} {self.xpath}: {self.message}"


def is_valid(findings: Iterable[Finding]) -> bool:
    """A certificate is valid when no finding is SEVERE."""
    return all(f.level is not Level.SEVERE for f in findings)


def finding_at(element: etree._Element, level: Level, area: Area, message: str) -> Finding:
    """A finding located at an element: readable prefixed XPath and source line."""
    line = cast("int | None", element.sourceline)  # lxml-stubs types sourceline wrongly
    return Finding(level, area, message, xpath_of(element), line)


def xpath_of(element: etree._Element) -> str:
    """A readable XPath such as /rsm:SPSCertificate/rsm:SPSConsignment/ram:ID[1].

    lxml's own getpath() falls back to `*` for namespaced elements; this uses the
    standard prefixes and a 1-based position among same-named siblings.
    """
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        qname = etree.QName(node)
        prefix = PREFIX_BY_NAMESPACE.get(qname.namespace or "", "")
        name = f"{prefix}:{qname.localname}" if prefix else qname.localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))
