"""Model -> XML -> model and model -> JSON -> model lose nothing (property-based)."""

from __future__ import annotations

from datetime import timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.certificate import model as m
from node.certificate import safe_xml
from node.certificate.jsonmodel import certificate_from_json, certificate_to_json
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import Routing, certificate_from_tree, routing_from_tree
from tests.conftest import shared_samples

# Every character XML 1.0 can carry (surrogates and the C0 controls other than tab,
# newline and carriage return cannot appear in an XML document at all).
xml_chars = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters=[chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]
    + ["\ufffe", "\uffff"],
)
texts = st.text(xml_chars, max_size=30)
codes = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
opt_codes = st.none() | codes
opt_texts = st.none() | texts
languages = st.none() | st.sampled_from(["en", "zh", "ar", "ru", "es"])
text_values = st.builds(m.Text, texts, languages)
opt_text_values = st.none() | text_values
decimals = st.decimals(
    allow_nan=False,
    allow_infinity=False,
    places=4,
    min_value=Decimal("-1e9"),
    max_value=Decimal("1e9"),
)
offsets = st.none() | st.integers(-14 * 60, 14 * 60).map(
    lambda mins: timezone(timedelta(minutes=mins))
)
datetimes = st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), offsets)
opt_datetimes = st.none() | datetimes
measures = st.builds(m.Measure, decimals, opt_codes)
opt_measures = st.none() | measures


def tuples(
    strategy: st.SearchStrategy[object], max_size: int = 3
) -> st.SearchStrategy[tuple[object, ...]]:
    return st.lists(strategy, max_size=max_size).map(tuple)


notes = st.builds(m.Note, opt_codes, tuples(text_values), tuples(codes), opt_codes)
addresses = st.builds(
    m.Address,
    opt_texts,
    opt_texts,
    opt_texts,
    opt_texts,
    opt_texts,
    opt_texts,
    opt_texts,
    opt_codes,
    opt_texts,
    opt_texts,
)
parties = st.builds(
    m.Party, opt_codes, opt_text_values, opt_codes, st.none() | addresses, opt_text_values
)
locations = st.builds(m.Location, opt_codes, tuples(text_values))
countries = st.builds(m.Country, codes, tuples(text_values), tuples(text_values))
attachments = st.builds(m.Attachment, st.binary(max_size=40), opt_codes, opt_texts)
references = st.builds(
    m.ReferencedDocument,
    opt_datetimes,
    opt_codes,
    opt_codes,
    opt_codes,
    tuples(attachments, 2),
    opt_text_values,
)
clauses = st.builds(m.Clause, codes, tuples(text_values))
authentications = st.builds(
    m.Authentication, locations, opt_text_values, opt_datetimes, opt_text_values, tuples(clauses)
)
movements = st.builds(m.TransportMovement, codes, opt_codes, opt_text_values)
equipment = st.builds(m.TransportEquipment, opt_codes, tuples(codes))
classifications = st.builds(m.Classification, codes, opt_codes, tuples(text_values))
packages = st.builds(m.Package, codes, codes, decimals, tuples(texts))
characteristics = st.builds(m.ProcessCharacteristic, tuples(text_values), opt_measures)
treatments = st.builds(
    m.Treatment, codes, opt_datetimes, opt_datetimes, opt_measures, tuples(characteristics)
)
items = st.builds(
    m.TradeLineItem,
    st.integers(0, 10_000),
    tuples(text_values),
    tuples(text_values),
    tuples(text_values),
    tuples(codes),
    tuples(text_values),
    opt_measures,
    opt_measures,
    opt_measures,
    opt_measures,
    tuples(notes),
    tuples(classifications),
    tuples(packages),
    tuples(countries),
    tuples(locations),
    tuples(treatments),
)
consignments = st.builds(
    m.Consignment,
    parties,
    parties,
    countries,
    countries,
    locations,
    tuples(items),
    tuples(countries),
    tuples(countries),
    st.none() | locations,
    st.none() | locations,
    tuples(movements),
    tuples(equipment),
)
certificates = st.builds(
    m.Certificate,
    codes,
    st.sampled_from(["851", "657"]),
    codes,
    datetimes,
    parties,
    tuples(authentications),
    consignments,
    tuples(text_values),
    tuples(text_values),
    tuples(notes),
    tuples(references),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(certificates)
def test_xml_round_trip_loses_nothing(cert: m.Certificate) -> None:
    assert certificate_from_tree(safe_xml.parse(to_xml_bytes(cert))) == cert


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(certificates)
def test_json_round_trip_loses_nothing(cert: m.Certificate) -> None:
    assert certificate_from_json(certificate_to_json(cert)) == cert


def test_bundled_samples_round_trip(phyto: m.Certificate, reexport: m.Certificate) -> None:
    for cert in (phyto, reexport):
        xml = to_xml_bytes(cert)
        again = certificate_from_tree(safe_xml.parse(xml))
        assert again == cert
        assert to_xml_bytes(again) == xml


def test_shared_samples_made_by_another_system_are_read_and_round_trip() -> None:
    for path in shared_samples():
        cert = certificate_from_tree(safe_xml.parse(path.read_bytes()))
        assert cert.number == "123456789CO"
        assert cert.consignment.export_country.id == "CO"
        assert cert.consignment.import_country.id == "PE"
        (item,) = cert.consignment.items
        assert item.scientific_names == (m.Text("Widgeticus"),)
        assert item.net_weight == m.Measure(Decimal("1000"))
        assert {n.subject for n in item.notes} >= {"RPCRF", "OQV", "ADTLIL"}
        (treatment,) = item.treatments
        assert treatment.duration == m.Measure(Decimal("3"), "HUR")
        assert treatment.characteristics[3].value == m.Measure(Decimal("32.0000"), "CEL")
        assert cert.references[0].attachments[0].data.startswith(b"R0lGODlh")
        assert certificate_from_tree(safe_xml.parse(to_xml_bytes(cert))) == cert


def test_the_cheap_routing_read_agrees_with_the_model(
    phyto: m.Certificate, reexport: m.Certificate
) -> None:
    for cert in (phyto, reexport):
        assert routing_from_tree(safe_xml.parse(to_xml_bytes(cert))) == Routing.of(cert)
