# ruff: noqa: E501  (country lists and scenario descriptions are data, kept one per line)
"""Writes node/study/scenarios/*.toml, the bundled scenarios (the country rule is documented
in docs/study.md). Run from anywhere: `python3 tools/study/gen_scenarios.py`; the output is
deterministic, so a diff after running it shows a change of rule."""

from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "node" / "study" / "scenarios"
REGIONS = {
    "africa": "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG MW ML MR MU MA MZ NA NE NG RW ST SN SC SL SO ZA SS SD TZ TG TN UG ZM ZW",
    "asia": "CN JP KR KP MN IN PK BD LK NP BT MV AF ID MY PH SG TH VN KH LA MM BN TL KZ KG TJ TM UZ",
    "europe": "AL AD AT BY BE BA BG HR CY CZ DK EE FI FR DE GR HU IS IE IT LV LI LT LU MT MD MC ME NL MK NO PL PT RO RU SM RS SK SI ES SE CH UA GB",
    "latin-america": "AR BO BR CL CO CR CU DO EC SV GT HN JM MX NI PA PY PE UY VE TT BS BB BZ GY SR HT AG DM GD KN LC VC",
    "middle-east": "AE SA QA KW BH OM YE IR IQ SY LB JO IL TR PS AM AZ GE",
    "north-america": "US CA",
    "oceania": "AU NZ FJ PG SB VU WS TO KI TV NR PW FM MH",
}
queues = {r: sorted(v.split()) for r, v in sorted(REGIONS.items())}
assert sum(len(q) for q in queues.values()) == len({c for q in queues.values() for c in q})
order = []
while any(queues.values()):
    for r, q in queues.items():
        if q:
            order.append((q.pop(0), r))
WORLD = order[:180]
NODES = 24
SEASON = "[0.9, 0.9, 1.0, 1.0, 1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.1, 1.0]"


def countries(n, nodes, growth_from=None):
    lines = []
    for i, (code, region) in enumerate(WORLD[:n]):
        node = "true" if (nodes == "all" or i < nodes) else "false"
        extra = ""
        if growth_from is not None and i >= growth_from:
            day = round((i - growth_from + 1) * 365 / (n - growth_from), 1)
            extra = f", joins_day = {day}"
        lines.append(f'  {{ code = "{code}", region = "{region}", node = {node}{extra} }},')
    return "countries = [\n" + "\n".join(lines) + "\n]\n"


COMMON = f"""
[trade]
# Generated so nothing needs downloading. 12 million a year: within the 10-15 million
# certificates a year worldwide (UNICC, 2017), carried here by the scenario's countries.
source = "generated"
model = "gravity"
seed = 14
certificates_per_year = 12_000_000
# ASSUMPTION: a mild autumn harvest peak; no published monthly profile is bundled.
seasonal_profile = {SEASON}

[hub]
# Norway's production client pulls from the IPPC Hub every 5 minutes.
pull_interval_seconds = 300
# The IPPC Hub's stated capacity in 2021.
capacity_per_day = 100_000

# [node]: the node's own retry, backoff and fallback defaults apply (not repeated here).

[costs]
# ASSUMPTION: illustrative amounts in euro cents, not any hub's published prices.
currency = "EUR"
node_running_cost_per_year = 2_000_000
fee_models = [
  {{ name = "per-envelope", kind = "prepaid", fee = 5 }},
  {{ name = "annual-plan", kind = "plan", period = "annual", included = 10_000, tiers = [{{ up_to = 100_000, price = 3 }}, {{ price = 1 }}] }},
]
"""


def scenario(name, description, kind, nodes, extra="", n=96, growth_from=None):
    head = f'''# Bundled study scenario; countries by the rule in docs/study.md ("Bundled scenarios").
name = "{name}"
description = "{description}"
period_days = 365

[topology]
kind = "{kind}"
top_k = 5
'''
    top, table = head.split("[topology]")
    text = top + countries(n, nodes, growth_from) + "\n[topology]" + table + COMMON + extra
    (OUT / f"{name}.toml").write_text(text)


partner = WORLD[0][0]
scenario("all-hub", "96 countries, every certificate through the hub", "hub", 0)
scenario(
    "all-bilateral",
    "96 countries, each running a node, every pair linked directly",
    "bilateral",
    "all",
)
scenario(
    "hybrid",
    "96 countries; the 24 running a node link their top-5 node partners directly, the rest through the hub",
    "hybrid",
    NODES,
)
scenario(
    "hub-outage-4h",
    "hybrid, with the hub down for 4 hours",
    "hybrid",
    NODES,
    '\n[[outages]]\nparty = "hub"\nstart_hours = 2_000\nduration_hours = 4\n',
)
scenario(
    "hub-outage-24h",
    "hybrid, with the hub down for 24 hours",
    "hybrid",
    NODES,
    '\n[[outages]]\nparty = "hub"\nstart_hours = 2_000\nduration_hours = 24\n',
)
scenario(
    "partner-outage",
    f"hybrid, with one node country ({partner}) down for 24 hours",
    "hybrid",
    NODES,
    f'\n[[outages]]\nparty = "{partner}"\nstart_hours = 2_000\nduration_hours = 24\n',
)
scenario(
    "stale-registry",
    "hybrid, with the registry unreachable for 72 hours (a stale directory)",
    "hybrid",
    NODES,
    '\n[[outages]]\nparty = "registry"\nstart_hours = 2_000\nduration_hours = 72\n',
)
scenario(
    "growth-96-to-180",
    "hybrid, 96 countries at the start and 84 more joining evenly over the year",
    "hybrid",
    NODES,
    "",
    n=180,
    growth_from=96,
)
waves = "".join(
    f"\n[[key_rotations]]\nday = {180 + 7 * w}\ncountries = [{', '.join(repr(c).replace(chr(39), chr(34)) for c, _ in WORLD[w * 6 : (w + 1) * 6])}]\n"
    for w in range(4)
)
scenario(
    "key-rotation-wave",
    "hybrid; the 24 node countries rotate their keys in four weekly waves of six",
    "hybrid",
    NODES,
    waves,
)

# The small scenario `ephyto study emulate` plays and the agreement test compares with
# `simulate` (issue 14: "6 countries, 2,000 certificates, one hub outage and one partner
# outage"): a day, 4 nodes and 2 countries through the hub only. Its links are the
# defaults' latencies without loss: a lost attempt sends that one certificate to the hub,
# and the two engines draw their losses independently, so with loss the same
# certificates could not take the same routes.
SMALL = {"NL": "europe", "KE": "africa", "US": "north-america", "CN": "asia"}
HUB_ONLY = {"CL": "latin-america", "FR": "europe"}
LATENCY = {
    frozenset(("europe",)): 15,
    frozenset(("africa",)): 50,
    frozenset(("north-america",)): 25,
    frozenset(("asia",)): 40,
    frozenset(("latin-america",)): 40,
    frozenset(("europe", "north-america")): 45,
    frozenset(("europe", "latin-america")): 100,
    frozenset(("europe", "asia")): 110,
    frozenset(("europe", "africa")): 80,
    frozenset(("north-america", "latin-america")): 70,
    frozenset(("north-america", "asia")): 90,
    frozenset(("north-america", "africa")): 120,
    frozenset(("latin-america", "asia")): 160,
    frozenset(("latin-america", "africa")): 150,
    frozenset(("asia", "africa")): 140,
}
small_countries = "".join(
    f'  {{ code = "{c}", region = "{r}", node = {str(c in SMALL).lower()} }},\n'
    for c, r in (*SMALL.items(), *HUB_ONLY.items())
)
small_links = "".join(
    f'  {{ regions = ["{min(p)}", "{max(p)}"], latency_ms = {ms}, jitter_ms = {ms / 5:g}, loss = 0 }},\n'
    for p, ms in LATENCY.items()
)
(OUT / "emulate-small.toml").write_text(
    f"""# Bundled study scenario: the one `ephyto study emulate` plays by default (docs/study.md).
name = "emulate-small"
description = "6 countries (4 nodes, 2 through the hub only), about 2,000 certificates in a day, the hub down 2 hours and CN 3 hours"
period_days = 1

countries = [
{small_countries}]

[topology]
kind = "hybrid"
top_k = 5

[trade]
source = "generated"
model = "gravity"
seed = 7
# About 2,000 in its one day.
certificates_per_year = 730_000

[links]
# The default latencies (docs/study.md), without loss (see the generator).
pairs = [
{small_links}]

[[outages]]
party = "hub"
start_hours = 6
duration_hours = 2

[[outages]]
party = "CN"
start_hours = 14
duration_hours = 3

[costs]
# ASSUMPTION: illustrative amounts in euro cents, not any hub's published prices.
currency = "EUR"
node_running_cost_per_year = 2_000_000
fee_models = [
  {{ name = "per-envelope", kind = "prepaid", fee = 5 }},
]
"""
)
