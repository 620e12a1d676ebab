"""The layered validator: every layer runs, the fast path agrees with the slow one."""

from __future__ import annotations

from node.certificate.findings import Area, Level
from node.certificate.model import Certificate
from node.certificate.validate import Validator


def test_valid_document_has_a_certificate(
    validator: Validator, phyto_xml: bytes, phyto: Certificate
) -> None:
    report = validator.validate(phyto_xml)
    assert report.valid
    assert report.findings == ()
    assert report.certificate == phyto
    assert report.to_dict() == {"valid": True, "certificate": phyto.number, "findings": []}


def test_schema_invalid_document_still_gets_every_layer(
    validator: Validator, phyto_xml: bytes
) -> None:
    broken = (
        phyto_xml.replace(b"<ram:SequenceNumeric>2<", b"<ram:SequenceNumeric>two<")
        .replace(b"<ram:ID>CN</ram:ID>", b"<ram:ID>XX</ram:ID>", 1)
        .replace(b"<ram:ScientificName>Rosa hybrida</ram:ScientificName>", b"")
    )
    report = validator.validate(broken)
    assert not report.valid
    areas = {f.area for f in report.findings if f.level is Level.SEVERE}
    assert areas == {Area.SCHEMA, Area.MANDATORY, Area.MAPPING}
    lines = [f.line or 0 for f in report.findings]
    assert lines == sorted(lines)


def test_unreadable_date_makes_the_document_invalid_and_unread(
    validator: Validator, phyto_xml: bytes
) -> None:
    # Schema-valid (DateTimeString is free text) but not a date: the mandatory layer
    # must say so, because the model cannot read it.
    broken = phyto_xml.replace(b"2026-11-15T07:00:00+01:00", b"15/11/2026 07:00", 1)
    report = validator.validate(broken)
    assert not report.valid
    (finding,) = report.findings
    assert finding.area is Area.MANDATORY
    assert "StartDateTime is not an ISO 8601 date-time" in finding.message
    assert report.certificate is None


def test_refused_document_has_no_certificate(validator: Validator) -> None:
    report = validator.validate(b"<not-an-ephyto/>")
    assert not report.valid
    assert report.certificate is None
    assert report.to_dict()["certificate"] is None


def test_a_pass_from_placeholder_entries_is_said_beside_the_findings(
    validator: Validator, phyto_xml: bytes
) -> None:
    """The bundled IPPC lists are ours until a hub's are synced: a code they pass was not
    judged against an official edition, and the report names those lists (issue 13)."""
    import dataclasses

    from node.codelists.lists import CodeLists

    report = validator.validate(phyto_xml)
    assert report.findings == ()
    assert "treatment_types" in report.placeholder_lists
    assert "units" not in report.placeholder_lists  # the real Rec 20 edition
    assert list(report.placeholder_lists) == sorted(report.placeholder_lists)

    # The same lists with no entry marked placeholder (as after a sync): nothing to say.
    official = CodeLists(
        {
            name: dataclasses.replace(code_list, placeholders=frozenset())
            for name, code_list in validator.codelists.lists.items()
        },
        validator.codelists.locations,
    )
    assert Validator(validator.schema, official).validate(phyto_xml).placeholder_lists == ()
