"""Whether a new node's country is a real one: an officially assigned ISO 3166-1 alpha-2 code
from the bundled `countries` code list, or, for test networks only, a user-assigned one.

`check_country` (enrolment.py) checks only the shape (two capitals), because configs,
requests and directories made for test networks must still be read; this is the
stricter check a new identity passes, so that a production node is not created as
`XX` by mistake.
"""

from __future__ import annotations

import re

from node.codelists.lists import bundled
from node.identity.enrolment import EnrolmentError, check_country


def check_assigned_country(code: str, *, test_network: bool = False) -> str:
    """`code` if it is an officially assigned ISO 3166-1 alpha-2 code, or a user-assigned
    one with `test_network`; EnrolmentError (an InputError) saying which it is if not."""
    code = check_country(code)
    if code in bundled().get("countries"):
        return code
    if is_user_assigned(code):
        if test_network:
            return code
        raise EnrolmentError(
            f"country {code} is a user-assigned ISO 3166-1 code, not a country: give the "
            "NPPO's country code (such as NL), or --test-country for a test network"
        )
    raise EnrolmentError(
        f"country {code} is not an officially assigned ISO 3166-1 alpha-2 code "
        "(such as NL; `ephyto codelists show countries` lists them)"
    )


def is_user_assigned(code: str) -> bool:
    """Whether `code` is one ISO 3166-1 leaves to users (AA, QM to QZ, XA to XZ, ZZ): never a
    country, so free for test networks."""
    return _USER_ASSIGNED.fullmatch(code) is not None


_USER_ASSIGNED = re.compile(r"AA|Q[M-Z]|X[A-Z]|ZZ")
