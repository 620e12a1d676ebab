"""The IPPC Hub's code-list look-ups (GetTreatmentTypes, ...) as code lists (pure).

The hub answers each look-up with one record per code per language. As a CodeList: the
English label (else the first language the hub gives for that code) in `codes`, the
other languages in `translations`, the record's other fields in `attributes` under their
WSDL names, inactive codes in `deleted`. node.codelists.hub_records is the way back, for
our hub.

Attributes of a code: fields that must be the same in every language (`level`,
`parentCode`, `docTypeOnly`, `symbol`, `type`) once; fields that may differ by language
(`additionalCode`, `optionalText`, `lastModified`, `lastModifiedBy`) as the labelled
language has them, and as `<field>_<lang>` for a language whose value differs ("" when it
has none). `lang` names the labelled language when it is not English. Blank optional
fields count as absent, so the way back gives the records again, field for field.

A code is current when one of its records is active; an inactive record beside active
ones (a language withdrawn) is left out. The list keeps no more of an inactive code than
its label (the model has no attributes for deleted codes): it comes back as one record,
`lang` en, with the mandatory `level` 1 or `docTypeOnly` 0.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from node.codelists.lists import MAX_BYTES, CodeList, CodeLists, Retired, version_key
from node.errors import InputError
from node.ippc import (
    AdditionalDeclaration,
    CodeListEntry,
    Condition,
    GetAdditionalDeclarations,
    GetAdditionalDeclarationsResponse,
    GetConditions,
    GetConditionsResponse,
    GetIntendedUses,
    GetIntendedUsesResponse,
    GetMeanOfTransports,
    GetMeanOfTransportsResponse,
    GetPackageTypes,
    GetPackageTypesResponse,
    GetPesticides,
    GetPesticidesResponse,
    GetProductDescriptions,
    GetProductDescriptionsResponse,
    GetStatements,
    GetStatementsResponse,
    GetTreatmentTypes,
    GetTreatmentTypesResponse,
    GetUnitMeasures,
    GetUnitMeasuresResponse,
    IntendedUse,
    MeanOfTransport,
    PackageType,
    Pesticide,
    ProductDescription,
    Statement,
    TreatmentType,
    UnitMeasure,
    UnitMeasureType,
)

LookupRequest = (
    GetAdditionalDeclarations
    | GetConditions
    | GetIntendedUses
    | GetMeanOfTransports
    | GetPackageTypes
    | GetPesticides
    | GetProductDescriptions
    | GetStatements
    | GetTreatmentTypes
    | GetUnitMeasures
)

ENGLISH: Final = "en"
# Our hub marks the entries of a placeholder list so (lastModifiedBy, a free text), and a
# sync from our hub keeps them marked: the contract has no field for it.
PLACEHOLDER_BY: Final = "ephyto-exchange: placeholder, not from an official list"
# Far above any IPPC list (a few thousand records); the answer itself is capped at 24 MiB.
MAX_ENTRIES: Final = 100_000

_LANG_RE: Final = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})?")
# Fields every record has beyond its code, label and language, and which may differ by
# language: who changed the record and when.
_CHANGED: Final = ("last_modified", "last_modified_by")


@dataclass(frozen=True, slots=True)
class HubLookup:
    """One look-up and the code list it is kept as.

    `code` and `label` name the record's fields holding them; `shared` the fields a code
    has once, whatever the language; `per_language` those that may differ by language.
    Our hub answers from `fallback` when it holds no list named `name`.
    """

    request: type[LookupRequest]
    response: type[Any]
    entry: type[CodeListEntry]
    name: str
    label: str
    code: str = "code"
    shared: tuple[str, ...] = ()
    per_language: tuple[str, ...] = _CHANGED
    fallback: str | None = None

    @property
    def operation(self) -> str:
        return self.request.__name__

    @property
    def has_lang(self) -> bool:
        return "lang" in {f.name for f in dataclasses.fields(self.entry)}


HUB_LOOKUPS: Final = (
    HubLookup(
        GetTreatmentTypes, GetTreatmentTypesResponse, TreatmentType, "treatment_types",
        "description", shared=("level", "parent_code"),
    ),
    HubLookup(GetConditions, GetConditionsResponse, Condition, "conditions", "name"),
    HubLookup(
        GetStatements, GetStatementsResponse, Statement, "certifying_statements", "text",
        shared=("doc_type_only",),
    ),
    HubLookup(
        GetProductDescriptions, GetProductDescriptionsResponse, ProductDescription,
        "commodity_classes", "name",
    ),
    HubLookup(GetIntendedUses, GetIntendedUsesResponse, IntendedUse, "intended_uses", "name"),
    HubLookup(
        GetAdditionalDeclarations, GetAdditionalDeclarationsResponse, AdditionalDeclaration,
        "additional_declarations", "text",
        per_language=("additional_code", "optional_text", *_CHANGED),
    ),
    HubLookup(GetPesticides, GetPesticidesResponse, Pesticide, "pesticides", "description"),
    # The record has no code: its UN/ECE Rec 19 mode code is the one field the same in
    # every language, and what an ePhyto's ModeCode carries (our transport_modes codes).
    HubLookup(
        GetMeanOfTransports, GetMeanOfTransportsResponse, MeanOfTransport,
        "means_of_transport", "used_transport_mean", code="mode_code",
        fallback="transport_modes",
    ),
    # Public UN/ECE lists of the same name are bundled (validation uses those): the hub's
    # are kept beside them.
    HubLookup(
        GetUnitMeasures, GetUnitMeasuresResponse, UnitMeasure, "hub_unit_measures", "name",
        shared=("symbol", "type"), fallback="units",
    ),
    HubLookup(
        GetPackageTypes, GetPackageTypesResponse, PackageType, "hub_package_types",
        "description", fallback="package_types",
    ),
)  # fmt: skip


def code_list_from_hub(
    lookup: HubLookup,
    entries: Sequence[Any],
    *,
    hub: str,
    day: date,
    previous: CodeList | None = None,
) -> CodeList | None:
    """The code list of a look-up's answer, None when it holds no active entry, and
    `previous` itself (the list installed now) when the answer holds nothing new.

    Version: `day` as YYYY.MM.DD (.N after another list of that day). A code deleted in
    `previous` keeps the edition saying since when.
    InputError naming the look-up and the entry: no code, label or language, a code
    twice in one language, a broken treatment tree, a list too large to keep.
    """
    try:
        return _code_list(lookup, entries, hub, day, previous)
    except InputError as exc:
        raise InputError(f"{lookup.operation}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Synced:
    """A look-up's list after a sync: new (`changed`), the one installed, or None (the hub
    holds no active entry of it)."""

    lookup: HubLookup
    code_list: CodeList | None
    changed: bool


def synced_lists(
    answers: Mapping[HubLookup, Sequence[Any]], *, hub: str, day: date, installed: CodeLists
) -> list[Synced]:
    """Every look-up's list from the hub's `answers`, against the lists `installed` now.

    InputError naming the first look-up whose answer cannot be a list: then none is.
    """
    results = []
    for lookup in HUB_LOOKUPS:
        previous = installed.lists.get(lookup.name)
        new = code_list_from_hub(lookup, answers[lookup], hub=hub, day=day, previous=previous)
        results.append(Synced(lookup, new, new is not None and new is not previous))
    return results


def next_version(day: date, previous: CodeList | None) -> str:
    """`day` as YYYY.MM.DD, or YYYY.MM.DD.N after a list of that same day; InputError when
    `previous` is newer still (a clock set back): a list never goes back."""
    version = _day_version(day)
    if previous is None:
        return version
    before = version_key(previous.version)
    if before[:3] == version_key(version):
        version += f".{before[3] + 1 if len(before) > 3 else 1}"
    if version_key(version) <= before:
        raise InputError(
            f"the installed {previous.name} version {previous.version} is newer than"
            f" {version}, the version of a sync today: is the clock right?"
        )
    return version


def same_content(a: CodeList, b: CodeList) -> bool:
    """Whether two lists hold the same (version and source aside)."""
    return a.name == b.name and dataclasses.replace(a, version=b.version, source=b.source) == b


def languages(code_list: CodeList) -> list[str]:
    """The languages a list has labels in, its labels' own first (English unless noted)."""
    own = {a.get("lang", ENGLISH) for a in code_list.attributes.values()} | {ENGLISH}
    return sorted(own) + sorted(set(code_list.translations) - own)


def _code_list(
    lookup: HubLookup,
    entries: Sequence[Any],
    hub: str,
    day: date,
    previous: CodeList | None,
) -> CodeList | None:
    if len(entries) > MAX_ENTRIES:
        raise InputError(f"{len(entries)} entries, more than the {MAX_ENTRIES} a list may have")
    by_code: dict[str, list[Any]] = {}
    seen: set[tuple[str, str | None]] = set()
    for number, record in enumerate(entries, 1):
        code, lang = _code_of(lookup, record, number), _lang_of(lookup, record, number)
        if not isinstance(getattr(record, "active", None), bool):
            raise InputError(f"entry {number} ({code}): no active flag")
        if (code, lang) in seen:
            where = f" in language {lang}" if lang is not None else ""
            raise InputError(f"entry {number}: code {code!r}{where} a second time")
        seen.add((code, lang))
        if _blank(getattr(record, lookup.label)):
            raise InputError(f"entry {number} ({code}): no {xml_name(lookup.label)}")
        by_code.setdefault(code, []).append(record)
    if lookup.name == "treatment_types":
        _check_tree(by_code)
    codes: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    translations: dict[str, dict[str, str]] = {}
    deleted: dict[str, Retired] = {}
    placeholders: set[str] = set()
    for code, records in by_code.items():
        active = [r for r in records if r.active]
        if not active:
            label = getattr(_labelled(lookup, records), lookup.label)
            was = previous.deleted.get(code) if previous is not None else None
            edition = was.edition if was is not None else f"inactive at {hub} on {day}"
            deleted[code] = Retired(label, edition)
            continue
        primary = _labelled(lookup, active)
        codes[code] = getattr(primary, lookup.label)
        if primary.last_modified_by == PLACEHOLDER_BY:
            placeholders.add(code)
        attributes[code] = _attributes(lookup, code, primary, active, code in placeholders)
        for record in active:
            if record is not primary:
                translations.setdefault(record.lang, {})[code] = getattr(record, lookup.label)
    if not codes:
        return None
    source = f"IPPC ePhyto Hub {lookup.operation} at {hub}, synced {day.isoformat()}"
    new = CodeList(
        lookup.name, _day_version(day), source, codes,
        placeholders=frozenset(placeholders), deleted=deleted,
        attributes={c: a for c, a in attributes.items() if a}, translations=translations,
    )  # fmt: skip
    if previous is not None and same_content(new, previous):
        return previous
    new = dataclasses.replace(new, version=next_version(day, previous))
    if len(new.to_json_bytes()) > MAX_BYTES:
        raise InputError(f"the list would be larger than the {MAX_BYTES} bytes a list may have")
    return new


def _day_version(day: date) -> str:
    return f"{day.year:04d}.{day.month:02d}.{day.day:02d}"


def _code_of(lookup: HubLookup, record: Any, number: int) -> str:
    value = getattr(record, lookup.code)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InputError(f"entry {number}: {xml_name(lookup.code)} {value} < 0")
        return str(value)
    if _blank(value):
        raise InputError(f"entry {number}: no {xml_name(lookup.code)}")
    # A certificate's code is compared stripped: blanks around one in the hub's data
    # would keep it from ever matching.
    return str(value).strip()


def _lang_of(lookup: HubLookup, record: Any, number: int) -> str | None:
    if not lookup.has_lang:
        return None
    lang = record.lang
    if _blank(lang):
        raise InputError(f"entry {number}: no lang")
    if not _LANG_RE.fullmatch(lang):
        raise InputError(f"entry {number}: lang {lang[:20]!r} is not a language code")
    return str(lang)


def _labelled(lookup: HubLookup, records: list[Any]) -> Any:
    """The record whose label goes into `codes`: the English one, else the first."""
    if lookup.has_lang:
        for record in records:
            if record.lang == ENGLISH:
                return record
    return records[0]


def _attributes(
    lookup: HubLookup, code: str, primary: Any, records: list[Any], placeholder: bool
) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if lookup.has_lang and primary.lang != ENGLISH:
        attrs["lang"] = primary.lang
    for field in lookup.shared:
        values = {_text(getattr(r, field)) for r in records}
        if len(values) > 1:
            raise InputError(
                f"code {code!r}: {xml_name(field)} differs between languages"
                f" ({', '.join(sorted(v or 'none' for v in values))})"
            )
        if (value := values.pop()) is not None:
            attrs[xml_name(field)] = value
    for field in lookup.per_language:
        name = xml_name(field)
        own = _own_text(primary, field, placeholder)
        if own is not None:
            attrs[name] = own
        for record in records:
            other = _own_text(record, field, placeholder)
            if record is not primary and other != own:
                attrs[f"{name}_{record.lang.replace('-', '_')}"] = other or ""
    return attrs


def _own_text(record: Any, field: str, placeholder: bool) -> str | None:
    value = _text(getattr(record, field))
    # The placeholder mark is carried by the list itself, not as who changed the record.
    return None if placeholder and value == PLACEHOLDER_BY else value


def _check_tree(by_code: Mapping[str, list[Any]]) -> None:
    """Treatment types are a two-level tree: level 1 without a parent, level 2 under one."""
    levels = {code: {r.level for r in records} for code, records in by_code.items()}
    for code, records in by_code.items():
        for record in records:
            parent = _text(record.parent_code)
            if record.level not in (1, 2):
                raise InputError(f"treatment type {code!r} has level {record.level}, not 1 or 2")
            if record.level == 1 and parent is not None:
                raise InputError(f"treatment type {code!r} is level 1 but has parent {parent!r}")
            if record.level == 2 and (parent is None or levels.get(parent) != {1}):
                raise InputError(
                    f"treatment type {code!r} is level 2 but its parent {parent!r} is not a"
                    " level-1 treatment type of the answer"
                )


def _text(value: object) -> str | None:
    """A record's field as attribute text; blank or absent is None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UnitMeasureType):
        return value.value
    text = str(value)
    return None if not text.strip() else text


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def xml_name(field: str) -> str:
    """The WSDL's name of a record field."""
    return _FIELD_XML.get(field, field)


# The WSDL's names of the record fields whose Python names differ.
_FIELD_XML: Final = {
    "additional_code": "additionalCode",
    "doc_type_only": "docTypeOnly",
    "last_modified": "lastModified",
    "last_modified_by": "lastModifiedBy",
    "mode_code": "modeCode",
    "optional_text": "optionalText",
    "parent_code": "parentCode",
    "used_transport_mean": "usedTransportMean",
}
