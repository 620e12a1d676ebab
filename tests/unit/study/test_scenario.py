"""node.study.scenario: the scenario file, and every way it can be wrong."""

from __future__ import annotations

import pytest

from node.cli.study import bundled_names, load
from node.errors import InputError
from node.identity.config import DEFAULT_FALLBACK_ATTEMPTS, DEFAULT_RETRY_CAP_SECONDS
from node.study.scenario import (
    MAX_COUNTRIES,
    MAX_SCENARIO_BYTES,
    GeneratedTrade,
    ImportedTrade,
    parse_scenario,
)

MINIMAL = """
name = "tiny"
countries = [
  { code = "NL", region = "europe", node = true },
  { code = "KE", region = "africa" },
  { code = "NZ", region = "oceania", node = true },
]
[trade]
seed = 1
certificates_per_year = 1000
"""


def _parse(text: str) -> object:
    return parse_scenario(text.encode())


def _refused(text: str) -> str:
    with pytest.raises(InputError) as caught:
        parse_scenario(text.encode())
    return str(caught.value)


def test_minimal_scenario_takes_the_documented_defaults() -> None:
    scenario = parse_scenario(MINIMAL.encode())
    assert scenario.codes == ("NL", "KE", "NZ")
    assert [c.runs_node for c in scenario.countries] == [True, False, True]
    assert scenario.topology == "hybrid" and scenario.top_k == 5
    assert scenario.period_days == 365
    assert scenario.pull_interval_seconds == 300
    assert scenario.hub_capacity_per_day == 100_000
    assert scenario.node_policy.retry_cap_seconds == DEFAULT_RETRY_CAP_SECONDS
    assert scenario.node_policy.fallback_attempts == DEFAULT_FALLBACK_ATTEMPTS
    assert isinstance(scenario.trade, GeneratedTrade) and scenario.trade.model == "gravity"
    assert scenario.links.between("europe", "africa").latency_ms > 0
    assert scenario.links.between("europe", "europe").latency_ms < (
        scenario.links.between("europe", "oceania").latency_ms
    )


def test_full_scenario_with_outages_rotations_fees_and_links() -> None:
    scenario = parse_scenario(
        (
            MINIMAL
            + """
[[outages]]
party = "hub"
start_hours = 10
duration_hours = 24
[[outages]]
party = "KE"
start_hours = 0
duration_hours = 1.5
[[key_rotations]]
day = 3
countries = "all"
[node]
fallback_attempts = 5
backoff_factor = 3.0
[links]
pairs = [{ regions = ["europe", "africa"], latency_ms = 70, jitter_ms = 5, loss = 0.02 }]
[costs]
currency = "USD"
node_running_cost_per_year = 100
[[costs.fee_models]]
name = "flat"
kind = "prepaid"
fee = 5
[[costs.fee_models]]
name = "tiers"
kind = "plan"
period = "monthly"
included = 10
tiers = [{ up_to = 20, price = 2 }, { price = 1 }]
"""
        ).encode()
    )
    assert [o.party for o in scenario.outages] == ["hub", "KE"]
    assert scenario.key_rotations[0].countries == ("KE", "NL", "NZ")
    assert scenario.node_policy.fallback_attempts == 5
    assert scenario.links.between("africa", "europe").latency_ms == 70
    assert [m.name for m in scenario.costs.fee_models] == ["flat", "tiers"]
    assert scenario.costs.fee_models[1].policy.currency == "USD"


def test_imported_trade_keeps_only_the_reference() -> None:
    text = MINIMAL.replace(
        "seed = 1\ncertificates_per_year = 1000", 'source = "imported"\npath = "flows.csv"'
    )
    trade = parse_scenario(text.encode()).trade
    assert isinstance(trade, ImportedTrade) and trade.path == "flows.csv"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (('name = "tiny"', "name = 3"), "name"),
        (('name = "tiny"', 'name = "Has Spaces"'), "name"),
        (("seed = 1", 'seed = "1"'), "trade.seed"),
        (("seed = 1", "seed = true"), "trade.seed"),
        (("seed = 1\n", ""), "trade.seed"),
        (("seed = 1", "seed = -1"), "trade.seed"),
        (
            ("certificates_per_year = 1000", "certificates_per_year = -5"),
            "trade.certificates_per_year",
        ),
        (
            ("certificates_per_year = 1000", "certificates_per_year = 0"),
            "trade.certificates_per_year",
        ),
        (
            ("certificates_per_year = 1000", "certificates_per_year = 10_000_000_000"),
            "trade.certificates_per_year",
        ),
        (("seed = 1", 'seed = 1\nmodel = "poisson"'), "trade.model"),
        (("seed = 1", "seed = 1\nseasonal_profile = [1, 2]"), "trade.seasonal_profile"),
        (
            ("seed = 1", "seed = 1\nseasonal_profile = [0,0,0,0,0,0,0,0,0,0,0,0]"),
            "trade.seasonal_profile",
        ),
        (
            ("seed = 1", "seed = 1\nseasonal_profile = [1,1,1,1,1,1,1,1,1,1,1,-1]"),
            "trade.seasonal_profile[11]",
        ),
        (
            ("seed = 1", "seed = 1\nseasonal_profile = [1,1,1,1,1,1,1,1,1,1,1,nan]"),
            "trade.seasonal_profile[11]",
        ),
        (("seed = 1", "seed = 1\nsede = 2"), "trade.sede"),
        (('name = "tiny"', 'name = "tiny"\ncolour = "red"'), "colour"),
        (('code = "KE"', 'code = "XX"'), "countries[1].code"),
        (('code = "KE"', 'code = "ke"'), "countries[1].code"),
        (('code = "KE"', 'code = "NL"'), "countries[1].code"),
        (
            ('code = "KE", region = "africa"', 'code = "KE", region = "Africa!"'),
            "countries[1].region",
        ),
        (('region = "africa" }', 'region = "africa", node = "yes" }'), "countries[1].node"),
        (('region = "africa" }', 'region = "africa", nodes = true }'), "countries[1].nodes"),
        (('region = "africa" }', 'region = "africa", joins_day = -1 }'), "countries[1].joins_day"),
        (("[trade]", "period_days = 0\n[trade]"), "period_days"),
        (("[trade]", '[topology]\nkind = "mesh"\n[trade]'), "topology.kind"),
        (("[trade]", "[topology]\ntop_k = 3\n[trade]"), "topology.top_k"),
        (("[trade]", '[topology]\nkind = "bilateral"\n[trade]'), "topology.kind"),
        (("[trade]", "[hub]\npull_interval_seconds = 0\n[trade]"), "hub.pull_interval_seconds"),
    ],
)
def test_malformed_values_are_refused_naming_the_key(change: tuple[str, str], named: str) -> None:
    old, new = change
    assert old in MINIMAL
    assert _refused(MINIMAL.replace(old, new, 1)).startswith(named)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('[[outages]]\nparty = "moon"\nstart_hours = 1\nduration_hours = 1', "outages[0].party"),
        (
            '[[outages]]\nparty = "hub"\nstart_hours = 1\nduration_hours = 0',
            "outages[0].duration_hours",
        ),
        (
            '[[outages]]\nparty = "hub"\nstart_hours = 99999\nduration_hours = 1',
            "outages[0].start_hours",
        ),
        ('[[outages]]\nparty = "hub"\nduration_hours = 1', "outages[0].start_hours"),
        ('[[key_rotations]]\nday = 1\ncountries = ["FR"]', "key_rotations[0].countries"),
        ("[[key_rotations]]\nday = 1\ncountries = []", "key_rotations[0].countries"),
        ('[[key_rotations]]\nday = 1\ncountries = ["NL", "NL"]', "key_rotations[0].countries"),
        ("[node]\nretry_cap_seconds = 0", "node.retry_cap_seconds"),
        ("[node]\nretry_cap = 5", "node.retry_cap"),
        ("[node]\nbackoff_factor = inf", "node.backoff_factor"),
        (
            '[links]\npairs = [{ regions = ["europe", "mars"], latency_ms = 1 }]',
            "links.pairs[0].regions",
        ),
        ('[links]\npairs = [{ regions = ["europe"], latency_ms = 1 }]', "links.pairs[0].regions"),
        (
            '[links]\npairs = [{ regions = ["europe", "africa"], latency_ms = 1, loss = 2 }]',
            "links.pairs[0].loss",
        ),
        ('[links]\npairs = [{ regions = ["europe", "africa"] }]', "links.pairs[0].latency_ms"),
        ('[costs]\nfee_models = [{ name = "x", kind = "auction" }]', "costs.fee_models[0].kind"),
        (
            '[costs]\nfee_models = [{ name = "x", kind = "prepaid", fee = -1 }]',
            "costs.fee_models[0].fee",
        ),
        (
            '[costs]\nfee_models = [{ name = "x", kind = "prepaid", fee = 1, included = 3 }]',
            "costs.fee_models[0].included",
        ),
        (
            '[costs]\ncurrency = "euro"\nfee_models = [{ name = "x", kind = "prepaid", fee = 1 }]',
            "costs.fee_models[0]",
        ),
        (
            '[costs]\nfee_models = [{ name = "x", kind = "plan", included = 10, '
            "tiers = [{ up_to = 5, price = 1 }] }]",
            "costs.fee_models[0]",
        ),
        (
            '[costs]\nfee_models = [{ name = "x", kind = "prepaid", fee = 1 }, '
            '{ name = "x", kind = "prepaid", fee = 2 }]',
            "costs.fee_models[1].name",
        ),
        ("[costs]\nnode_running_cost_per_year = -1", "costs.node_running_cost_per_year"),
        ("outages = 3", "outages"),
    ],
)
def test_malformed_tables_are_refused_naming_the_key(extra: str, named: str) -> None:
    text = MINIMAL + "\n" + extra + "\n" if not extra.startswith("outages =") else extra + MINIMAL
    assert _refused(text).startswith(named)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"name = 'x'",
        b"\xff\xfe not utf-8",
        b"[[[ not toml",
        b"countries = 5\nname = 'x'",
        b"name = 'x'\ncountries = [{ code = 'NL', region = 'europe' }]\n[trade]\nseed = 1\n"
        b"certificates_per_year = 5",
        b"name = 'x'\ncountries = ['NL', 'FR']",
        b"name = 'x'\ntrade = 3\ncountries = [{ code = 'NL', region = 'europe' }, "
        b"{ code = 'FR', region = 'europe' }]",
    ],
)
def test_empty_broken_and_degenerate_files_are_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_scenario(data)


def test_huge_files_and_too_many_countries_are_refused() -> None:
    with pytest.raises(InputError, match="bytes"):
        parse_scenario(b"#" * (MAX_SCENARIO_BYTES + 1))
    many = ",\n".join(f'{{ code = "NL", region = "r{i}" }}' for i in range(MAX_COUNTRIES + 1))
    with pytest.raises(InputError, match="at most"):
        parse_scenario(f'name = "x"\ncountries = [{many}]\n[trade]\nseed = 1\n'.encode())


def test_every_bundled_scenario_parses() -> None:
    names = bundled_names()
    assert set(names) >= {
        "all-hub",
        "all-bilateral",
        "hybrid",
        "hub-outage-4h",
        "hub-outage-24h",
        "partner-outage",
        "stale-registry",
        "growth-96-to-180",
        "key-rotation-wave",
    }
    for name in names:
        scenario = load(name)
        assert scenario.name == name
        assert scenario.description
    assert len(load("growth-96-to-180").countries) == 180
    assert len(load("hybrid").countries) == 96
    assert load("hub-outage-24h").outages[0].duration_hours == 24
