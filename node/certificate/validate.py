"""Validation in layers: safe XML, schema, ISPM 12 mandatory content, harmonised codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from node.certificate import safe_xml
from node.certificate.codes import code_check
from node.certificate.findings import Area, Finding, Level, is_valid
from node.certificate.mandatory import mandatory_findings
from node.certificate.model import Certificate
from node.certificate.schema import load_schema, schema_findings
from node.certificate.xml_parse import (
    ModelError,
    Routing,
    certificate_from_tree,
    routing_from_tree,
)
from node.certificate.xmlns import ram, rsm
from node.codelists.lists import CodeLists, bundled
from node.errors import UnsafeXmlError

_DOCUMENT, _ID = rsm("SPSExchangedDocument"), ram("ID")


class Report:
    """The findings on one document and, read on demand, its certificate.

    Reading the model is left until asked for: a relay or a bulk validation needs the
    verdict, not the model. The mandatory layer checks everything the model reads that
    the schema does not (dates, sequence numbers), so a valid document always reads.
    """

    __slots__ = ("_certificate", "_root", "findings", "placeholder_lists")

    def __init__(
        self,
        findings: tuple[Finding, ...],
        root: etree._Element | None = None,
        placeholder_lists: tuple[str, ...] = (),
    ) -> None:
        self.findings = findings
        # Code lists whose placeholder entries, not an official edition, passed a code.
        self.placeholder_lists = placeholder_lists
        self._root = root
        self._certificate: Certificate | bool | None = False  # False: not read yet

    @property
    def valid(self) -> bool:
        return self._root is not None and is_valid(self.findings)

    @property
    def certificate(self) -> Certificate | None:
        """The certificate, or None when the document cannot be read into the model."""
        if self._certificate is False:
            try:
                self._certificate = (
                    None if self._root is None else certificate_from_tree(self._root)
                )
            except ModelError:
                self._certificate = None
        return self._certificate if isinstance(self._certificate, Certificate) else None

    @property
    def routing(self) -> Routing | None:
        """What routing needs (number, type, status, countries), read cheaply; None when
        the document cannot be read."""
        if self._root is None:
            return None
        try:
            return routing_from_tree(self._root)
        except ModelError:
            return None

    def to_dict(self) -> dict[str, object]:
        number = None
        if self._root is not None:
            found = self._root.find(f"{_DOCUMENT}/{_ID}")
            number = None if found is None else found.text
        return {
            "valid": self.valid,
            "certificate": number,
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

    def use_codelists(self, codelists: CodeLists) -> None:
        """Validate with `codelists` from now on: a running node's update from the registry.

        The one change a validator allows, so that every holder of it (the exchange, the
        API, the hub puller) sees newer lists without a restart. One reference is
        replaced, which is atomic: a validation under way keeps the lists it started with.
        """
        object.__setattr__(self, "codelists", codelists)

    def validate(self, data: bytes) -> Report:
        """All four layers on `data`; never raises for bad input, it reports it."""
        try:
            root = safe_xml.parse_if_valid(data, self.schema, self.limits)
            findings: list[Finding] = []
            if root is None:  # not schema-valid, or refused: find out which, and every finding
                root = safe_xml.parse(data, self.limits)
                findings = schema_findings(root.getroottree(), self.schema)
        except UnsafeXmlError as e:
            return Report((Finding(Level.SEVERE, Area.SCHEMA, str(e)),))
        findings += mandatory_findings(root)
        mapping, placeholder_lists = code_check(root, self.codelists)
        findings += mapping
        findings.sort(key=lambda f: (f.line or 0, f.area.value))
        return Report(tuple(findings), root, placeholder_lists)
