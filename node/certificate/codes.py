"""The harmonised-codes ("Mapping") layer: every coded value checked against its list.

Codes that make the certificate unreadable for the importing NPPO (countries,
document type and status, units, transport mode, the re-export booleans) are
SEVERE; codes from the IPPC harmonised term lists, which are still evolving and
often filled with national free text, are WARNING. So are the UN/LOCODEs of the ports
of loading and entry: the D17A schema leaves that ID free, and certificates in use put
other things there (a country code, a national port number).

This layer runs inside a 0.5 ms validation budget, so it walks the tree once
with lxml's C-level multi-tag filter, dispatching on the containing element,
instead of one XPath per rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from lxml import etree

from node.certificate.findings import Area, Finding, Level, finding_at
from node.certificate.xmlns import ROOT_TAG, ram, rsm
from node.codelists.lists import CodeList, CodeLists

# Short titles for the messages; the list's own version is appended.
TITLES: Final[dict[str, str]] = {
    "countries": "ISO 3166-1 alpha-2",
    "units": "UN/ECE Rec 20",
    "package_types": "UN/ECE Rec 21",
    "transport_modes": "UN/ECE Rec 19",
    # Bundled for the hub and the national systems; no D17A element of the ePhyto
    # profile carries a Rec 28 code (UsedSPSTransportMeans has a Name only).
    "transport_means": "UN/ECE Rec 28",
    "certificate_types": "UN/CEFACT 1001",
    "status_codes": "UN/CEFACT 4405",
    "treatment_types": "IPPC ePhyto treatment types",
    "intended_uses": "IPPC ePhyto intended uses",
    "conditions": "IPPC ePhyto product conditions",
    "commodity_classes": "IPPC ePhyto commodity classes",
    "certifying_statements": "IPPC ePhyto certifying statements",
    "note_subjects": "IPPC ePhyto tag acronyms",
}

# Re-export checkboxes: the Hub reads them as xsd:boolean literals.
BOOLEAN_NOTES: Final = frozenset(
    {"RPCOR", "RPCTC", "RPCPK", "RPCRP", "RPCOC", "RPCNC", "RPCPC", "RPCAI"}
)
_BOOLEANS: Final = frozenset({"true", "false"})
_HS_CODE: Final = re.compile(r"[0-9]{4,10}")
_TREATMENT_LEVELS: Final = frozenset({"TTL1", "TTL2"})

_ID: Final = ram("ID")
_TYPE_CODE: Final = ram("TypeCode")
_STATUS_CODE: Final = ram("StatusCode")
_MODE_CODE: Final = ram("ModeCode")
_CONTENT: Final = ram("Content")
_SYSTEM_NAME: Final = ram("SystemName")
_CLASS_CODE: Final = ram("ClassCode")
_CLASS_NAME: Final = ram("ClassName")
_DESCRIPTION: Final = ram("Description")
_SIGNATORY: Final = ram("SignatorySPSAuthentication")
_UNIT_CODE: Final = "unitCode"
_LOADING_PORT: Final = ram("LoadingBaseportSPSLocation")
_ENTRY_PORT: Final = ram("UnloadingBaseportSPSLocation")


class _Check:
    """The lists resolved once per call, and the findings gathered so far."""

    __slots__ = (
        "certificate_types",
        "class_terms",
        "commodity_classes",
        "condition_terms",
        "conditions",
        "countries",
        "findings",
        "intended_uses",
        "lists",
        "note_subjects",
        "package_types",
        "placeholder_hits",
        "placeholder_terms",
        "statements",
        "status_codes",
        "transport_modes",
        "treatment_types",
        "units",
        "use_terms",
    )

    def __init__(self, lists: CodeLists) -> None:
        self.lists = lists
        self.countries = lists.get("countries")
        self.units = lists.get("units")
        self.package_types = lists.get("package_types")
        self.transport_modes = lists.get("transport_modes")
        self.certificate_types = lists.get("certificate_types")
        self.status_codes = lists.get("status_codes")
        self.treatment_types = lists.get("treatment_types")
        self.intended_uses = lists.get("intended_uses")
        self.conditions = lists.get("conditions")
        self.commodity_classes = lists.get("commodity_classes")
        self.statements = lists.get("certifying_statements")
        self.note_subjects = lists.get("note_subjects")
        # The IPPC term lists hold English words, not codes: certificates write
        # "Animal Feed" for "Animal feed", so those compare case-insensitively.
        self.use_terms = _terms(self.intended_uses)
        self.condition_terms = _terms(self.conditions)
        self.class_terms = _terms(self.commodity_classes)
        self.placeholder_terms = {
            code_list.name: frozenset(code.casefold() for code in code_list.placeholders)
            for code_list in (self.intended_uses, self.conditions, self.commodity_classes)
        }
        self.findings: list[Finding] = []
        # The lists whose placeholder entries (ours, not an official edition) passed a code.
        self.placeholder_hits: set[str] = set()

    def code(self, element: etree._Element, code_list: CodeList, level: Level, what: str) -> str:
        """Check the element's text against a list; return the stripped text."""
        code = (element.text or "").strip()
        if code not in code_list.codes:
            self.unknown(element, code, code_list, level, what)
        elif code in code_list.deprecated:
            self.deprecated(element, code, code_list, what)
        elif code in code_list.placeholders:
            self.placeholder_hits.add(code_list.name)
        return code

    def deprecated(
        self, element: etree._Element, code: str, code_list: CodeList, what: str
    ) -> None:
        title = TITLES.get(code_list.name, code_list.name)
        message = (
            f"{what} {code!r} ({code_list.codes[code]}) is deprecated "
            f"({title}, {code_list.deprecated[code]})"
        )
        self.findings.append(finding_at(element, Level.WARNING, Area.MAPPING, message))

    def term(
        self, element: etree._Element, code_list: CodeList, terms: frozenset[str], what: str
    ) -> None:
        """Check the element's text against an IPPC term list, ignoring case (WARNING)."""
        term = (element.text or "").strip()
        folded = term.casefold()
        if folded not in terms:
            self.unknown(element, term, code_list, Level.WARNING, what)
        elif folded in self.placeholder_terms[code_list.name]:
            self.placeholder_hits.add(code_list.name)

    def unknown(
        self, element: etree._Element, code: str, code_list: CodeList, level: Level, what: str
    ) -> None:
        title = TITLES.get(code_list.name, code_list.name)
        retired = code_list.deleted.get(code)
        if retired is not None:
            # A code an edition deleted is known, and was valid once: the exporter's
            # system has an old list, which is worth saying, but it is not garbage.
            message = (
                f"{what} {code!r} ({retired.label}) was deleted from {title} in {retired.edition}"
            )
            self.findings.append(finding_at(element, Level.WARNING, Area.MAPPING, message))
            return
        message = f"unknown {what} {code!r} ({title}, version {code_list.version})"
        if code_list.placeholders:
            message += (
                "; judged against a placeholder list, not an official edition "
                "(import the official list: docs/operations.md, code lists)"
            )
        self.findings.append(finding_at(element, level, Area.MAPPING, message))


def _terms(code_list: CodeList) -> frozenset[str]:
    return frozenset(code.casefold() for code in code_list.codes)


def _country(element: etree._Element, check: _Check) -> None:
    # ExportSPSCountry, ImportSPSCountry, ...: their ram:ID is the ISO code.
    for child in element.iterchildren(_ID):
        check.code(child, check.countries, Level.SEVERE, "country code")


def _country_id(element: etree._Element, check: _Check) -> None:
    check.code(element, check.countries, Level.SEVERE, "country code")


def _exchanged_document(element: etree._Element, check: _Check) -> None:
    # One filtered pass over the document's many children for both codes.
    for child in element.iterchildren(_TYPE_CODE, _STATUS_CODE):
        if child.tag == _TYPE_CODE:
            check.code(child, check.certificate_types, Level.SEVERE, "document type code")
        else:
            check.code(child, check.status_codes, Level.SEVERE, "status code")


def _package(element: etree._Element, check: _Check) -> None:
    for child in element.iterchildren(_TYPE_CODE):
        check.code(child, check.package_types, Level.WARNING, "package type code")


def _carriage(element: etree._Element, check: _Check) -> None:
    for child in element.iterchildren(_MODE_CODE):
        check.code(child, check.transport_modes, Level.SEVERE, "transport mode code")


def _subject(element: etree._Element, check: _Check) -> None:
    # Visited as a leaf rather than through its note (ram:Subject occurs only in
    # the D17A note type): the notes are the bulk of a certificate, so this path
    # is kept to a text read and a dict lookup.
    text = element.text
    subject = text.strip() if text else ""
    if subject not in check.note_subjects.codes:
        check.unknown(element, subject, check.note_subjects, Level.WARNING, "note subject")
    elif subject == "RPCCO":
        for content in element.itersiblings(_CONTENT):
            check.code(content, check.countries, Level.SEVERE, "country code")
    elif subject in BOOLEAN_NOTES:
        # Content follows Subject in the note's sequence, so following siblings suffice.
        for content in element.itersiblings(_CONTENT):
            value = (content.text or "").strip()
            if value not in _BOOLEANS:
                message = f"{subject} note content must be 'true' or 'false', not {value!r}"
                check.findings.append(finding_at(content, Level.SEVERE, Area.MAPPING, message))


def _classification(element: etree._Element, check: _Check) -> None:
    # A classification has two or three children: plain access beats filtered iterators.
    children = list(element)
    system = ""
    for child in children:
        if child.tag == _SYSTEM_NAME:
            system = check.code(child, check.note_subjects, Level.WARNING, "classification system")
    if system == "HS":
        for child in children:
            if child.tag == _CLASS_CODE:
                code = (child.text or "").strip()
                # HS headings are 4 digits, subheadings 6, national tariff lines up to 10.
                if not _HS_CODE.fullmatch(code):
                    message = f"HS class code {code!r} must be 4 to 10 digits"
                    check.findings.append(finding_at(child, Level.WARNING, Area.MAPPING, message))
    elif system == "IPPCPCVP":
        for child in children:
            if child.tag == _CLASS_NAME:
                check.term(child, check.commodity_classes, check.class_terms, "commodity class")
    elif system == "IPPCPCC":
        for child in children:
            if child.tag == _CLASS_NAME:
                check.term(child, check.conditions, check.condition_terms, "product condition")


def _intended_use(element: etree._Element, check: _Check) -> None:
    check.term(element, check.intended_uses, check.use_terms, "intended use")


def _process_characteristic(element: etree._Element, check: _Check) -> None:
    # The first ram:Description names the characteristic (TTL1, TTL2, TTCH...),
    # the second holds its value. With two or three children, a plain scan beats
    # a filtered iterator, and the tag test also skips comments.
    descriptions = [child for child in element if child.tag == _DESCRIPTION]
    if len(descriptions) >= 2 and (descriptions[0].text or "").strip() in _TREATMENT_LEVELS:
        check.code(descriptions[1], check.treatment_types, Level.WARNING, "treatment type")


def _clause(element: etree._Element, check: _Check) -> None:
    parent = element.getparent()
    if parent is None or parent.tag != _SIGNATORY:
        return
    for child in element.iterchildren(_ID):
        check.code(child, check.statements, Level.WARNING, "certifying statement")


def _baseport(element: etree._Element, check: _Check) -> None:
    # LoadingBaseportSPSLocation, UnloadingBaseportSPSLocation: their ram:ID is the port's
    # UN/LOCODE. The locations load here, on the first certificate that carries one.
    source = check.lists.locations
    if source is None:
        return
    what = "port of loading" if element.tag == _LOADING_PORT else "point of entry"
    for child in element.iterchildren(_ID):
        code = (child.text or "").strip()
        if code not in source.get():
            message = (
                f"{what} {code!r} is not a UN/LOCODE location with a transport function "
                f"(UN/LOCODE, version {source.version})"
            )
            check.findings.append(finding_at(child, Level.WARNING, Area.MAPPING, message))


def _measure(element: etree._Element, check: _Check) -> None:
    # Measures and quantities are the only D17A elements with a unitCode (the schema
    # refuses it elsewhere), so the same single walk covers every unit.
    unit = element.get(_UNIT_CODE)
    if unit is None:
        return
    code = unit.strip()
    if code not in check.units.codes:
        check.unknown(element, code, check.units, Level.SEVERE, "unit code")
    elif code in check.units.deprecated:
        # Rec 20 Revision 17 deprecates 71 units (hectare among them): still valid.
        check.deprecated(element, code, check.units, "unit code")


_Handler = Callable[[etree._Element, _Check], None]
_MEASURES: Final = (
    "NetWeightMeasure",
    "GrossWeightMeasure",
    "NetVolumeMeasure",
    "GrossVolumeMeasure",
    "NominalGrossWeightMeasure",
    "NominalGrossVolumeMeasure",
    "DurationMeasure",
    "ValueMeasure",
    "MinimumValueMeasure",
    "MaximumValueMeasure",
    "ItemQuantity",
)

_HANDLERS: Final[dict[str, _Handler]] = {
    ram("ExportSPSCountry"): _country,
    ram("ImportSPSCountry"): _country,
    ram("TransitSPSCountry"): _country,
    ram("ReExportSPSCountry"): _country,
    ram("OriginSPSCountry"): _country,
    ram("CountryID"): _country_id,
    rsm("SPSExchangedDocument"): _exchanged_document,
    ram("PhysicalSPSPackage"): _package,
    ram("MainCarriageSPSTransportMovement"): _carriage,
    _LOADING_PORT: _baseport,
    _ENTRY_PORT: _baseport,
    ram("Subject"): _subject,
    ram("ApplicableSPSClassification"): _classification,
    ram("IntendedUse"): _intended_use,
    ram("ApplicableSPSProcessCharacteristic"): _process_characteristic,
    ram("IncludedSPSClause"): _clause,
    **{ram(tag): _measure for tag in _MEASURES},
}
_HANDLED_TAGS: Final = tuple(_HANDLERS)


# The resolved lists of the last CodeLists seen, by identity: a validator keeps one
# CodeLists for its lifetime, and resolving it (case-folded term sets) is not free.
# Like lxml parsers, this is for one thread: the node validates on its event loop.
_PREPARED: list[_Check] = []


def _prepared(lists: CodeLists) -> _Check:
    if not _PREPARED or _PREPARED[0].lists is not lists:
        _PREPARED[:] = [_Check(lists)]
    return _PREPARED[0]


def code_findings(root: etree._Element, lists: CodeLists) -> list[Finding]:
    """Mapping findings for unknown or malformed codes in an rsm:SPSCertificate.

    Anything but an SPSCertificate root gives no finding here: the schema layer
    reports a wrong document.
    """
    return code_check(root, lists)[0]


def code_check(root: etree._Element, lists: CodeLists) -> tuple[list[Finding], tuple[str, ...]]:
    """The mapping findings, and the names of the lists whose placeholder entries (not an
    official edition) passed one of the certificate's codes, sorted.

    A pass from a placeholder is no official list's pass: the report says so beside the
    findings rather than as one, since nothing is wrong with the certificate.
    """
    if root.tag != ROOT_TAG:
        return [], ()
    check = _prepared(lists)
    check.findings = []
    check.placeholder_hits = set()
    handlers = _HANDLERS
    # The C-level multi-tag filter visits only the few containers that hold codes.
    for element in root.iter(*_HANDLED_TAGS):
        handlers[element.tag](element, check)
    return check.findings, tuple(sorted(check.placeholder_hits))
