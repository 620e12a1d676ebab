"""An export certificate's way through the console, from draft to issued (pure core).

States, as issue 15 names them: a clerk's **draft** is **submitted** for approval; a
certifying officer **queries** it (back to the clerk, with a reason), **rejects** it
(for good, with a reason) or **approves** it; an approved certificate is **issued**,
which sends it; an issued one may be **withdrawn** (with a reason) or **replaced** (a new
draft that says which certificate it replaces; the original is marked replaced when
the replacement is issued). Only a draft or a queried certificate can be edited: issued
data is fixed.

`refusal(...)` says why a user may not make a move (None: they may), as a value the
pages turn into words in the user's language; the store's compare-and-set then makes
the move happen once even when two officers press the button at the same moment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from node.console.users import may, may_issue

DRAFT = "draft"
SUBMITTED = "submitted"
QUERIED = "queried"
REJECTED = "rejected"
APPROVED = "approved"
ISSUED = "issued"
WITHDRAWN = "withdrawn"
REPLACED = "replaced"
STATES = (DRAFT, SUBMITTED, QUERIED, REJECTED, APPROVED, ISSUED, WITHDRAWN, REPLACED)
EDITABLE = frozenset({DRAFT, QUERIED})
# A reason is free text an officer writes for a clerk or a partner: bounded so that a
# pasted document does not travel inside a withdrawal note.
REASON_MAX = 500


class Refusal(enum.Enum):
    """Why a move is not allowed."""

    WRONG_STATE = "wrong-state"
    NOT_PERMITTED = "not-permitted"
    OWN_DRAFT = "own-draft"
    REASON_NEEDED = "reason-needed"
    REASON_TOO_LONG = "reason-too-long"


@dataclass(frozen=True, slots=True)
class Move:
    """One move: from which states, to which, the role's action it needs (users.ACTIONS),
    whether it needs a reason, and whether its drafter is barred from it (four eyes)."""

    name: str
    from_states: frozenset[str]
    to_state: str
    action: str
    needs_reason: bool = False
    four_eyes: bool = False


MOVES: dict[str, Move] = {
    m.name: m
    for m in (
        Move("save", EDITABLE, DRAFT, "draft"),
        Move("submit", EDITABLE, SUBMITTED, "draft"),
        Move("query", frozenset({SUBMITTED}), QUERIED, "approve", needs_reason=True),
        Move("reject", frozenset({SUBMITTED}), REJECTED, "approve", needs_reason=True),
        Move("approve", frozenset({SUBMITTED}), APPROVED, "approve", four_eyes=True),
        Move("issue", frozenset({APPROVED}), ISSUED, "issue", four_eyes=True),
        Move("withdraw", frozenset({ISSUED}), WITHDRAWN, "issue", needs_reason=True),
        # Starts a replacement draft; the original becomes REPLACED when that is issued.
        Move("replace", frozenset({ISSUED}), ISSUED, "issue", needs_reason=True),
    )
}


def refusal(
    move: str, *, state: str, user: str, role: str, drafted_by: str | None, reason: str | None
) -> Refusal | None:
    """Why `user` (with `role`) may not make `move` on a certificate in `state` that
    `drafted_by` drafted; None when they may. KeyError for an unknown move (a typo in
    the pages, never the user's input: the pages look the move up in MOVES first)."""
    spec = MOVES[move]
    if state not in spec.from_states:
        return Refusal.WRONG_STATE
    if not may(role, spec.action):
        return Refusal.NOT_PERMITTED
    if spec.four_eyes and not may_issue(user, role, drafted_by):
        return Refusal.OWN_DRAFT
    if spec.needs_reason:
        text = (reason or "").strip()
        if not text:
            return Refusal.REASON_NEEDED
        if len(text) > REASON_MAX:
            return Refusal.REASON_TOO_LONG
    return None


def moves_for(state: str, *, user: str, role: str, drafted_by: str | None) -> tuple[str, ...]:
    """The moves `user` may make on a certificate in `state` (a reason still to come):
    the buttons a page shows."""
    return tuple(
        name
        for name in MOVES
        if refusal(name, state=state, user=user, role=role, drafted_by=drafted_by, reason="x")
        is None
    )


def may_create(role: str) -> bool:
    """Whether a user with `role` may start a certificate (a new one, a copy, an import)."""
    return may(role, "draft")
