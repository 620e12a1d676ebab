"""The export certificate's workflow (pure): who may make which move from which state."""

from __future__ import annotations

import pytest

from node.console import workflow as wf
from node.console.users import ROLE_NAMES
from node.errors import InputError


@pytest.mark.parametrize(
    "move,state,role,expected",
    [
        ("save", wf.DRAFT, "clerk", wf.DRAFT),
        ("submit", wf.DRAFT, "clerk", wf.SUBMITTED),
        ("submit", wf.QUERIED, "clerk", wf.SUBMITTED),
        ("query", wf.SUBMITTED, "officer", wf.QUERIED),
        ("reject", wf.SUBMITTED, "officer", wf.REJECTED),
        ("approve", wf.SUBMITTED, "officer", wf.APPROVED),
        ("issue", wf.APPROVED, "officer", wf.ISSUED),
        ("withdraw", wf.ISSUED, "officer", wf.WITHDRAWN),
    ],
)
def test_the_way_through(move: str, state: str, role: str, expected: str) -> None:
    assert wf.refusal(move, state=state, user="b", role=role, drafted_by="a", reason="why") is None
    assert wf.MOVES[move].to_state == expected


@pytest.mark.parametrize("state", [s for s in wf.STATES if s not in wf.EDITABLE])
def test_issued_and_decided_data_is_fixed(state: str) -> None:
    for move in ("save", "submit"):
        why = wf.refusal(move, state=state, user="a", role="clerk", drafted_by="a", reason=None)
        assert why is wf.Refusal.WRONG_STATE


@pytest.mark.parametrize("move", ["approve", "issue"])
def test_four_eyes(move: str) -> None:
    state = wf.SUBMITTED if move == "approve" else wf.APPROVED
    own = wf.refusal(move, state=state, user="ann", role="officer", drafted_by="ann", reason=None)
    other = wf.refusal(move, state=state, user="bob", role="officer", drafted_by="ann", reason=None)
    api = wf.refusal(move, state=state, user="bob", role="officer", drafted_by=None, reason=None)
    assert own is wf.Refusal.OWN_DRAFT and other is None and api is None


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r != "officer"])
def test_only_officers_approve_issue_and_withdraw(role: str) -> None:
    for move, state in (("approve", wf.SUBMITTED), ("issue", wf.APPROVED),
                        ("withdraw", wf.ISSUED), ("reject", wf.SUBMITTED)):  # fmt: skip
        why = wf.refusal(move, state=state, user="z", role=role, drafted_by="a", reason="r")
        assert why is wf.Refusal.NOT_PERMITTED


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r != "clerk"])
def test_only_clerks_draft(role: str) -> None:
    assert not wf.may_create(role)
    why = wf.refusal("save", state=wf.DRAFT, user="z", role=role, drafted_by="a", reason=None)
    assert why is wf.Refusal.NOT_PERMITTED


@pytest.mark.parametrize("reason", [None, "", "   ", "\n\t"])
def test_a_reason_is_needed(reason: str | None) -> None:
    for move, state in (("query", wf.SUBMITTED), ("reject", wf.SUBMITTED),
                        ("withdraw", wf.ISSUED), ("replace", wf.ISSUED)):  # fmt: skip
        why = wf.refusal(move, state=state, user="b", role="officer", drafted_by="a",
                         reason=reason)  # fmt: skip
        assert why is wf.Refusal.REASON_NEEDED


def test_a_reason_is_bounded() -> None:
    why = wf.refusal("reject", state=wf.SUBMITTED, user="b", role="officer", drafted_by="a",
                     reason="x" * (wf.REASON_MAX + 1))  # fmt: skip
    assert why is wf.Refusal.REASON_TOO_LONG


def test_the_buttons_a_page_shows() -> None:
    assert wf.moves_for(wf.SUBMITTED, user="b", role="officer", drafted_by="a") == (
        "query", "reject", "approve")  # fmt: skip
    assert wf.moves_for(wf.SUBMITTED, user="a", role="officer", drafted_by="a") == (
        "query", "reject")  # fmt: skip
    assert wf.moves_for(wf.DRAFT, user="a", role="clerk", drafted_by="a") == ("save", "submit")
    assert wf.moves_for(wf.ISSUED, user="a", role="auditor", drafted_by="b") == ()
    assert wf.moves_for(wf.REJECTED, user="b", role="officer", drafted_by="a") == ()


def test_unknown_role_or_move_is_a_bug_not_a_no() -> None:
    with pytest.raises(KeyError):
        wf.refusal("fly", state=wf.DRAFT, user="a", role="clerk", drafted_by=None, reason=None)
    with pytest.raises(InputError):  # users.may: an unknown role is refused, not "no"
        wf.refusal("save", state=wf.DRAFT, user="a", role="king", drafted_by=None, reason=None)
