"""Layer 3 of validation: the content ISPM 12 requires of a certificate.

The schema says what may appear; this layer says what a phytosanitary certificate
(851) or re-export certificate (657) must say, box by box of the ISPM 12 model
certificates, and that the values the model reads (dates, line numbers) are readable.

The rules are data: each is an XPath selecting the offending elements, a level and a
message. That keeps them readable as a table (docs/validation.md mirrors it) and fast:
all rules run at once as one compiled union in libxml2, and only a certificate with a
problem pays for finding out which rules it broke.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from lxml import etree

from node.certificate.findings import Area, Finding, Level, finding_at
from node.certificate.xml_parse import parse_datetime
from node.certificate.xmlns import NSMAP, udt

_E = etree._Element

_DOC = "/rsm:SPSCertificate/rsm:SPSExchangedDocument"
_SIGNATORY = f"{_DOC}/ram:SignatorySPSAuthentication"
_CONSIGNMENT = "/rsm:SPSCertificate/rsm:SPSConsignment"
_ITEM = f"{_CONSIGNMENT}/ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem"
_REEXPORT_ITEM = (
    "/rsm:SPSCertificate[normalize-space(rsm:SPSExchangedDocument/ram:TypeCode)='657']"
    "/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem"
)


def _note(subject: str, scope: str = "ram:AdditionalInformationSPSNote") -> str:
    return f"{scope}[normalize-space(ram:Subject)='{subject}']"


def _empty(path: str) -> str:
    return f"{path}[not(normalize-space())]"


def _ticks(first: str, second: str) -> str:
    """A 657 line item where not exactly one box of a pair is ticked."""
    subjects = f"normalize-space(ram:Subject)='{first}' or normalize-space(ram:Subject)='{second}'"
    ticked = (
        f"ram:AdditionalInformationSPSNote[({subjects}) and normalize-space(ram:Content)='true']"
    )
    return f"self::*[count({ticked}) != 1]"


def _lacks(test: str) -> str:
    """The context element itself, when `test` finds nothing in it."""
    return f"self::*[not({test})]"


_DOC_NOTE = "ram:IncludedSPSNote"
_REPLACEMENT_NOTES = (
    "ram:IncludedSPSNote[starts-with(normalize-space(ram:Subject), 'ADRP')"
    " or normalize-space(ram:Subject)='ADRD']"
)
_QUANTITY = (
    "ram:NetWeightMeasure or ram:GrossWeightMeasure or ram:NetVolumeMeasure"
    f" or ram:GrossVolumeMeasure or {_note('OQV')}"
)
_TREATMENT_TYPE = (
    "ram:ApplicableSPSProcessCharacteristic[normalize-space(ram:Description[1])='TTL1'"
    " or normalize-space(ram:Description[1])='TTFT']"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One ISPM 12 requirement: what breaks it, how bad that is, and what to say.

    `select`, relative to each `context` element (the aggregate that owns the ISPM 12
    box), picks the offending elements; the finding is located at them.
    """

    level: Level
    message: str
    context: str
    select: str

    @property
    def path(self) -> str:
        return f"{self.context}/{self.select}"


SEVERE, WARNING = Level.SEVERE, Level.WARNING

RULES: tuple[Rule, ...] = (
    Rule(SEVERE, "certificate number is empty", _DOC, _empty("ram:ID")),
    Rule(SEVERE, "certificate type (851 or 657) is empty", _DOC, _empty("ram:TypeCode")),
    Rule(SEVERE, "certificate status is empty", _DOC, _empty("ram:StatusCode")),
    Rule(
        SEVERE,
        "issuing plant protection organization is empty",
        _DOC,
        _empty("ram:IssuerSPSParty/ram:Name"),
    ),
    Rule(
        SEVERE,
        "replacement notes without ADRPN (number of the replaced certificate)",
        _DOC,
        f"{_lacks(_note('ADRPN', _DOC_NOTE))}/{_REPLACEMENT_NOTES}[1]",
    ),
    Rule(
        WARNING,
        "replacement without ADRPR (reason for replacement)",
        _DOC,
        f"{_lacks(_note('ADRPR', _DOC_NOTE))}/{_note('ADRPN', _DOC_NOTE)}[1]",
    ),
    Rule(SEVERE, "place of issue is empty", _SIGNATORY, _empty("ram:IssueSPSLocation/ram:Name[1]")),
    Rule(
        SEVERE,
        "name of authorized officer is missing",
        _SIGNATORY,
        _lacks("ram:ProviderSPSParty/ram:SpecifiedSPSPerson/ram:Name[normalize-space()]"),
    ),
    Rule(
        WARNING,
        "no certifying statement (IncludedSPSClause)",
        _SIGNATORY,
        _lacks("ram:IncludedSPSClause"),
    ),
    Rule(
        SEVERE,
        "name of exporter (consignor) is empty",
        _CONSIGNMENT,
        _empty("ram:ConsignorSPSParty/ram:Name"),
    ),
    Rule(
        WARNING,
        "address of exporter (consignor) is missing",
        _CONSIGNMENT,
        "ram:ConsignorSPSParty[not(ram:SpecifiedSPSAddress)]",
    ),
    Rule(
        SEVERE,
        "declared name of consignee is empty",
        _CONSIGNMENT,
        _empty("ram:ConsigneeSPSParty/ram:Name"),
    ),
    Rule(SEVERE, "exporting country is empty", _CONSIGNMENT, _empty("ram:ExportSPSCountry/ram:ID")),
    Rule(SEVERE, "importing country is empty", _CONSIGNMENT, _empty("ram:ImportSPSCountry/ram:ID")),
    Rule(
        WARNING,
        "declared point of entry (UnloadingBaseportSPSLocation) is missing",
        _CONSIGNMENT,
        _lacks("ram:UnloadingBaseportSPSLocation"),
    ),
    Rule(
        WARNING,
        "declared means of conveyance (MainCarriageSPSTransportMovement) is missing",
        _CONSIGNMENT,
        _lacks("ram:MainCarriageSPSTransportMovement"),
    ),
    Rule(
        SEVERE,
        "consignment lists no commodity",
        _CONSIGNMENT,
        _lacks("ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem"),
    ),
    Rule(SEVERE, "name of produce is empty", _ITEM, _empty("ram:Description[1]")),
    Rule(
        SEVERE,
        "line item number (SequenceNumeric) is not a whole number",
        _ITEM,
        "ram:SequenceNumeric[normalize-space()=''"
        " or translate(normalize-space(), '0123456789', '') != '']",
    ),
    Rule(
        SEVERE,
        "botanical name of plants (ScientificName) is missing",
        _ITEM,
        _lacks("ram:ScientificName[1][normalize-space()]"),
    ),
    Rule(
        SEVERE,
        "quantity declared is missing (a weight, a volume, or OQV/OQU)",
        _ITEM,
        _lacks(_QUANTITY),
    ),
    Rule(
        WARNING,
        "other quantity (OQV) without its unit (OQU)",
        _ITEM,
        f"{_lacks(_note('OQU'))}/{_note('OQV')}[1]",
    ),
    Rule(
        WARNING,
        "number and description of packages is missing",
        _ITEM,
        _lacks(f"ram:PhysicalSPSPackage or {_note('OPTND')}"),
    ),
    Rule(
        SEVERE,
        "place of origin (OriginSPSCountry) is missing",
        _ITEM,
        _lacks("ram:OriginSPSCountry"),
    ),
    Rule(
        WARNING,
        "treatment without a type (TTL1) or full text (TTFT)",
        _ITEM,
        f"ram:AppliedSPSProcess[not({_TREATMENT_TYPE})]",
    ),
    Rule(
        SEVERE,
        "re-export certificate without RPCCO (country of origin of the re-exported goods)",
        _REEXPORT_ITEM,
        _lacks(_note("RPCCO")),
    ),
    Rule(
        SEVERE,
        "re-export certificate without RPCRF (reference of the original phytosanitary certificate)",
        _REEXPORT_ITEM,
        _lacks(_note("RPCRF")),
    ),
    Rule(
        WARNING,
        "re-export box 'original certificate or certified true copy': tick exactly one of "
        "RPCOR, RPCTC",
        _REEXPORT_ITEM,
        _ticks("RPCOR", "RPCTC"),
    ),
    Rule(
        WARNING,
        "re-export box 'packed or repacked': tick exactly one of RPCPK, RPCRP",
        _REEXPORT_ITEM,
        _ticks("RPCPK", "RPCRP"),
    ),
    Rule(
        WARNING,
        "re-export box 'original or new containers': tick exactly one of RPCOC, RPCNC",
        _REEXPORT_ITEM,
        _ticks("RPCOC", "RPCNC"),
    ),
)


def _any_broken(rules: tuple[Rule, ...]) -> str:
    """One query that finds whether any rule is broken, walking each context once."""
    by_context: dict[str, list[str]] = {}
    for rule in rules:
        by_context.setdefault(rule.context, []).append(rule.select)
    return " | ".join(f"{context}[{' or '.join(tests)}]" for context, tests in by_context.items())


_COMPILED = tuple(etree.XPath(rule.path, namespaces=NSMAP) for rule in RULES)
_ANY_BROKEN = etree.XPath(_any_broken(RULES), namespaces=NSMAP)
_DATETIME_STRING = udt("DateTimeString")


def mandatory_findings(root: _E) -> list[Finding]:
    """What ISPM 12 requires and the document lacks, each finding located."""
    findings = list(_unreadable_dates(root))
    if not _selected(_ANY_BROKEN, root):
        return findings
    for rule, query in zip(RULES, _COMPILED, strict=True):
        findings.extend(
            finding_at(el, rule.level, Area.MANDATORY, rule.message)
            for el in _selected(query, root)
        )
    return findings


def _selected(query: etree.XPath, root: _E) -> list[_E]:
    return cast(list[_E], query(root))


def _unreadable_dates(root: _E) -> Iterator[Finding]:
    """Every date-time must be ISO 8601: the model, and the importing NPPO, read them."""
    for el in root.iter(_DATETIME_STRING):
        try:
            parse_datetime(el.text or "")
        except ValueError:
            parent = el.getparent()
            what = "date" if parent is None else etree.QName(parent).localname
            yield finding_at(
                el,
                Level.SEVERE,
                Area.MANDATORY,
                f"{what} is not an ISO 8601 date-time: {(el.text or '')!r}",
            )
