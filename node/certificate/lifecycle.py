"""Later messages on a certificate: withdrawal and replacement (pure).

A withdrawal is the same certificate with status 40. A replacement is a new
certificate (its own number, status 70) that names the one it replaces in the ADRP
notes, as ISPM 12 and the IPPC tag acronyms prescribe; the replaced certificate is
then sent again with status 44 by the issuing NPPO's system if it wishes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class Supersession:
    """What a withdrawal or replacement document says of the certificate it supersedes."""

    kind: Literal["withdraws", "replaces"]
    certificate_number: str
    reason: str | None
    at: datetime | None  # when the sender says it did so (ADRD), if it says


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a certificate stands, as the PDF prints it: issued, withdrawn or replaced."""

    status: Literal["issued", "withdrawn", "replaced"]
    by_number: str | None = None  # the replacing certificate's number

    @property
    def watermark(self) -> str | None:
        """The words stamped across a superseded certificate; None for an issued one."""
        if self.status == "withdrawn":
            return "WITHDRAWN"
        if self.status == "replaced":
            return "REPLACED" if not self.by_number else f"REPLACED by {self.by_number}"
        return None


def supersession_of(cert: Certificate) -> Supersession | None:
    """What `cert` withdraws (status 40: itself) or replaces (ADRPN), else None."""
    reason = _note(cert, "ADRPR")
    at = _note_datetime(_note(cert, "ADRD"))
    if cert.status_code == WITHDRAWN:
        return Supersession("withdraws", cert.number, reason, at)
    replaced = _note(cert, "ADRPN")
    if replaced and replaced != cert.number:
        return Supersession("replaces", replaced, reason, at)
    return None


def _note(cert: Certificate, subject: str) -> str | None:
    for note in cert.notes:
        if note.subject == subject:
            text = " ".join(t.value.strip() for t in note.contents if t.value.strip())
            return text or None
    return None


def _note_datetime(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None  # a partner's free text: the time it arrived stands in
    return value if value.tzinfo is not None else None
