"""The discrete-event model (node/study/simulate.py) on small scenarios."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, datetime

import pytest

from node.errors import InputError
from node.hub.accounts import AccountPolicy, Plan, Prepaid, Tier
from node.study.scenario import Scenario, parse_scenario
from node.study.simulate import (
    HUB_PUSH_BACKOFF,
    ROUTE_DIRECT,
    ROUTE_FALLBACK,
    ROUTE_HUB,
    Options,
    Run,
    ServiceTimes,
    costs_rows,
    hub_fees,
    outages_rows,
    simulate,
    summary,
)

# Two node countries (FR, DE), two without (IT, ES), all in Europe.
SIX = """
{ code = "FR", region = "europe", node = true },
{ code = "DE", region = "europe", node = true },
{ code = "NL", region = "europe", node = true },
{ code = "IT", region = "europe" },
{ code = "ES", region = "europe" },
{ code = "PT", region = "europe" },
"""


def scenario(
    *,
    kind: str = "hybrid",
    countries: str = SIX,
    per_year: int = 20_000,
    days: int = 30,
    extra: str = "",
    links: str = "",
    top_k: int = 1,
) -> Scenario:
    text = f"""
name = "small"
period_days = {days}
countries = [{countries}]
[topology]
kind = "{kind}"
top_k = {top_k}
[trade]
seed = 7
certificates_per_year = {per_year}
{links}
{extra}
"""
    return parse_scenario(text.encode())


NO_NETWORK = """
[links]
pairs = [{ regions = ["europe", "europe"], latency_ms = 0, jitter_ms = 0, loss = 0 }]
"""


def _batch_standard_error(values: list[float], batches: int = 20) -> float:
    size = len(values) // batches
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    return statistics.stdev(means) / math.sqrt(batches)


@pytest.mark.parametrize(("rho", "samples"), [(0.5, 60_000), (0.8, 150_000)])
def test_hub_queue_matches_the_md1_waiting_time(rho: float, samples: int) -> None:
    """Poisson arrivals at the hub, a deterministic service time: Wq = rho / (2 mu (1 - rho)).

    Waits in a queue are correlated, so the standard error of their mean comes from 20
    batch means (each batch far longer than a busy period at these loads). The
    simulated mean must lie within 4 standard errors (seeded: the same draw every run),
    and the run must be long enough for that to be a few percent (an SE under 3%).
    """
    days = 30
    run = simulate(
        scenario(
            kind="hub",
            countries='{ code = "FR", region = "europe" }, { code = "DE", region = "europe" }',
            per_year=samples * 365 // days,
            days=days,
            links=NO_NETWORK,
        ),
        Options(
            seed=3,
            service=ServiceTimes(
                node_send_ms=0, node_receive_ms=0, hub_ms=1000 * rho * days * 86_400 / samples
            ),
        ),
    )
    waits = list(run.hub_wait)
    service = run.options.service.hub_ms / 1000
    # The load the draw actually offered (the count is Poisson-like, not exactly `samples`).
    offered = len(waits) / (days * 86_400) * service
    expected = offered / (2 * (1 / service) * (1 - offered))
    error = _batch_standard_error(waits)
    assert error < 0.03 * expected
    assert abs(statistics.fmean(waits) - expected) < 4 * error


def test_the_same_seed_gives_the_same_summary_and_another_seed_does_not() -> None:
    hybrid = scenario(extra='[[outages]]\nparty = "hub"\nstart_hours = 100\nduration_hours = 6\n')

    def summary_bytes(seed: int) -> bytes:
        return json.dumps(
            summary(simulate(hybrid, Options(seed=seed)), "1"), sort_keys=True
        ).encode()

    first = summary_bytes(1)
    assert summary_bytes(1) == first
    assert summary_bytes(2) != first


def test_all_hub_routes_everything_through_the_hub_and_bilateral_nothing() -> None:
    hub = simulate(scenario(kind="hub"), Options(seed=1))
    assert hub.certificates > 1000
    assert set(hub.route) == {ROUTE_HUB}
    assert all(not math.isnan(t) for t in hub.hub_stored)
    everyone_a_node = SIX.replace('" }', '", node = true }')
    bilateral = simulate(scenario(kind="bilateral", countries=everyone_a_node), Options(seed=1))
    assert bilateral.certificates > 1000
    assert set(bilateral.route) == {ROUTE_DIRECT}
    assert all(math.isnan(t) for t in bilateral.hub_stored)
    assert summary(bilateral, "1")["by_route"]["hub"]["certificates"] == 0


def _outage(party: str, start: float, hours: float) -> str:
    return f'[[outages]]\nparty = "{party}"\nstart_hours = {start}\nduration_hours = {hours}\n'


def _in_window(run: Run, i: int, start_h: float, hours: float) -> bool:
    return start_h * 3600 <= run.submitted[i] < (start_h + hours) * 3600


def test_a_partner_outage_sends_its_traffic_through_the_hub_by_the_fallback_policy() -> None:
    # Two nodes, linked directly (each is the other's only node partner), and no loss.
    pair = (
        '{ code = "FR", region = "europe", node = true }, '
        '{ code = "DE", region = "europe", node = true }'
    )
    sc = scenario(
        countries=pair + ', { code = "IT", region = "europe" }',
        per_year=200_000,
        links=NO_NETWORK,
        extra=_outage("DE", 100, 12),
    )
    run = simulate(sc, Options(seed=2))
    policy = sc.node_policy
    de, fr = run.countries.index("DE"), run.countries.index("FR")
    to_de = [i for i in range(run.certificates) if run.origin[i] == fr and run.destination[i] == de]
    during = [i for i in to_de if _in_window(run, i, 100, 12)]
    after = [i for i in to_de if run.submitted[i] > 113 * 3600]
    assert len(during) > 20 and after
    for i in during:
        assert run.route[i] == ROUTE_FALLBACK
        direct_attempts = run.attempts[i] - 1  # one hub attempt: the hub is up, nothing lost
        assert 1 <= direct_attempts <= policy.fallback_attempts
        # Failing for fallback_seconds also sends it to the hub: only then fewer attempts.
        if direct_attempts < policy.fallback_attempts:
            assert run.hub_stored[i] - run.submitted[i] >= policy.fallback_seconds
        # DE is down: it neither takes the push nor polls, so it gets it when back.
        assert run.delivered[i] >= 112 * 3600
    assert {run.route[i] for i in after} == {ROUTE_DIRECT}
    # The hub's pushes to DE back off with the pusher's own cap, so they drain soon after.
    cap = HUB_PUSH_BACKOFF.cap.total_seconds()
    assert max(run.delivered[i] for i in during) <= 112 * 3600 + cap + 1
    row = outages_rows(run)[1]
    assert row[0] == "DE" and int(row[4]) >= len(during) and int(row[8]) >= 1


def test_a_hub_outage_delays_hub_traffic_by_about_its_length_and_not_direct_traffic() -> None:
    sc = scenario(per_year=100_000, extra=_outage("hub", 200, 10))
    run = simulate(sc, Options(seed=4))
    during = [i for i in range(run.certificates) if _in_window(run, i, 200, 1)]
    hub = [i for i in during if run.route[i] != ROUTE_DIRECT]
    direct = [i for i in during if run.route[i] == ROUTE_DIRECT]
    assert len(hub) > 5 and len(direct) > 0
    end = 210 * 3600
    retry_cap = sc.node_policy.retry_cap_seconds
    for i in hub:
        # Nothing reaches the hub before it is back; once back, the sender's next retry
        # (at most its cap away) and the receiver's next pull or push bring it.
        assert end <= run.delivered[i] <= end + retry_cap + sc.pull_interval_seconds + 60
        assert run.delivered[i] - run.submitted[i] >= 9 * 3600
    assert all(run.delivered[i] - run.submitted[i] < 5 for i in direct)
    # A hub that is down accepts nothing.
    assert not any(200 * 3600 <= t < end for t in run.hub_stored)


def test_hub_fees_are_the_hub_pricing_for_a_hand_computed_case() -> None:
    january = datetime(2025, 1, 1, tzinfo=UTC)
    february = datetime(2025, 2, 1, tzinfo=UTC)
    sent = {january: 7, february: 3}
    tiers = (Tier(4, 10), Tier(None, 3))
    monthly = AccountPolicy("EUR", Plan("monthly", 2, tiers))
    # January: 0 + 0 + 10 + 10 + 3 + 3 + 3; February: 0 + 0 + 10.
    assert hub_fees(monthly, sent) == (39, 0)
    annual = AccountPolicy("EUR", Plan("annual", 2, tiers))
    # Ten in the year: 0 + 0 + 10 + 10 + 6 * 3.
    assert hub_fees(annual, sent) == (38, 0)
    assert hub_fees(AccountPolicy("EUR", Prepaid(5)), sent) == (50, 0)
    capped = AccountPolicy("EUR", Plan("monthly", 2, (Tier(5, 10),)))
    # January: 3 priced at 10 up to the 5th, 2 refused; February: 1 priced.
    assert hub_fees(capped, sent) == (40, 2)


def test_costs_count_each_senders_hub_envelopes_against_a_node() -> None:
    fees = """
[costs]
currency = "EUR"
node_running_cost_per_year = 3650
fee_models = [{ name = "flat", kind = "prepaid", fee = 2 }]
"""
    run = simulate(scenario(kind="hub", extra=fees), Options(seed=5))
    rows = costs_rows(run)[1:]
    by_country = {row[0]: row for row in rows}
    for code in run.countries:
        sent = sum(
            1
            for i in range(run.certificates)
            if run.countries[run.origin[i]] == code and run.route[i] != ROUTE_DIRECT
        )
        assert by_country[code][4] == str(sent)
        assert by_country[code][5] == str(2 * sent)
        assert by_country[code][7] == "300"  # 3650 a year for 30 days


def test_scale_multiplies_the_volume_and_bad_options_are_refused() -> None:
    sc = scenario(kind="hub", per_year=36_500)
    full = simulate(sc, Options(seed=1)).certificates
    tenth = simulate(sc, Options(seed=1, scale=0.1)).certificates
    assert abs(tenth - full / 10) < 0.05 * full / 10 + 10
    for bad in (0.0, -1.0, math.nan, math.inf, 11.0):
        with pytest.raises(InputError, match="--scale"):
            Options(scale=bad)
    with pytest.raises(InputError, match="hub_ms"):
        ServiceTimes(hub_ms=-1)
