"""Look-up answers as an IPPC Hub gives them, made up in each record shape of the WSDL.

Every field of the shape is set: English, French and Spanish records where the shape has
a language, a French record changed at another time and by someone else, French and
English texts that differ (optionalText, additionalCode), a two-level treatment tree,
units with symbol and type, and one inactive code. Used by the mapping's tests and by
the hub the WSDL client tests ask.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from node.codelists.hub_lists import HUB_LOOKUPS, HubLookup, code_list_from_hub
from node.codelists.lists import CodeList
from node.ippc import TreatmentType, UnitMeasureType

HUB = "https://hub.example.int/hub/DeliveryService"
DAY = date(2026, 11, 3)
WHEN = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
LANGUAGES = ("en", "fr", "es")
INACTIVE = "900"  # the one inactive code of every answer


def codes(lookup: HubLookup) -> list[str]:
    """The active codes of the answer (digits: a mean of transport's code is its mode)."""
    if lookup.entry is TreatmentType:
        return ["1", "2", "21", "22"]  # 1 and 2 level 1; 21 and 22 under 2
    return ["1", "4", "8"]


def records(lookup: HubLookup) -> list[Any]:
    """A whole answer to `lookup`: every code in every language, then the inactive one."""
    made = []
    for code in codes(lookup):
        for lang in LANGUAGES if lookup.has_lang else (None,):
            made.append(_record(lookup, code, lang, active=True))
    made.append(_record(lookup, INACTIVE, "en" if lookup.has_lang else None, active=False))
    return made


def hub_list(lookup: HubLookup) -> CodeList:
    """The list `records(lookup)` makes."""
    made = code_list_from_hub(lookup, records(lookup), hub=HUB, day=DAY)
    assert made is not None
    return made


def hub_lists() -> list[CodeList]:
    return [hub_list(lookup) for lookup in HUB_LOOKUPS]


def _record(lookup: HubLookup, code: str, lang: str | None, *, active: bool) -> Any:
    fields: dict[str, Any] = {"active": active, lookup.label: f"{lookup.name} {code} ({lang})"}
    if lookup.code == "mode_code":
        fields["mode_code"] = int(code)
    else:
        fields["code"] = code
    if lang is not None:
        fields["lang"] = lang
    if active:
        french = lang == "fr"
        fields["last_modified"] = WHEN + timedelta(days=1 if french else 0)
        fields["last_modified_by"] = "translator" if french else "ippc"
        fields |= _shape_fields(lookup, code, lang)
    elif lookup.entry is TreatmentType:
        fields["level"] = 1  # what the list gives back: it keeps only an inactive label
    if "doc_type_only" in lookup.shared:
        fields.setdefault("doc_type_only", 0)
    return lookup.entry(**fields)


def _shape_fields(lookup: HubLookup, code: str, lang: str | None) -> dict[str, Any]:
    if lookup.entry is TreatmentType:
        return {"level": 2, "parent_code": "2"} if len(code) == 2 else {"level": 1}
    fields: dict[str, Any] = {}
    if "doc_type_only" in lookup.shared:
        fields["doc_type_only"] = 851 if code == "4" else 0
    if "symbol" in lookup.shared:
        fields["symbol"] = {"1": "kg", "4": "l", "8": "°C"}[code]
        fields["type"] = {"1": UnitMeasureType.WEIGHT, "4": UnitMeasureType.VOLUME}.get(code)
    if "optional_text" in lookup.per_language:
        fields["optional_text"] = f"[insert {lang} text]" if code != "8" else None
        fields["additional_code"] = f"AD-{code}" + ("-F" if lang == "fr" and code == "4" else "")
    return fields
