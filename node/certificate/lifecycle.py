"""Later messages on a certificate: withdrawal and replacement (pure).

A withdrawal is the same certificate with status 40. A replacement is a new
certificate (its own number, status 70) that names the one it replaces in the ADRP
notes, as ISPM 12 and the IPPC tag acronyms prescribe; the replaced certificate is
then sent again with status 44 by the issuing NPPO's system if it wishes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from node.certificate.model import Certificate, Note, Text
from node.certificate.xml_build import format_datetime
from node.errors import InputError

WITHDRAWN = "40"
ISSUED = "70"
_REPLACEMENT_SUBJECTS = frozenset({"ADRP", "ADRPN", "ADRPR", "ADRD"})


class LifecycleError(InputError):
    """The change asked for does not apply to this certificate."""


def withdrawal_of(cert: Certificate) -> Certificate:
    """The certificate as withdrawn (status 40)."""
    if cert.status_code == WITHDRAWN:
        raise LifecycleError(f"certificate {cert.number} is already withdrawn")
    return replace(cert, status_code=WITHDRAWN)


def replacement_of(
    new: Certificate, *, replaced_number: str, reason: str, at: datetime
) -> Certificate:
    """`new`, issued as the replacement of certificate `replaced_number`."""
    if new.number == replaced_number:
        raise LifecycleError(
            f"a replacement needs a number of its own, not {replaced_number} again"
        )
    if not reason.strip():
        raise LifecycleError("a replacement needs a reason (ADRPR)")
    kept = tuple(n for n in new.notes if n.subject not in _REPLACEMENT_SUBJECTS)
    notes = (
        *kept,
        Note("ADRP", (Text("1"),)),
        Note("ADRPN", (Text(replaced_number),)),
        Note("ADRPR", (Text(reason),)),
        Note("ADRD", (Text(format_datetime(at)),)),
    )
    return replace(new, status_code=ISSUED, notes=notes)
