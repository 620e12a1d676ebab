"""The hub's code-list look-ups (GetTreatmentTypes, ...) answered from the lists it holds.

Pure: a CodeLists in, one response per look-up out (rebuilt when newer lists come in).
Each look-up answers from the list of the same content (node.codelists.hub_records): the
hub lists a sync brought in (`treatment_types`, `additional_declarations`,
`hub_unit_measures`, ...), with every field of the record shape (tree, symbol, type,
additional code, optional text, every language); where the hub holds no such list,
GetUnitMeasures, GetPackageTypes and GetMeanOfTransports answer from our UN/ECE lists
(`units`, `package_types`, `transport_modes`), and the others with no entries
(docs/hub-soap.md).
"""

from __future__ import annotations

from typing import Any

from node.codelists.hub_lists import HUB_LOOKUPS, LookupRequest
from node.codelists.hub_records import hub_entries, served_list
from node.codelists.lists import CodeLists

LOOKUPS: tuple[type[LookupRequest], ...] = tuple(lookup.request for lookup in HUB_LOOKUPS)


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
    return {
        lookup.request: lookup.response(
            entries=hub_entries(lookup, served_list(lookup, lists.lists))
        )
        for lookup in HUB_LOOKUPS
    }
