"""The hub's code-list look-ups (GetPackageTypes, ...) answered from our harmonised lists.

Pure: a CodeLists in, one response per look-up out (rebuilt when newer lists come
in). Each hub list maps to the list of ours that holds the same codes; the hub's
entries carry more than our lists do (who changed an entry and when, a treatment's
parent), so those fields stay empty. Two look-ups have no list of ours behind them and
answer with no entries (docs/hub-soap.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from node.codelists.lists import CodeList, CodeLists
from node.ippc import (
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
    ProductDescription,
    Statement,
    TreatmentType,
    UnitMeasure,
)

LANG = "en"  # our lists carry English labels only

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
LOOKUPS: tuple[type[LookupRequest], ...] = (
    GetAdditionalDeclarations,
    GetConditions,
    GetIntendedUses,
    GetMeanOfTransports,
    GetPackageTypes,
    GetPesticides,
    GetProductDescriptions,
    GetStatements,
    GetTreatmentTypes,
    GetUnitMeasures,
)
SOURCES: dict[type[LookupRequest], str | None] = {
    GetAdditionalDeclarations: None,  # no harmonised list of ours
    GetConditions: "conditions",
    GetIntendedUses: "intended_uses",
    GetMeanOfTransports: "transport_modes",
    GetPackageTypes: "package_types",
    GetPesticides: None,  # no harmonised list of ours
    GetProductDescriptions: "commodity_classes",
    GetStatements: "certifying_statements",
    GetTreatmentTypes: "treatment_types",
    GetUnitMeasures: "units",
}


class CodeListAnswers:
    """Every look-up's response, built once from `lists`, and again from newer ones.

    A running hub that fetches newer lists from the registry (node.directory.codelist_fetch) hands
    them to `use_codelists`: the answers are rebuilt aside and swapped in as one reference,
    so a look-up never waits on a lock and never sees half of an update.
    """

    def __init__(self, lists: CodeLists) -> None:
        self._answers = _answers(lists)

    def use_codelists(self, lists: CodeLists) -> None:
        """Answer from `lists` from now on (one reference replaced, which is atomic)."""
        self._answers = _answers(lists)

    def answer(self, request: LookupRequest) -> Any:
        """The response to a code-list look-up (one of the Get...Response classes)."""
        return self._answers[type(request)]


def _answers(lists: CodeLists) -> dict[type[LookupRequest], Any]:
    answers: dict[type[LookupRequest], Any] = {}
    for request, source in SOURCES.items():
        code_list = lists.lists.get(source) if source else None
        answers[request] = _answer(request, code_list)
    return answers


def _answer(request: type[LookupRequest], code_list: CodeList | None) -> Any:
    items = sorted(code_list.codes.items()) if code_list is not None else []
    builders: dict[type[LookupRequest], tuple[Callable[..., Any], Callable[[str, str], Any]]] = {
        GetAdditionalDeclarations: (GetAdditionalDeclarationsResponse, _never),
        GetPesticides: (GetPesticidesResponse, _never),
        GetConditions: (
            GetConditionsResponse,
            lambda c, t: Condition(active=True, code=c, lang=LANG, name=t),
        ),
        GetIntendedUses: (
            GetIntendedUsesResponse,
            lambda c, t: IntendedUse(active=True, code=c, lang=LANG, name=t),
        ),
        GetMeanOfTransports: (GetMeanOfTransportsResponse, _mean_of_transport),
        GetPackageTypes: (
            GetPackageTypesResponse,
            lambda c, t: PackageType(active=True, code=c, description=t, lang=LANG),
        ),
        GetProductDescriptions: (
            GetProductDescriptionsResponse,
            lambda c, t: ProductDescription(active=True, code=c, lang=LANG, name=t),
        ),
        # docTypeOnly 0: the statement is not limited to one certificate type.
        GetStatements: (
            GetStatementsResponse,
            lambda c, t: Statement(active=True, code=c, doc_type_only=0, lang=LANG, text=t),
        ),
        # Our list is flat: every treatment type is given as level 1, without a parent.
        GetTreatmentTypes: (
            GetTreatmentTypesResponse,
            lambda c, t: TreatmentType(active=True, code=c, description=t, lang=LANG, level=1),
        ),
        GetUnitMeasures: (
            GetUnitMeasuresResponse,
            lambda c, t: UnitMeasure(active=True, code=c, name=t),
        ),
    }
    response, entry = builders[request]
    return response(entries=tuple(_entries(entry, items)))


def _entries(entry: Callable[[str, str], Any], items: Iterable[tuple[str, str]]) -> list[Any]:
    return [e for e in (entry(code, label) for code, label in items) if e is not None]


def _mean_of_transport(code: str, label: str) -> MeanOfTransport | None:
    # The hub's modeCode is an xs:int (UN/ECE Recommendation 19); ours are its digits.
    if not code.isdigit():
        return None
    return MeanOfTransport(active=True, lang=LANG, mode_code=int(code), used_transport_mean=label)


def _never(code: str, label: str) -> None:
    return None
