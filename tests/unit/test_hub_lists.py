"""The IPPC Hub's look-up answers as code lists and back (node.codelists.hub_lists,
node.codelists.hub_records): every record shape round-trips, hostile answers are refused
naming the look-up and the entry, versions only move forward."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from node.codelists import hub_lists
from node.codelists.hub_lists import (
    HUB_LOOKUPS,
    PLACEHOLDER_BY,
    HubLookup,
    code_list_from_hub,
    languages,
    next_version,
    synced_lists,
)
from node.codelists.hub_records import hub_entries, served_list
from node.codelists.lists import CodeList, Retired, bundled
from node.errors import InputError
from node.ippc import (
    Condition,
    GetMeanOfTransports,
    GetTreatmentTypes,
    MeanOfTransport,
    Pesticide,
    Statement,
    TreatmentType,
    UnitMeasure,
    UnitMeasureType,
    render_response,
)
from tests.hub_records import DAY, HUB, INACTIVE, hub_list, records

LOOKUP = {lookup.request: lookup for lookup in HUB_LOOKUPS}
TREATMENTS = LOOKUP[GetTreatmentTypes]
CONDITIONS = next(lookup for lookup in HUB_LOOKUPS if lookup.entry is Condition)
PESTICIDES = next(lookup for lookup in HUB_LOOKUPS if lookup.entry is Pesticide)
UNITS = next(lookup for lookup in HUB_LOOKUPS if lookup.entry is UnitMeasure)


def _sorted(entries: Any) -> list[str]:
    return sorted(repr(e) for e in entries)


@pytest.mark.parametrize("lookup", HUB_LOOKUPS, ids=lambda lookup: lookup.operation)
def test_every_record_shape_comes_back_as_the_hub_gave_it(lookup: HubLookup) -> None:
    given = records(lookup)
    code_list = hub_list(lookup)
    assert _sorted(hub_entries(lookup, code_list)) == _sorted(given)
    # ... and the list itself survives its JSON form, the way it travels to every node.
    again = CodeList.from_json_bytes(code_list.to_json_bytes())
    assert _sorted(hub_entries(lookup, again)) == _sorted(given)
    render_response(lookup.response(entries=tuple(given)))  # the shapes are the WSDL's


def test_english_labels_other_languages_attributes_and_the_inactive_code() -> None:
    treatments = hub_list(TREATMENTS)
    assert treatments.name == "treatment_types"
    assert treatments.codes["21"] == "treatment_types 21 (en)"
    assert treatments.translations["fr"]["21"] == "treatment_types 21 (fr)"
    assert set(treatments.translations) == {"fr", "es"}
    assert treatments.attributes["21"]["level"] == "2"
    assert treatments.attributes["21"]["parentCode"] == "2"
    assert "parentCode" not in treatments.attributes["2"]
    assert treatments.attributes["21"]["lastModifiedBy_fr"] == "translator"
    assert "lastModifiedBy_es" not in treatments.attributes["21"]  # as the English one
    assert treatments.deleted == {
        INACTIVE: Retired("treatment_types 900 (en)", f"inactive at {HUB} on 2026-11-03")
    }
    assert treatments.source == f"IPPC ePhyto Hub GetTreatmentTypes at {HUB}, synced 2026-11-03"
    assert treatments.version == "2026.11.03"
    assert treatments.is_newer_than(bundled().get("treatment_types"))  # bundled: 2024.1
    assert languages(treatments) == ["en", "es", "fr"]
    units = hub_list(UNITS)
    assert units.name == "hub_unit_measures"
    assert {"symbol": "kg", "type": "WEIGHT"}.items() <= units.attributes["1"].items()
    assert "type" not in units.attributes["8"] and units.translations == {}
    means = hub_list(LOOKUP[GetMeanOfTransports])
    assert means.name == "means_of_transport" and set(means.codes) == {"1", "4", "8"}


def test_without_english_the_first_language_labels_the_code() -> None:
    given = [
        Condition(active=True, code="C1", lang="fr", name="Congelé"),
        Condition(active=True, code="C1", lang="es", name="Congelado"),
        Condition(active=True, code="C2", lang="en", name="Fresh"),
    ]
    code_list = code_list_from_hub(CONDITIONS, given, hub=HUB, day=DAY)
    assert code_list is not None
    assert code_list.codes == {"C1": "Congelé", "C2": "Fresh"}
    assert code_list.attributes["C1"] == {"lang": "fr"}
    assert code_list.translations == {"es": {"C1": "Congelado"}}
    assert code_list.label("C1", "es") == "Congelado"
    assert _sorted(hub_entries(CONDITIONS, code_list)) == _sorted(given)


def test_a_language_withdrawn_beside_an_active_one_is_left_out() -> None:
    given = [
        Condition(active=False, code="C1", lang="en", name="Chilled"),
        Condition(active=True, code="C1", lang="fr", name="Réfrigéré"),
    ]
    code_list = code_list_from_hub(CONDITIONS, given, hub=HUB, day=DAY)
    assert code_list is not None
    assert code_list.codes == {"C1": "Réfrigéré"} and code_list.deleted == {}


def test_an_answer_without_an_active_entry_makes_no_list() -> None:
    assert code_list_from_hub(CONDITIONS, [], hub=HUB, day=DAY) is None
    inactive = [Condition(active=False, code="C1", lang="en", name="Chilled")]
    assert code_list_from_hub(CONDITIONS, inactive, hub=HUB, day=DAY) is None


def test_versions_move_forward_by_day_and_by_sync_within_a_day() -> None:
    first = hub_list(CONDITIONS)
    assert first.version == "2026.11.03"
    same = code_list_from_hub(CONDITIONS, records(CONDITIONS), hub=HUB, day=DAY, previous=first)
    assert same is first  # nothing new: the list installed stays, version and all
    changed = [*records(CONDITIONS), Condition(active=True, code="9", lang="en", name="new")]
    second = code_list_from_hub(CONDITIONS, changed, hub=HUB, day=DAY, previous=first)
    assert second is not None and second.version == "2026.11.03.1"
    third = code_list_from_hub(CONDITIONS, records(CONDITIONS), hub=HUB, day=DAY, previous=second)
    assert third is not None and third.version == "2026.11.03.2"
    assert third.is_newer_than(second) and second.is_newer_than(first)
    later = code_list_from_hub(
        CONDITIONS, changed, hub=HUB, day=DAY + timedelta(days=1), previous=third
    )
    assert later is not None and later.version == "2026.11.04"
    with pytest.raises(InputError, match="is the clock right"):
        next_version(DAY - timedelta(days=1), first)


def test_a_code_inactive_since_an_earlier_sync_keeps_that_date() -> None:
    first = hub_list(CONDITIONS)
    changed = [*records(CONDITIONS), Condition(active=True, code="9", lang="en", name="new")]
    later = code_list_from_hub(
        CONDITIONS, changed, hub="https://other", day=DAY + timedelta(days=30), previous=first
    )
    assert later is not None
    assert later.deleted[INACTIVE].edition == f"inactive at {HUB} on 2026-11-03"


def test_placeholders_are_marked_on_our_hub_and_stay_marked_through_a_sync() -> None:
    ours = bundled().get("treatment_types")
    assert ours.placeholders
    served = hub_entries(TREATMENTS, ours)
    assert {e.last_modified_by for e in served if e.code in ours.placeholders} == {PLACEHOLDER_BY}
    synced = code_list_from_hub(TREATMENTS, served, hub=HUB, day=DAY)
    assert synced is not None
    assert synced.placeholders == ours.placeholders and synced.codes == ours.codes
    assert all("lastModifiedBy" not in a for a in synced.attributes.values())


def _one(lookup: HubLookup, **changes: Any) -> list[Any]:
    """The sample answer, its first record changed."""
    given = records(lookup)
    return [dataclasses.replace(given[0], **changes), *given[1:]]


@pytest.mark.parametrize(
    ("lookup", "answer", "why"),
    [
        (CONDITIONS, _one(CONDITIONS, code=None), "entry 1: no code"),
        (CONDITIONS, _one(CONDITIONS, code="  "), "entry 1: no code"),
        (CONDITIONS, _one(CONDITIONS, name=None), r"entry 1 \(1\): no name"),
        (CONDITIONS, _one(CONDITIONS, name=" "), "no name"),
        (CONDITIONS, _one(CONDITIONS, lang=None), "entry 1: no lang"),
        (CONDITIONS, _one(CONDITIONS, lang="english"), "not a language code"),
        (CONDITIONS, _one(CONDITIONS, lang="fr"), "entry 2: code '1' in language fr a second"),
        (CONDITIONS, _one(CONDITIONS, code="1" * 65), "bad code"),
        (CONDITIONS, _one(CONDITIONS, name="x" * 1025), "too long"),
        (PESTICIDES, [*records(PESTICIDES), records(PESTICIDES)[0]], "code '1' a second time"),
        (
            LOOKUP[GetMeanOfTransports],
            _one(LOOKUP[GetMeanOfTransports], mode_code=None),
            "no modeCode",
        ),
        (LOOKUP[GetMeanOfTransports], _one(LOOKUP[GetMeanOfTransports], mode_code=-1), "< 0"),
        (TREATMENTS, _one(TREATMENTS, level=2, parent_code="2"), "differs between languages"),
        (TREATMENTS, _one(TREATMENTS, level=3), "level 3, not 1 or 2"),
        (TREATMENTS, _one(TREATMENTS, parent_code="2"), "level 1 but has parent"),
        (
            TREATMENTS,
            [dataclasses.replace(r, parent_code=None) if r.code == "21" else r
             for r in records(TREATMENTS)],
            "'21' is level 2 but its parent None",
        ),
        (
            TREATMENTS,
            [dataclasses.replace(r, parent_code="22") if r.code == "21" else r
             for r in records(TREATMENTS)],
            "its parent '22' is not a level-1",
        ),
    ],
)  # fmt: skip
def test_a_hostile_answer_is_refused_naming_the_look_up_and_the_entry(
    lookup: HubLookup, answer: list[Any], why: str
) -> None:
    with pytest.raises(InputError, match=why) as caught:
        code_list_from_hub(lookup, answer, hub=HUB, day=DAY)
    assert str(caught.value).startswith(f"{lookup.operation}: ")


def test_a_huge_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_lists, "MAX_ENTRIES", 5)
    with pytest.raises(InputError, match="GetConditions: 10 entries, more than the 5"):
        code_list_from_hub(CONDITIONS, records(CONDITIONS), hub=HUB, day=DAY)
    monkeypatch.setattr(hub_lists, "MAX_BYTES", 500)
    with pytest.raises(InputError, match=r"GetPesticides: .* larger than the 500 bytes"):
        code_list_from_hub(PESTICIDES, records(PESTICIDES), hub=HUB, day=DAY)


def test_our_hub_answers_whatever_a_list_holds() -> None:
    """A list imported by hand may hold attributes no record can carry: left out."""
    odd = CodeList(
        "treatment_types", "2030", "test", {"A": "a", "B": "b"},
        attributes={
            "A": {"level": "x", "lastModified": "yesterday", "parentCode": "B"},
            "B": {"level": "99999999999", "lastModified": "2026-01-01T00:00:00+00:00:30"},
        },
        deleted={"C": Retired("c", "2029")},
    )  # fmt: skip
    entries = hub_entries(TREATMENTS, odd)
    assert [(e.code, e.level, e.last_modified, e.active) for e in entries] == [
        ("A", 1, None, True), ("B", 1, None, True), ("C", 1, None, False),
    ]  # fmt: skip
    render_response(TREATMENTS.response(entries=entries))
    units = CodeList(
        "units",
        "2030",
        "test",
        {"KGM": "kilogram"},
        attributes={"KGM": {"type": "HEAVY", "symbol": "kg"}},
    )
    [unit] = hub_entries(UNITS, units)
    assert (unit.symbol, unit.type) == ("kg", None)
    modes = CodeList("transport_modes", "2030", "test", {"1": "Maritime", "X": "not a mode"})
    assert [
        (m.mode_code, m.used_transport_mean)
        for m in hub_entries(LOOKUP[GetMeanOfTransports], modes)
    ] == [(1, "Maritime")]
    statements = CodeList("certifying_statements", "2030", "test", {"1": "s"})
    assert hub_entries(LOOKUP[GetTreatmentTypes], None) == ()
    [statement] = hub_entries(next(x for x in HUB_LOOKUPS if x.entry is Statement), statements)
    assert statement.doc_type_only == 0 and statement.lang == "en"


def test_our_hub_answers_from_the_hub_list_else_from_ours() -> None:
    units = bundled().get("units")
    assert served_list(UNITS, bundled().lists) is units
    hub_units = hub_list(UNITS)
    lists = bundled().updated_with(hub_units).lists
    assert served_list(UNITS, lists) is hub_units
    assert served_list(PESTICIDES, bundled().lists) is None


def test_a_sync_tells_new_unchanged_and_absent_lists_apart() -> None:
    answers = {lookup: records(lookup) for lookup in HUB_LOOKUPS}
    answers[PESTICIDES] = []
    installed = bundled().updated_with(hub_list(CONDITIONS))
    results = {r.lookup: r for r in synced_lists(answers, hub=HUB, day=DAY, installed=installed)}
    assert results[PESTICIDES].code_list is None and not results[PESTICIDES].changed
    assert results[CONDITIONS].code_list is installed.get("conditions")
    assert not results[CONDITIONS].changed
    treatments = results[TREATMENTS]
    assert treatments.changed and treatments.code_list is not None
    assert treatments.code_list.version == "2026.11.03"
    answers[UNITS] = _one(UNITS, name=None)
    with pytest.raises(InputError, match="GetUnitMeasures: entry 1"):
        synced_lists(answers, hub=HUB, day=DAY, installed=installed)


def test_times_keep_their_offset_through_the_list() -> None:
    when = datetime(2026, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    given = [Condition(active=True, code="C", lang="en", name="n", last_modified=when)]
    code_list = code_list_from_hub(CONDITIONS, given, hub=HUB, day=date(2026, 5, 2))
    assert code_list is not None
    assert code_list.attributes["C"]["lastModified"] == "2026-05-01T08:00:00+02:00"
    assert hub_entries(CONDITIONS, code_list)[0].last_modified == when


def test_unit_types_are_the_wsdl_enumeration() -> None:
    given = [UnitMeasure(active=True, code="KGM", name="kilogram", type=UnitMeasureType.WEIGHT)]
    code_list = code_list_from_hub(UNITS, given, hub=HUB, day=DAY)
    assert code_list is not None
    assert hub_entries(UNITS, code_list) == tuple(given)
    mean = MeanOfTransport(active=True, lang="en", mode_code=4, used_transport_mean="Aircraft")
    means = code_list_from_hub(LOOKUP[GetMeanOfTransports], [mean], hub=HUB, day=DAY)
    assert means is not None and means.codes == {"4": "Aircraft"}
    assert hub_entries(LOOKUP[GetMeanOfTransports], means) == (mean,)
    treatment = TreatmentType(active=True, code="T", description="t", lang="en", level=1)
    assert hub_entries(
        TREATMENTS, code_list_from_hub(TREATMENTS, [treatment], hub=HUB, day=DAY)
    ) == (treatment,)
