"""What a run measures beyond latency (node/study/measures.py), and `[transit]` parsing."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.envelope import _codec as codec
from node.envelope.envelope import EnvelopeHeader, seal
from node.envelope.receipt import Outcome, Receipt, make_receipt
from node.errors import InputError
from node.hub.config import DEFAULT_REFRESH_SECONDS as HUB_REFRESH_SECONDS
from node.identity.config import DEFAULT_REFRESH_SECONDS
from node.ippc import Envelope, TrackingState, build_request, render_response
from node.ippc import EnvelopeHeader as HubHeader
from node.ippc.operations import (
    AcknowledgeEnvelopeReceipt,
    AcknowledgeEnvelopeReceiptResponse,
    DeliverEnvelope,
    DeliverEnvelopeResponse,
    GetImportEnvelopeHeaders,
    GetImportEnvelopeHeadersResponse,
    PULLSingleImportEnvelope,
    PULLSingleImportEnvelopeResponse,
)
from node.samples import sample_model_bytes
from node.study import measures
from node.study.measures import (
    WireSizes,
    exposure_rows,
    extra_files,
    extra_summary,
    imported_flows,
    imported_trade_path,
    parties_rows,
    rotations_rows,
    run_flows,
    transit_modes,
    transit_rows,
    trust_rows,
)
from node.study.scenario import (
    DEFAULT_TRANSIT,
    GeneratedTrade,
    ImportedTrade,
    Scenario,
    parse_scenario,
)
from node.study.simulate import ROUTE_DIRECT, Options, Run, hub_holdings_rows, simulate
from node.study.topology import count
from node.study.trade import Flows, generate_flows

NODES = """
{ code = "FR", region = "europe", node = true },
{ code = "DE", region = "europe", node = true },
{ code = "NL", region = "europe", node = true },
"""
HUB_ONLY = """
{ code = "IT", region = "europe" },
{ code = "ES", region = "europe" },
"""
NO_NETWORK = """
[links]
pairs = [{ regions = ["europe", "europe"], latency_ms = 0, jitter_ms = 0, loss = 0 }]
"""
REFRESH_HOURS = DEFAULT_REFRESH_SECONDS / 3600


def scenario(
    *,
    kind: str = "hybrid",
    countries: str = NODES + HUB_ONLY,
    per_year: int = 3650,
    days: int = 10,
    extra: str = "",
    links: str = NO_NETWORK,
) -> Scenario:
    text = f"""
name = "small"
period_days = {days}
countries = [{countries}]
[topology]
kind = "{kind}"
top_k = 1
[trade]
seed = 7
certificates_per_year = {per_year}
{links}
{extra}
"""
    return parse_scenario(text.encode())


def _outage(party: str, start: float, hours: float) -> str:
    return f'[[outages]]\nparty = "{party}"\nstart_hours = {start}\nduration_hours = {hours}\n'


def _rotation(day: float, countries: str) -> str:
    return f"[[key_rotations]]\nday = {day}\ncountries = {countries}\n"


def _rows_by_first(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row for row in rows[1:]}


# -- wire sizes ----------------------------------------------------------------------------


def test_the_wire_sizes_are_the_measured_ones() -> None:
    """Measures every size constant again with the node's own code: the bundled sample
    as the node's XML, sealed (node.envelope), its receipt, and the hub's SOAP messages
    built by the client (`build_request`) and the hub (`render_response`). Every input
    is fixed (keys, ids, times), so the sizes are exact."""
    certificate = certificate_from_json(sample_model_bytes("phyto"))
    xml = to_xml_bytes(certificate)
    when = datetime(2025, 1, 1, tzinfo=UTC)
    signing = Ed25519PrivateKey.from_private_bytes(bytes(32))
    recipient = X25519PrivateKey.from_private_bytes(bytes(range(32)))
    header = EnvelopeHeader(
        message_id="00000000-0000-4000-8000-000000000001",
        from_country="NL",
        to_country="CN",
        certificate_type=certificate.type_code,
        certificate_status=certificate.status_code,
        certificate_number=certificate.number,
        created=when,
    )
    envelope = seal(
        header=header,
        payload=xml,
        sender_signing_key=signing,
        recipient_public_key=recipient.public_key(),
    )
    receipt = make_receipt(
        Receipt(
            message_id=header.message_id,
            content_digest=codec.content_digest(xml),
            from_country="CN",
            to_country="NL",
            received=when,
            outcome=Outcome.ACCEPTED,
        ),
        receiver_signing_key=signing,
    )
    hub_header = HubHeader(
        from_="NL",
        to="CN",
        certificate_type=int(certificate.type_code),
        certificate_status=int(certificate.status_code),
        nppo_certificate_number=certificate.number,
    )
    tracking = "00000000-0000-4000-8000-000000000002"
    stored = replace(
        hub_header,
        hub_delivery_number=tracking,
        hub_tracking_info=TrackingState.PENDING_DELIVERY.value,
    )
    sealed, plain = envelope.decode(), xml.decode()
    empty_listing = render_response(GetImportEnvelopeHeadersResponse())
    one_listed = render_response(GetImportEnvelopeHeadersResponse(headers=(stored,)))
    measured = {
        "CERTIFICATE_XML_BYTES": len(xml),
        "ENVELOPE_BYTES": len(envelope),
        "RECEIPT_BYTES": len(receipt),
        "HUB_DELIVER_SEALED_BYTES": len(
            build_request(DeliverEnvelope(env=Envelope.of(hub_header, sealed)))
        ),
        "HUB_DELIVER_PLAIN_BYTES": len(
            build_request(DeliverEnvelope(env=Envelope.of(hub_header, plain)))
        ),
        "HUB_DELIVER_ANSWER_BYTES": len(render_response(DeliverEnvelopeResponse(result=stored))),
        "HUB_POLL_REQUEST_BYTES": len(build_request(GetImportEnvelopeHeaders())),
        "HUB_POLL_ANSWER_BYTES": len(empty_listing),
        "HUB_LISTED_HEADER_BYTES": len(one_listed) - len(empty_listing),
        "HUB_FETCH_REQUEST_BYTES": len(
            build_request(PULLSingleImportEnvelope(hub_tracking_number=tracking))
        ),
        "HUB_FETCH_PLAIN_BYTES": len(
            render_response(PULLSingleImportEnvelopeResponse(result=Envelope.of(stored, plain)))
        ),
        "HUB_ACK_REQUEST_BYTES": len(
            build_request(AcknowledgeEnvelopeReceipt(hub_tracking_number=tracking))
        ),
        "HUB_ACK_ANSWER_BYTES": len(render_response(AcknowledgeEnvelopeReceiptResponse())),
    }
    assert {name: getattr(measures, name) for name in measured} == measured


def test_wire_sizes_refuse_nonsense() -> None:
    for bad in (-1, 1.5, True, 1 << 31):
        with pytest.raises(InputError, match="envelope"):
            WireSizes(envelope=bad)  # type: ignore[arg-type]


# -- key rotations -------------------------------------------------------------------------


def test_the_hub_refreshes_its_directory_as_often_as_a_node() -> None:
    # The model uses one refresh interval for both (node.identity.config's).
    assert HUB_REFRESH_SECONDS == DEFAULT_REFRESH_SECONDS


def _one_rotation(sc: Scenario, seed: int = 0) -> list[str]:
    rows = rotations_rows(simulate(sc, Options(seed=seed)))
    assert rows[0] == ["day", "country", "partners", "reached_all_hours", "reached_p50_hours"]
    assert len(rows) == 2
    return rows[1]


def test_a_rotation_reaches_its_partner_at_the_first_refresh_after_the_publish() -> None:
    # Day 2 is hour 48; the maintainer publishes 24 h later (hour 72); DE, FR's only
    # partner, fetches the directory every 60 s from a seeded phase: within a minute.
    pair = NODES.replace('{ code = "NL", region = "europe", node = true },', "")
    sc = scenario(kind="bilateral", countries=pair, extra=_rotation(2, '["FR"]'))
    day, country, partners, reached_all, p50 = _one_rotation(sc)
    assert (day, country, partners) == ("2", "FR", "1")
    publish = measures.ROTATION_PUBLISH_HOURS
    assert publish <= float(reached_all) <= publish + REFRESH_HOURS
    assert p50 == reached_all
    # Another seed, another phase: still within that minute, and seeded (the same twice).
    other = _one_rotation(sc, seed=9)
    assert publish <= float(other[3]) <= publish + REFRESH_HOURS
    assert _one_rotation(sc, seed=9) == other


def test_a_registry_outage_delays_a_rotation_until_the_registry_is_back() -> None:
    # The registry is down from hour 70 to hour 80: the publish at hour 72 is fetched
    # at the first refresh from hour 80, 32 h after the request at hour 48.
    pair = NODES.replace('{ code = "NL", region = "europe", node = true },', "")
    outage = _rotation(2, '["FR"]') + _outage("registry", 70, 10)
    sc = scenario(kind="bilateral", countries=pair, extra=outage)
    reached_all = float(_one_rotation(sc)[3])
    assert 32 <= reached_all <= 32 + REFRESH_HOURS
    # An outage over before the publish changes nothing.
    early = scenario(
        kind="bilateral", countries=pair, extra=_rotation(2, '["FR"]') + _outage("registry", 50, 10)
    )
    assert 24 <= float(_one_rotation(early)[3]) <= 24 + REFRESH_HOURS
    # The partner's own outage (hour 60 to 90) delays it too: it refreshes once back.
    down = scenario(
        kind="bilateral", countries=pair, extra=_rotation(2, '["FR"]') + _outage("DE", 60, 30)
    )
    assert 42 <= float(_one_rotation(down)[3]) <= 42 + REFRESH_HOURS


def test_a_rotation_counts_node_partners_and_the_hub_not_hub_only_countries() -> None:
    # All through the hub: FR trades with DE, NL (nodes) and IT, ES (hub only); its
    # partners are DE, NL and the hub. IT runs no node: it has no row.
    sc = scenario(kind="hub", per_year=36_500, extra=_rotation(1, '["FR", "IT"]'))
    run = simulate(sc, Options())
    assert run_flows(run).volumes.keys() >= {("FR", "DE"), ("FR", "NL"), ("FR", "IT")}
    rows = rotations_rows(run)
    assert [row[:3] for row in rows[1:]] == [["1", "FR", "3"]]
    assert 24 <= float(rows[1][4]) <= float(rows[1][3]) <= 24 + REFRESH_HOURS
    # A partner that joins after the publish fetches the new keys when it starts.
    late = NODES.replace(
        'code = "NL", region = "europe", node = true',
        ('code = "NL", region = "europe", node = true, joins_day = 5'),
    )
    sc = scenario(
        kind="hub", countries=late + HUB_ONLY, per_year=36_500, extra=_rotation(1, '["FR"]')
    )
    assert rotations_rows(simulate(sc, Options()))[1][:3] == ["1", "FR", "2"]


def test_rotation_hours_are_on_the_scenario_clock_in_a_compressed_run() -> None:
    pair = NODES.replace('{ code = "NL", region = "europe", node = true },', "")
    outage = _rotation(2, '["FR"]') + _outage("registry", 70, 10)
    sc = scenario(kind="bilateral", countries=pair, extra=outage)
    rows = rotations_rows(simulate(sc, Options(compress=60)))
    assert 32 <= float(rows[1][3]) <= 32 + REFRESH_HOURS


# -- exposure and trust ---------------------------------------------------------------------


def test_the_hub_sees_everything_all_through_the_hub_and_nothing_all_bilateral() -> None:
    hub = simulate(scenario(kind="hub", per_year=36_500), Options(seed=1))
    assert hub.certificates > 100
    rows = _rows_by_first(exposure_rows(hub))
    assert rows["hub"][1:5] == [str(hub.certificates), "1.000000", rows["hub"][3], "1.000000"]
    assert rows["registry"][1:5] == ["0", "0.000000", "0", "0.000000"]
    assert "no certificate" in rows["registry"][5]
    # No loss: every certificate is delivered, so each is seen by both its ends.
    countries = [rows[c] for c in hub.countries]
    assert sum(int(r[1]) for r in countries) == 2 * hub.certificates
    assert extra_summary(hub)["exposure"]["hub_share"] == 1.0

    everyone = (NODES + HUB_ONLY).replace('" }', '", node = true }')
    bilateral = simulate(scenario(kind="bilateral", countries=everyone, per_year=36_500), Options())
    rows = _rows_by_first(exposure_rows(bilateral))
    assert rows["hub"][1:5] == ["0", "0.000000", "0", "0.000000"]
    exposure = extra_summary(bilateral)["exposure"]
    assert exposure["hub_share"] == 0.0
    fr = bilateral.countries.index("FR")
    fr_seen = sum(
        1 for o, d in zip(bilateral.origin, bilateral.destination, strict=True) if fr in (o, d)
    )
    assert rows["FR"][1] == str(fr_seen)
    assert exposure["largest_country_share"] == max(
        round(int(rows[c][1]) / bilateral.certificates, 6) for c in bilateral.countries
    )


def test_trust_is_the_topology_count_of_the_scenario() -> None:
    sc = scenario(kind="hybrid", per_year=36_500)
    run = simulate(sc, Options())
    assert isinstance(sc.trade, GeneratedTrade)
    expected = count(sc.topology, sc.countries, generate_flows(sc.countries, sc.trade), sc.top_k)
    trust = extra_summary(run)["trust"]
    assert trust == {
        "links": expected.links,
        "direct_links": len(expected.direct_links),
        "hub_links": len(expected.hub_users),
        "trust_relationships": expected.trust_relationships,
        "most_keys_held_by_a_country": expected.most_keys_held_by_a_country,
        "keys_held_by_hub": expected.keys_held["hub"],
    }
    assert trust["direct_links"] >= 1 and trust["hub_links"] >= 1
    rows = trust_rows(run)
    assert rows[0] == ["country", "direct_partners", "keys_held"]
    assert {r[0]: int(r[2]) for r in rows[1:]} == {
        c: n for c, n in expected.keys_held.items() if c != "hub"
    }
    assert sum(int(r[1]) for r in rows[1:]) == 2 * len(expected.direct_links)


# -- bytes and CPU --------------------------------------------------------------------------


def test_bytes_per_certificate_are_the_messages_of_its_route() -> None:
    overhead = measures.MESSAGE_OVERHEAD_BYTES
    everyone = (NODES + HUB_ONLY).replace('" }', '", node = true }')
    bilateral = simulate(scenario(kind="bilateral", countries=everyone), Options())
    wire = extra_summary(bilateral)["bytes_on_wire"]
    direct = measures.ENVELOPE_BYTES + measures.RECEIPT_BYTES + 2 * overhead
    assert wire["per_certificate"] == {"direct": direct, "hub": None, "hub-fallback": None}
    assert wire["pull_polling"] == 0
    assert wire["total"] == direct * bilateral.certificates

    # Nodes only, all through the hub: delivered sealed, then pushed.
    nodes = simulate(scenario(kind="hub", countries=NODES), Options())
    sealed = (
        measures.HUB_DELIVER_SEALED_BYTES
        + measures.HUB_DELIVER_ANSWER_BYTES
        + measures.ENVELOPE_BYTES
        + measures.RECEIPT_BYTES
        + 4 * overhead
    )
    wire = extra_summary(nodes)["bytes_on_wire"]
    assert wire["per_certificate"]["hub"] == sealed
    # Every node polls the hub every 30 s for the 10 days, whether or not anything waits.
    polls = 3 * (10 * 86_400 // 30)
    poll = measures.HUB_POLL_REQUEST_BYTES + measures.HUB_POLL_ANSWER_BYTES + 2 * overhead
    assert wire["pull_polling"] == polls * poll
    assert wire["total"] == sealed * nodes.certificates + polls * poll


def test_parties_bytes_balance_and_cpu_is_the_service_times() -> None:
    run = simulate(scenario(kind="hybrid", per_year=36_500), Options())
    rows = parties_rows(run)
    assert rows[0] == ["party", "cpu_seconds", "bytes_sent", "bytes_received"]
    assert [r[0] for r in rows[1:]] == ["hub", *run.countries]
    sent = sum(int(r[2]) for r in rows[1:])
    assert sent == sum(int(r[3]) for r in rows[1:])
    assert sent == extra_summary(run)["bytes_on_wire"]["total"]
    service = run.options.service
    at_hub = sum(1 for r in run.route if r != ROUTE_DIRECT)
    assert float(rows[1][1]) == pytest.approx(service.hub_ms * at_hub / 1000, abs=0.001)
    # The countries: the sender's work on every attempt, the receiver's on each delivery.
    countries = sum(float(r[1]) for r in rows[2:])
    expected = service.node_send_ms * sum(run.attempts) + service.node_receive_ms * run.certificates
    assert countries == pytest.approx(expected / 1000, abs=0.001 * len(run.countries))
    cpu = extra_summary(run)["cpu_ms_per_certificate"]
    # No loss, no outage: one attempt each, every one delivered.
    assert cpu["sender"] == pytest.approx(service.node_send_ms)
    assert cpu["receiver"] == pytest.approx(service.node_receive_ms)
    assert cpu["hub"] == pytest.approx(service.hub_ms * at_hub / run.certificates)
    slow = replace(service, hub_ms=100.0)
    again = extra_summary(simulate(run.scenario, Options(service=slow)))
    assert again["cpu_ms_per_certificate"]["hub"] == pytest.approx(100 * at_hub / run.certificates)


# -- transit --------------------------------------------------------------------------------


def _single_mode(hours: float) -> str:
    return f'[transit]\nmodes = [{{ mode = "air", share = 1, hours = {hours} }}]\n'


def test_share_before_arrival_with_a_single_mode() -> None:
    slow_pull = "[hub]\npull_interval_seconds = 3600\n"
    hour_links = ""  # the default links: tens of ms
    long = scenario(kind="hub", extra=_single_mode(480) + slow_pull, links=hour_links)
    run = simulate(long, Options())
    assert extra_summary(run)["share_before_arrival"] == {
        "all": 1.0,
        "direct": None,
        "hub": 1.0,
        "hub-fallback": None,
    }
    # A transit of 36 s: what the hub pushes to a node makes it, most of what a country
    # without a node pulls hourly does not; the share counts exactly those within 36 s.
    short = scenario(kind="hub", extra=_single_mode(0.01) + slow_pull, links=hour_links)
    run = simulate(short, Options())
    latencies = [d - s for s, d in zip(run.submitted, run.delivered, strict=True)]
    within = sum(1 for latency in latencies if latency <= 36.0)
    share = extra_summary(run)["share_before_arrival"]["hub"]
    assert share == round(within / run.certificates, 6)
    assert 0 < share < 1
    rows = transit_rows(run)
    assert rows[0][:5] == ["route", "mode", "rec19_code", "transit_hours", "certificates"]
    assert rows[1][:5] == ["hub", "air", "4", "0.01", str(run.certificates)]


def test_only_sea_and_air_cross_regions() -> None:
    two_regions = NODES + '{ code = "JP", region = "asia", node = true },'
    modes = (
        "[transit]\nmodes = [\n"
        '  { mode = "road", share = 5, hours = 48 },\n'
        '  { mode = "sea", share = 1, hours = 480 },\n'
        "]\n"
    )
    sc = scenario(kind="bilateral", countries=two_regions, per_year=36_500, extra=modes, links="")
    run = simulate(sc, Options())
    jp = run.countries.index("JP")
    drawn = transit_modes(run)
    crossing = {m for i, m in enumerate(drawn) if jp in (run.origin[i], run.destination[i])}
    within = [m for i, m in enumerate(drawn) if jp not in (run.origin[i], run.destination[i])]
    assert crossing == {1}  # sea
    assert set(within) == {0, 1} and within.count(0) > 2 * within.count(1)
    assert transit_modes(run) == drawn  # seeded


def test_transit_defaults_and_a_valid_table() -> None:
    assert scenario().transit == DEFAULT_TRANSIT
    assert {m.mode for m in DEFAULT_TRANSIT} == {"sea", "air", "road", "rail"}
    sc = scenario(extra='[transit]\nmodes = [{ mode = "inland-water", share = 0.5, hours = 96 }]\n')
    assert [(m.mode, m.rec19_code, m.share, m.hours) for m in sc.transit] == [
        ("inland-water", "8", 0.5, 96.0)
    ]


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('modes = [{ mode = "sea", share = 1, hours = -5 }]', "transit.modes[0].hours"),
        ('modes = [{ mode = "sea", share = 1, hours = 0 }]', "transit.modes[0].hours"),
        ('modes = [{ mode = "sea", share = 1, hours = 1e9 }]', "transit.modes[0].hours"),
        ('modes = [{ mode = "sea", share = 1, hours = "ten" }]', "transit.modes[0].hours"),
        ('modes = [{ mode = "sea", share = 1 }]', "transit.modes[0].hours"),
        ('modes = [{ mode = "sea", share = -1, hours = 5 }]', "transit.modes[0].share"),
        ('modes = [{ mode = "sea", share = true, hours = 5 }]', "transit.modes[0].share"),
        (
            'modes = [{ mode = "sea", share = 0, hours = 5 }, { mode = "air", share = 0, '
            "hours = 5 }]",
            "transit.modes: the shares sum to 0",
        ),
        ('modes = [{ mode = "boat", share = 1, hours = 5 }]', "transit.modes[0].mode"),
        ('modes = [{ mode = "1", share = 1, hours = 5 }]', "transit.modes[0].mode"),
        ("modes = [{ share = 1, hours = 5 }]", "transit.modes[0].mode"),
        ('modes = [{ mode = "sea", share = 1, hours = 5, speed = 3 }]', "transit.modes[0].speed"),
        (
            'modes = [{ mode = "sea", share = 1, hours = 5 }, { mode = "sea", share = 1, '
            "hours = 9 }]",
            "transit.modes[1].mode: sea is listed twice",
        ),
        ("modes = []", "transit.modes: at least one"),
        ('modes = "sea"', "transit.modes: an array"),
        ("modes = [1]", "transit.modes[0]: a table"),
        ('mode = "sea"', "transit.mode: unknown key"),
        (
            "modes = ["
            + ", ".join(f'{{ mode = "sea", share = 1, hours = {h} }}' for h in range(1, 8))
            + "]",
            "at most 5",
        ),
    ],
)
def test_hostile_transit_tables_are_refused_naming_the_key(table: str, named: str) -> None:
    with pytest.raises(InputError, match=re.escape(named)):
        scenario(extra=f"[transit]\n{table}\n")


def test_transit_across_regions_needs_sea_or_air() -> None:
    two_regions = NODES + '{ code = "JP", region = "asia", node = true },'
    with pytest.raises(InputError, match=r"transit\.modes: .*sea or air"):
        scenario(
            countries=two_regions,
            extra='[transit]\nmodes = [{ mode = "road", share = 1, hours = 48 }, '
            '{ mode = "sea", share = 0, hours = 480 }]\n',
        )
    # One region: road alone is fine.
    scenario(extra='[transit]\nmodes = [{ mode = "road", share = 1, hours = 48 }]\n')
    top_level = f'name = "x"\ntransit = "sea"\ncountries = [{NODES}]\n[trade]\nseed = 1\n'
    with pytest.raises(InputError, match="transit: a table"):
        parse_scenario((top_level + "certificates_per_year = 10\n").encode())


# -- imported trade -------------------------------------------------------------------------


def _imported(path: str, extra: str = "", countries: str = NODES + HUB_ONLY) -> Scenario:
    text = f"""
name = "imported"
period_days = 365
countries = [{countries}]
[topology]
kind = "hybrid"
top_k = 1
[trade]
source = "imported"
path = "{path}"
{extra}
{NO_NETWORK}
"""
    return parse_scenario(text.encode())


def test_an_imported_scenario_is_simulated_from_its_csv(tmp_path: Path) -> None:
    (tmp_path / "flows.csv").write_text(
        "origin,destination,weight\nFR,DE,3000\nDE,FR,1000\nfrance,Italy,650\n"
    )
    sc = _imported("flows.csv")
    assert isinstance(sc.trade, ImportedTrade)
    where = imported_trade_path(sc.trade, tmp_path / "imported.toml")
    assert where == tmp_path / "flows.csv"
    flows = imported_flows(sc, Path(where).read_bytes())
    assert flows.volumes == {("DE", "FR"): 1000, ("FR", "DE"): 3000, ("FR", "IT"): 650}
    run = simulate(sc, Options(scale=0.1, flows=flows))
    pairs: dict[tuple[str, str], int] = {}
    for o, d in zip(run.origin, run.destination, strict=True):
        key = (run.countries[o], run.countries[d])
        pairs[key] = pairs.get(key, 0) + 1
    assert set(pairs) == set(flows.volumes)
    for pair, volume in flows.volumes.items():
        assert abs(pairs[pair] - volume / 10) <= 12  # a twelfth at most per month, rounded
    files = extra_files(run)
    assert len(files["exposure.csv"]) == 2 + len(run.countries) + 1
    # The same file gives the same run whatever it was read for (its own spread seed).
    assert simulate(sc, Options(scale=0.1, flows=flows)).submitted == run.submitted
    # Scaled to a total when the scenario gives one.
    scaled = _imported("flows.csv", "certificates_per_year = 4650")
    volumes = imported_flows(scaled, (tmp_path / "flows.csv").read_bytes()).volumes
    assert volumes == {("DE", "FR"): 1000, ("FR", "DE"): 3000, ("FR", "IT"): 650}
    half = _imported("flows.csv", "certificates_per_year = 2325")
    assert sum(imported_flows(half, (tmp_path / "flows.csv").read_bytes()).volumes.values()) == (
        2325
    )


def test_imported_trade_is_refused_without_its_flows_or_with_foreign_ones() -> None:
    sc = _imported("flows.csv")
    with pytest.raises(InputError, match=r"imports its trade \(flows.csv\)"):
        simulate(sc, Options())
    with pytest.raises(InputError, match="JP, not in the scenario"):
        simulate(sc, Options(flows=Flows({("FR", "JP"): 10})))
    with pytest.raises(InputError, match="imported trade only"):
        simulate(scenario(), Options(flows=Flows({("FR", "DE"): 10})))
    with pytest.raises(InputError, match="generates its trade"):
        imported_flows(scenario(), b"origin,destination,weight\nFR,DE,1\n")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"origin,destination,weight\nFR,JP,10\n", "JP is not one of the scenario's countries"),
        (b"origin,destination,weight\nFR,DE,2.5\n", "not a whole number"),
        (b"origin,destination,weight\nFR,Atlantis,3\n", "line 2: 'Atlantis'"),
        (b"origin,destination,weight\nFR,World,3\n", "not a country"),
        (b"origin,destination,weight\nFR,DE,-3\n", "line 2"),
        (b"origin,destination,weight\nFR,DE,abc\n", "line 2"),
        (b"origin,destination,weight\nFR,DE\n", "line 2"),
        (b"origin,destination,weight\nFR,FR,4\n", "no flow"),
        (b"origin,destination,weight\n", "no flow"),
        (b"", "empty"),
        (b"a,b,c\n1,2,3\n", "origin"),
        (b"\xff\xfe\x00garbage\x00", "trade.path"),
        (b"origin,destination,weight\nFR,DE,2000000000\n", "at most"),
    ],
)
def test_hostile_imported_csvs_are_refused(data: bytes, named: str) -> None:
    with pytest.raises(InputError, match=r"trade\.path") as caught:
        imported_flows(_imported("flows.csv"), data)
    assert named in str(caught.value)


# -- together -------------------------------------------------------------------------------


def test_the_extra_files_and_summary_are_the_same_for_the_same_seed() -> None:
    extra = _rotation(1, '"all"') + _outage("registry", 30, 5) + _outage("hub", 60, 2)
    sc = scenario(per_year=36_500, extra=extra, links="")

    def outputs(seed: int) -> tuple[dict[str, list[list[str]]], str]:
        run: Run = simulate(sc, Options(seed=seed))
        tallies = measures.tally(run)
        files = extra_files(run, tallies=tallies)
        assert files == extra_files(run)
        summary = extra_summary(run, tallies=tallies)
        assert summary == extra_summary(run)
        return files, json.dumps(summary, sort_keys=True, allow_nan=False)

    first = outputs(3)
    assert outputs(3) == first
    assert outputs(4) != first
    files, _ = first
    assert sorted(files) == [
        "exposure.csv",
        "hub_bytes.csv",
        "parties.csv",
        "rotations.csv",
        "transit.csv",
        "trust.csv",
    ]
    assert [row[1] for row in files["rotations.csv"][1:]] == ["DE", "FR", "NL"]
    for rows in files.values():
        assert all(len(row) == len(rows[0]) for row in rows)
        assert all(isinstance(cell, str) for row in rows for cell in row)


def test_measures_of_a_run_without_certificates_are_empty_not_errors() -> None:
    run = simulate(scenario(per_year=1, days=1), Options(scale=1e-6))
    assert run.certificates == 0
    summary = extra_summary(run, sizes=WireSizes(message_overhead=0))
    assert summary["exposure"] == {"hub_share": None, "largest_country_share": None}
    assert summary["share_before_arrival"]["all"] is None
    assert summary["cpu_ms_per_certificate"] == {"sender": None, "receiver": None, "hub": None}
    assert len(extra_files(run)["transit.csv"]) == 1


def test_the_hub_holds_sealed_envelopes_between_nodes_and_plain_xml_otherwise() -> None:
    run = simulate(parse_scenario(HOLDING_SCENARIO.encode()), Options(seed=1))
    rows = measures.hub_bytes_rows(run)
    assert rows[0] == ["hour", "bytes_held"]
    held = {int(hour): int(size) for hour, size in rows[1:]}
    envelopes = {int(h): int(n) for h, n in engine_holdings(run)}
    assert held.keys() == envelopes.keys()
    # NL runs a node and CL does not: everything through the hub is plain XML here.
    assert all(held[h] == envelopes[h] * measures.CERTIFICATE_XML_BYTES for h in held)
    assert any(held.values())  # the hub's outage made it hold some at an hour's end
    assert measures.extra_summary(run)["hub_most_bytes_held"] == max(held.values())


HOLDING_SCENARIO = """
name = "holding"
period_days = 2
countries = [
  { code = "NL", region = "europe", node = true },
  { code = "CL", region = "latin-america", node = false },
]
[topology]
kind = "hub"
[trade]
seed = 3
certificates_per_year = 200000
[[outages]]
party = "hub"
start_hours = 10
duration_hours = 5
"""


def engine_holdings(run: Run) -> list[list[str]]:
    return hub_holdings_rows(run)[1:]
