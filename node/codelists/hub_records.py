"""Code lists as the IPPC Hub's look-up answers, for our hub (pure).

The way back of node.codelists.hub_lists: one record per code per language, every field
of the record shape from the list's attributes, deleted codes as `active` false, the
codes of a placeholder list marked in `lastModifiedBy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from node.codelists.hub_lists import ENGLISH, PLACEHOLDER_BY, HubLookup, xml_name
from node.codelists.lists import CodeList
from node.ippc import Statement, TreatmentType, UnitMeasureType

_INT_MAX: Final = 2**31 - 1


def hub_entries(lookup: HubLookup, code_list: CodeList | None) -> tuple[Any, ...]:
    """The look-up's records for `code_list`: one per code per language, deleted codes as
    inactive. Whatever a list holds (imported by hand, say), an attribute the record
    cannot carry is left out rather than refused: a look-up always has an answer."""
    if code_list is None:
        return ()
    records: list[Any] = []
    for code, label in sorted(code_list.codes.items()):
        attrs = code_list.attributes.get(code, {})
        primary = attrs.get("lang", ENGLISH) if lookup.has_lang else None
        languages = [primary]
        if lookup.has_lang:
            languages += sorted(
                lang
                for lang, labels in code_list.translations.items()
                if code in labels and lang != primary
            )
        for lang in languages:
            text = label if lang == primary else code_list.translations[str(lang)][code]
            fields = {f: _attribute(attrs, f, lang, primary) for f in lookup.per_language}
            if code in code_list.placeholders:
                fields["last_modified_by"] = PLACEHOLDER_BY
            fields |= {f: attrs.get(xml_name(f)) for f in lookup.shared}
            record = _record(lookup, code, text, lang, True, fields)
            if record is not None:
                records.append(record)
    for code, retired in sorted(code_list.deleted.items()):
        lang = ENGLISH if lookup.has_lang else None
        record = _record(lookup, code, retired.label, lang, False, {})
        if record is not None:
            records.append(record)
    return tuple(records)


def served_list(lookup: HubLookup, lists: Mapping[str, CodeList]) -> CodeList | None:
    """The list our hub answers `lookup` from: the hub's own, else our list of that kind."""
    found = lists.get(lookup.name)
    if found is None and lookup.fallback is not None:
        found = lists.get(lookup.fallback)
    return found


def _attribute(attrs: Mapping[str, str], field: str, lang: str | None, primary: str | None) -> Any:
    name = xml_name(field)
    if lang is not None and lang != primary:
        own = attrs.get(f"{name}_{lang.replace('-', '_')}")
        if own is not None:
            return own or None
    return attrs.get(name)


def _record(
    lookup: HubLookup,
    code: str,
    label: str,
    lang: str | None,
    active: bool,
    texts: Mapping[str, str | None],
) -> Any | None:
    """A record of the look-up's shape, each attribute as its field's type; None when the
    code cannot be carried (a mean of transport's mode code is a number)."""
    fields: dict[str, Any] = {"active": active, lookup.label: label}
    if lookup.code == "mode_code":
        mode = _int(code)
        if mode is None:
            return None
        fields["mode_code"] = mode
    else:
        fields["code"] = code
    if lang is not None:
        fields["lang"] = lang
    for field, text in texts.items():
        if text is not None and (value := _typed(field, text)) is not None:
            fields[field] = value
    if lookup.entry is TreatmentType:
        fields.setdefault("level", 1)
    if lookup.entry is Statement:
        fields.setdefault("doc_type_only", 0)  # 0: for any certificate type
    return lookup.entry(**fields)


def _typed(field: str, text: str) -> Any:
    if field in ("level", "doc_type_only"):
        return _int(text)
    if field == "type":
        try:
            return UnitMeasureType(text)
        except ValueError:
            return None
    if field == "last_modified":
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
        offset = when.utcoffset()
        # xs:dateTime has no seconds in a UTC offset: such a time cannot be written.
        return None if offset is not None and offset.total_seconds() % 60 else when
    return text


def _int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and int(text) <= _INT_MAX else None
