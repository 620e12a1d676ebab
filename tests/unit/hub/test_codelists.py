"""The hub's look-up answers, and the one swap that gives newer lists to them and the validator."""

from __future__ import annotations

import json

from node.certificate.validate import Validator
from node.codelists.lists import CodeList, CodeLists, bundled
from node.hub.codelists import CodeListAnswers
from node.hub.service import code_list_swap
from node.ippc import GetPackageTypes, GetUnitMeasures

NEW_UNIT = "XKG"


def _newer_units() -> CodeLists:
    current = bundled().get("units")
    doc = {
        "list": "units",
        "version": str(int(current.version) + 1),
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
