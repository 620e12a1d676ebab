"""The hub's look-up answers, and the one swap that gives newer lists to them and the validator."""

from __future__ import annotations

import json

from node.certificate.validate import Validator
from node.codelists.hub_lists import HUB_LOOKUPS
from node.codelists.lists import CodeList, CodeLists, bundled
from node.hub.codelists import CodeListAnswers
from node.hub.service import code_list_swap
from node.ippc import (
    GetAdditionalDeclarations,
    GetPackageTypes,
    GetPesticides,
    GetTreatmentTypes,
    GetUnitMeasures,
)
from tests.hub_records import hub_lists, records

NEW_UNIT = "XKG"


def _newer_units() -> CodeLists:
    current = bundled().get("units")
    doc = {
        "list": "units",
        "version": f"{current.version}.1",  # newer, whatever form the bundled one has
        "source": "test",
        "codes": dict(current.codes) | {NEW_UNIT: "test unit"},
    }
    return bundled().updated_with(CodeList.from_json_bytes(json.dumps(doc).encode()))


def test_answers_are_swapped_whole_and_the_old_ones_stay_intact() -> None:
    answers = CodeListAnswers(bundled())
    before = answers.answer(GetUnitMeasures())
    packages = answers.answer(GetPackageTypes())
    answers.use_codelists(_newer_units())
    after = answers.answer(GetUnitMeasures())
    assert NEW_UNIT not in {u.code for u in before.entries}  # a response in hand is unchanged
    assert [u.name for u in after.entries if u.code == NEW_UNIT] == ["test unit"]
    assert answers.answer(GetPackageTypes()) == packages  # the other lists as they were


def test_one_swap_updates_the_validator_and_the_look_ups() -> None:
    validator, answers = Validator.default(), CodeListAnswers(bundled())
    lists = _newer_units()
    code_list_swap(validator, answers)(lists)
    assert validator.codelists is lists
    assert NEW_UNIT in {u.code for u in answers.answer(GetUnitMeasures()).entries}


def test_the_hub_lists_are_served_in_every_record_shape() -> None:
    lists = bundled()
    for code_list in hub_lists():
        lists = lists.updated_with(code_list)
    answers = CodeListAnswers(lists)
    for lookup in HUB_LOOKUPS:
        served = answers.answer(lookup.request()).entries
        assert sorted(map(repr, served)) == sorted(map(repr, records(lookup))), lookup.operation
    tree = answers.answer(GetTreatmentTypes()).entries
    assert {(t.code, t.level, t.parent_code) for t in tree if t.lang == "fr"} == {
        ("1", 1, None), ("2", 1, None), ("21", 2, "2"), ("22", 2, "2"),
    }  # fmt: skip
    assert answers.answer(GetPesticides()).entries
    assert {d.lang for d in answers.answer(GetAdditionalDeclarations()).entries} == {
        "en", "fr", "es",
    }  # fmt: skip


def test_without_hub_lists_units_and_packages_come_from_the_un_ece_lists() -> None:
    units = CodeList(
        "units", "9999", "test: Rec 20 with symbols", {"KGM": "kilogram", "LTR": "litre"},
        attributes={"KGM": {"symbol": "kg"}},
    )  # fmt: skip
    answers = CodeListAnswers(bundled().updated_with(units))
    measures = answers.answer(GetUnitMeasures()).entries
    assert [(u.code, u.name, u.symbol, u.active) for u in measures] == [
        ("KGM", "kilogram", "kg", True), ("LTR", "litre", None, True),
    ]  # fmt: skip
    packages = answers.answer(GetPackageTypes()).entries
    ours = bundled().get("package_types")
    assert len([p for p in packages if p.active]) == len(ours.codes)
    assert {p.code for p in packages if not p.active} == set(ours.deleted)
    assert all(p.lang == "en" and p.description for p in packages)
    assert answers.answer(GetPesticides()).entries == ()  # no list of pesticides held
