"""node.study.trade and node.study.topology: seeded flows and the counts they imply."""

from __future__ import annotations

import pytest

from node.errors import InputError
from node.study.scenario import Country, GeneratedTrade
from node.study.topology import bilateral_links, count
from node.study.trade import Flows, apportion, generate_flows, monthly, top_partners

CODES = ["NL", "DE", "FR", "KE", "NZ", "US", "BR", "CN", "IN", "ZA"]
REGIONS = ["europe", "europe", "europe", "africa", "oceania", "na", "la", "asia", "asia", "africa"]


def _countries(nodes: int = len(CODES)) -> list[Country]:
    return [Country(c, r, i < nodes) for i, (c, r) in enumerate(zip(CODES, REGIONS, strict=True))]


def _trade(model: str = "gravity", seed: int = 7, total: int = 100_000) -> GeneratedTrade:
    return GeneratedTrade("gravity" if model == "gravity" else "zipf", seed, total, (1.0,) * 12)


@pytest.mark.parametrize("model", ["gravity", "zipf"])
def test_flows_sum_to_the_total_and_repeat_by_seed(model: str) -> None:
    first = generate_flows(_countries(), _trade(model, total=123_457))
    assert first.total == 123_457
    assert generate_flows(_countries(), _trade(model, total=123_457)) == first
    assert generate_flows(_countries(), _trade(model, seed=8, total=123_457)) != first
    assert all(origin != destination for origin, destination in first.volumes)


def test_flows_do_not_depend_on_the_order_countries_are_listed() -> None:
    assert generate_flows(list(reversed(_countries())), _trade()) == generate_flows(
        _countries(), _trade()
    )


def test_tiny_totals_are_apportioned_exactly() -> None:
    assert generate_flows(_countries(), _trade(total=1)).total == 1
    assert apportion(10, [1.0, 1.0, 1.0]) in ([4, 3, 3], [3, 4, 3], [3, 3, 4])
    assert apportion(0, [1.0, 2.0]) == [0, 0]
    with pytest.raises(InputError):
        apportion(5, [0.0, 0.0])
    with pytest.raises(InputError):
        apportion(-1, [1.0])


def test_top_partners_rank_both_directions_and_break_ties_by_code() -> None:
    flows = Flows({("NL", "DE"): 10, ("DE", "NL"): 5, ("NL", "FR"): 12, ("KE", "NL"): 12})
    partners = top_partners(flows, 2)
    assert partners["NL"] == ("DE", "FR")  # DE 15 both ways; FR and KE 12, FR first
    assert partners["KE"] == ("NL",)
    with pytest.raises(InputError):
        top_partners(flows, 0)


def test_monthly_spread_sums_per_pair_follows_the_profile_and_repeats_by_seed() -> None:
    flows = generate_flows(_countries(), _trade(total=50_001))
    profile = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0]
    spread = monthly(flows, profile, seed=3)
    assert all(sum(spread[pair]) == v for pair, v in flows.volumes.items())
    assert all(months[0] == 0 and months[1] == 0 for months in spread.values())
    assert sum(m[11] for m in spread.values()) > 2 * sum(m[10] for m in spread.values())
    assert monthly(flows, profile, seed=3) == spread
    with pytest.raises(InputError):
        monthly(flows, [1.0] * 11, seed=3)


@pytest.mark.parametrize("n", [2, 3, 10])
def test_link_counts_hub_n_bilateral_n_n_minus_1_over_2(n: int) -> None:
    countries = _countries()[:n]
    flows = generate_flows(countries, _trade())
    assert count("hub", countries, flows, 1).links == n
    assert count("bilateral", countries, flows, 1).links == n * (n - 1) // 2 == bilateral_links(n)
    bilateral = count("bilateral", countries, flows, 1)
    assert bilateral.most_keys_held_by_a_country == n - 1
    assert "hub" not in bilateral.keys_held
    hub = count("hub", countries, flows, 1)
    assert hub.keys_held["hub"] == n and hub.most_keys_held_by_a_country == 1


def test_hybrid_counts_each_direct_link_once_and_only_between_nodes() -> None:
    countries = [Country(c, "europe", c in {"NL", "DE", "FR"}) for c in ["NL", "DE", "FR", "KE"]]
    flows = Flows(
        {
            ("NL", "DE"): 100,
            ("DE", "NL"): 100,
            ("NL", "FR"): 50,
            ("FR", "DE"): 10,
            ("KE", "NL"): 999,
        }
    )
    hybrid = count("hybrid", countries, flows, 1)
    # NL picks DE, DE picks NL (one link), FR picks NL; KE runs no node: hub only.
    assert hybrid.direct_links == {frozenset(("NL", "DE")), frozenset(("NL", "FR"))}
    # FR-DE and KE-NL are not direct: those four ends need the hub.
    assert hybrid.hub_users == {"FR", "DE", "KE", "NL"}
    assert hybrid.links == 2 + 4
    assert hybrid.keys_held == {"NL": 3, "DE": 2, "FR": 2, "KE": 1, "hub": 4}


def test_hybrid_where_direct_links_cover_all_trade_needs_no_hub() -> None:
    countries = [Country(c, "europe", True) for c in ["NL", "DE"]]
    hybrid = count("hybrid", countries, Flows({("NL", "DE"): 1}), 5)
    assert hybrid.links == 1 and not hybrid.hub_users and "hub" not in hybrid.keys_held


def test_bilateral_links_refuses_a_negative_count() -> None:
    with pytest.raises(InputError):
        bilateral_links(-1)
