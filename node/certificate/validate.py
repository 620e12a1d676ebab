"""Validation in layers: safe XML, schema, ISPM 12 mandatory content, harmonised codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from node.certificate import safe_xml
from node.certificate.codes import code_findings
from node.certificate.findings import Area, Finding, Level, is_valid
from node.certificate.mandatory import mandatory_findings
from node.certificate.model import Certificate
from node.certificate.schema import load_schema, schema_findings
from node.certificate.xml_parse import ModelError, certificate_from_tree
from node.codelists.lists import CodeLists, bundled
from node.errors import UnsafeXmlError


@dataclass(frozen=True, slots=True)
class Report:
    """The findings on one document and, when it could be read, its certificate."""

    findings: tuple[Finding, ...]
    certificate: Certificate | None = None

    @property
    def valid(self) -> bool:
        return self.certificate is not None and is_valid(self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "certificate": None if self.certificate is None else self.certificate.number,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class Validator:
    """A configured validator; build it once (the schema compiles once) and reuse it."""

    schema: etree.XMLSchema
    codelists: CodeLists
    limits: safe_xml.XmlLimits = field(default=safe_xml.DEFAULT_LIMITS)

    @classmethod
    def default(
        cls,
        *,
        schema_dir: Path | None = None,
        codelists: CodeLists | None = None,
        limits: safe_xml.XmlLimits = safe_xml.DEFAULT_LIMITS,
    ) -> Validator:
        """Our bundled schema and code lists, or an official XSD set on disk."""
        return cls(load_schema(schema_dir), codelists or bundled(), limits)

    def validate(self, data: bytes) -> Report:
        """All four layers on `data`; never raises for bad input, it reports it."""
        try:
            root = safe_xml.parse(data, self.limits)
        except UnsafeXmlError as e:
            return Report((Finding(Level.SEVERE, Area.SCHEMA, str(e)),))
        findings = schema_findings(root.getroottree(), self.schema)
        findings += mandatory_findings(root)
        findings += code_findings(root, self.codelists)
        certificate: Certificate | None = None
        try:
            certificate = certificate_from_tree(root)
        except ModelError as e:
            if not any(f.level is Level.SEVERE for f in findings):
                findings.append(Finding(Level.SEVERE, Area.SCHEMA, str(e), e.xpath, e.line))
        findings.sort(key=lambda f: (f.line or 0, f.area.value))
        return Report(tuple(findings), certificate)
