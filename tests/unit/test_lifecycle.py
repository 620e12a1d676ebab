"""Withdrawal and replacement of a certificate."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from node.certificate.lifecycle import LifecycleError, replacement_of, withdrawal_of
from node.certificate.model import Certificate, Text
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes

AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_withdrawal_is_status_40_and_still_valid(phyto: Certificate, validator: Validator) -> None:
    withdrawn = withdrawal_of(phyto)
    assert withdrawn.status_code == "40"
    assert withdrawn.number == phyto.number
    assert validator.validate(to_xml_bytes(withdrawn)).valid
    with pytest.raises(LifecycleError, match="already withdrawn"):
        withdrawal_of(withdrawn)


def test_replacement_carries_the_adrp_notes(phyto: Certificate, validator: Validator) -> None:
    new = replace(phyto, number="NL-2026-0001235")
    replacement = replacement_of(
        new, replaced_number=phyto.number, reason="Change in consignee", at=AT
    )
    notes = {n.subject: n.contents for n in replacement.notes if n.subject}
    assert notes["ADRPN"] == (Text(phyto.number),)
    assert notes["ADRPR"] == (Text("Change in consignee"),)
    assert notes["ADRD"] == (Text("2026-11-28T09:00:00Z"),)
    report = validator.validate(to_xml_bytes(replacement))
    assert report.valid, [str(f) for f in report.findings]
    again = replacement_of(replacement, replaced_number="NL-OTHER", reason="again", at=AT)
    assert [n.subject for n in again.notes].count("ADRPN") == 1


def test_replacement_needs_its_own_number_and_a_reason(phyto: Certificate) -> None:
    with pytest.raises(LifecycleError, match="number of its own"):
        replacement_of(phyto, replaced_number=phyto.number, reason="x", at=AT)
    with pytest.raises(LifecycleError, match="reason"):
        replacement_of(replace(phyto, number="N2"), replaced_number=phyto.number, reason=" ", at=AT)
