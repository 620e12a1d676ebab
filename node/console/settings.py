"""The console's settings an admin changes in the console (pure): how new certificates
are numbered, and what a new draft starts with.

Each setting has a check that says, in the admin's words, why a value is refused; an
empty value means the default. Node-wide settings (listeners, keys, the hub) stay in
node.toml, which only the operator edits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from node.console.i18n import N_

_PREFIX = re.compile(r"[A-Z0-9][A-Z0-9/-]{0,23}")
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_STATEMENT = re.compile(r"[0-9A-Za-z]{1,8}")


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    label: str
    help: str
    # None when the value is good, else why not (English, marked for translation).
    refusal: Callable[[str], str | None]


def _prefix(value: str) -> str | None:
    if _PREFIX.fullmatch(value) is None:
        return N_("1 to 24 of A-Z, 0-9, '-' and '/', starting with a letter or digit.")
    return None


def _locode(value: str) -> str | None:
    return None if _LOCODE.fullmatch(value) else N_("A UN/LOCODE: five letters, like NLRTM.")


def _statement(value: str) -> str | None:
    return None if _STATEMENT.fullmatch(value) else N_("A certifying statement's code.")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "number_prefix",
        N_("Numbers of new certificates start with"),
        N_("Followed by a six-digit sequence. Empty: the country and the year (NL-2026-C)."),
        _prefix,
    ),
    Setting(
        "place_of_issue",
        N_("Place of issue of new certificates"),
        N_("A UN/LOCODE. Empty: none (the clerk fills it in)."),
        _locode,
    ),
    Setting(
        "statement",
        N_("Certifying statement of new certificates"),
        N_("Its code in the certifying statements list. Empty: none."),
        _statement,
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def refusals(values: Mapping[str, str]) -> dict[str, str]:
    """Why each refused value (by setting name) is refused; unknown names are ignored."""
    found = {}
    for name, value in values.items():
        setting = _BY_NAME.get(name)
        if setting is not None and value:
            why = setting.refusal(value)
            if why is not None:
                found[name] = why
    return found


def number_prefix(settings: Mapping[str, str], *, country: str, now: datetime) -> str:
    """What a new certificate's number starts with."""
    return settings.get("number_prefix") or f"{country}-{now.year}-C"


def draft_defaults(settings: Mapping[str, str]) -> dict[str, object]:
    """The JSON model a new, empty draft starts with (docs/certificate-json.md)."""
    signatory: dict[str, object] = {}
    if settings.get("place_of_issue"):
        signatory["issue_location"] = {"id": settings["place_of_issue"]}
    if settings.get("statement"):
        signatory["clauses"] = [{"id": settings["statement"]}]
    return {"signatories": [signatory]} if signatory else {}
