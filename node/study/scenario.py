"""A study scenario: TOML bytes in, a frozen `Scenario` out (pure).

Every error is an `InputError` naming the key path (`countries[3].code`, `trade.seed`)
and what is wrong with it; keys the format does not know are refused rather than
ignored, because a misspelt key silently falling back to a default would change a
study's result without anyone noticing. Sizes are capped so a hostile file cannot make
the later engines allocate without bound.

The node's delivery policy defaults are imported from the node itself
(node.identity.config, node.outbox.policy) and the hub's fee models are the hub's own
`Prepaid` and `Plan` (node.hub.accounts), so a scenario describes the product as it is.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from node.codelists.lists import bundled
from node.errors import InputError
from node.hub.accounts import AccountPolicy, AccountsError, Plan, Prepaid, Tier
from node.identity.config import (
    DEFAULT_FALLBACK_ATTEMPTS,
    DEFAULT_FALLBACK_SECONDS,
    DEFAULT_RETRY_CAP_SECONDS,
)
from node.outbox.policy import Backoff

MAX_SCENARIO_BYTES = 1 << 20
MAX_COUNTRIES = 250  # ISO 3166-1 has 249 codes
MAX_CERTIFICATES_PER_YEAR = 10**9  # ~70 times the world's volume (UNICC, 2017)
MAX_OUTAGES = 1000
MAX_KEY_ROTATIONS = 1000
MAX_FEE_MODELS = 20
MAX_TIERS = 20
MAX_PERIOD_DAYS = 3660
MAX_LATENCY_MS = 60_000.0
MAX_TEXT = 500
MAX_SEED = 2**63 - 1

# Norway's production client pulls from the IPPC Hub every 5 minutes (issue 14); the
# node's own default (node.identity.config.DEFAULT_HUB_POLL_SECONDS) is shorter, but a
# study of today's hub models the clients that use it today.
DEFAULT_PULL_INTERVAL_SECONDS = 300
# The IPPC Hub's stated capacity in 2021.
DEFAULT_HUB_CAPACITY_PER_DAY = 100_000
DEFAULT_PERIOD_DAYS = 365
DEFAULT_TOP_K = 5
DEFAULT_ZIPF_EXPONENT = 1.0
# ASSUMPTION (no seasonal data at hand): a flat year.
FLAT_SEASON: tuple[float, ...] = (1.0,) * 12

TopologyKind = Literal["hub", "bilateral", "hybrid"]
TradeModel = Literal["gravity", "zipf"]
TOPOLOGIES: tuple[TopologyKind, ...] = ("hub", "bilateral", "hybrid")
TRADE_MODELS: tuple[TradeModel, ...] = ("gravity", "zipf")
PARTY_HUB = "hub"
PARTY_REGISTRY = "registry"

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_REGION = re.compile(r"[a-z][a-z0-9-]{0,31}")

# ASSUMPTION: one-way latency, jitter (ms) and loss by region pair. No citable per-pair
# table of inter-region round-trip times was found; these are round figures of the
# order public measurements report (tens of ms within a region, 100-300 ms round trip
# between continents). docs/study.md says so; a scenario's [links] overrides them.
_LINK_DEFAULTS: dict[frozenset[str], tuple[float, float, float]] = {}


def _default(a: str, b: str, latency_ms: float, jitter_ms: float, loss: float) -> None:
    _LINK_DEFAULTS[frozenset((a, b))] = (latency_ms, jitter_ms, loss)


for _region, _latency in (
    ("europe", 15.0),
    ("north-america", 25.0),
    ("latin-america", 40.0),
    ("asia", 40.0),
    ("middle-east", 30.0),
    ("africa", 50.0),
    ("oceania", 20.0),
):
    _default(_region, _region, _latency, _latency / 5, 0.001)
for _a, _b, _latency in (
    ("europe", "north-america", 45.0),
    ("europe", "latin-america", 100.0),
    ("europe", "asia", 110.0),
    ("europe", "middle-east", 50.0),
    ("europe", "africa", 80.0),
    ("europe", "oceania", 150.0),
    ("north-america", "latin-america", 70.0),
    ("north-america", "asia", 90.0),
    ("north-america", "middle-east", 100.0),
    ("north-america", "africa", 120.0),
    ("north-america", "oceania", 80.0),
    ("latin-america", "asia", 160.0),
    ("latin-america", "middle-east", 150.0),
    ("latin-america", "africa", 150.0),
    ("latin-america", "oceania", 140.0),
    ("asia", "middle-east", 70.0),
    ("asia", "africa", 140.0),
    ("asia", "oceania", 70.0),
    ("middle-east", "africa", 90.0),
    ("middle-east", "oceania", 140.0),
    ("africa", "oceania", 170.0),
):
    _default(_a, _b, _latency, _latency / 5, 0.005)
REGIONS: tuple[str, ...] = (
    "africa",
    "asia",
    "europe",
    "latin-america",
    "middle-east",
    "north-america",
    "oceania",
)
# A pair of regions the table does not hold (a region of the scenario's own).
FALLBACK_LINK = (150.0, 30.0, 0.01)


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    region: str
    runs_node: bool
    # Days after the period starts that the country starts exchanging (growth scenarios).
    joins_day: float = 0.0


@dataclass(frozen=True, slots=True)
class GeneratedTrade:
    model: TradeModel
    seed: int
    certificates_per_year: int
    seasonal_profile: tuple[float, ...]  # 12 monthly weights, January first
    zipf_exponent: float = DEFAULT_ZIPF_EXPONENT


@dataclass(frozen=True, slots=True)
class ImportedTrade:
    # An edge-list CSV, relative to the scenario file; read by node.study.trade_import.
    path: str
    certificates_per_year: int | None
    seasonal_profile: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Link:
    latency_ms: float
    jitter_ms: float
    loss: float


@dataclass(frozen=True, slots=True)
class Links:
    # Unordered region pairs ({a} for within a region) -> conditions; defaults merged in.
    by_regions: Mapping[frozenset[str], Link]

    def between(self, region_a: str, region_b: str) -> Link:
        found = self.by_regions.get(frozenset((region_a, region_b)))
        return found if found is not None else Link(*FALLBACK_LINK)


@dataclass(frozen=True, slots=True)
class Outage:
    party: str  # "hub", "registry" or a country code
    start_hours: float
    duration_hours: float


@dataclass(frozen=True, slots=True)
class KeyRotation:
    day: float
    countries: tuple[str, ...]


# A certificate goes with a consignment; the transit time it should beat depends on the
# mode. Names for UN/ECE Recommendation 19's modes (the bundled `transport_modes` list);
# road, rail and inland waterways carry a consignment within a region only.
TRANSPORT_MODES: dict[str, str] = {
    "sea": "1",  # Maritime transport
    "rail": "2",  # Rail transport
    "road": "3",  # Road transport
    "air": "4",  # Air transport
    "inland-water": "8",  # Inland water transport
}
SAME_REGION_MODES = frozenset({"rail", "road", "inland-water"})
MAX_TRANSIT_HOURS = 24 * 366


@dataclass(frozen=True, slots=True)
class TransitMode:
    """A transport mode's share of the consignments and its transit time (issue to arrival)."""

    mode: str  # a key of TRANSPORT_MODES
    share: float  # relative: renormalised over the modes a pair can use
    hours: float

    @property
    def rec19_code(self) -> str:
        return TRANSPORT_MODES[self.mode]


# ASSUMPTION (no per-mode shares or transit times for phytosanitary consignments were
# found; round figures, docs/study.md "Assumptions"): most consignments go by sea in
# about 20 days, a quarter by air in a day, the rest overland within a region.
DEFAULT_TRANSIT: tuple[TransitMode, ...] = (
    TransitMode("sea", 0.55, 480.0),
    TransitMode("air", 0.25, 24.0),
    TransitMode("road", 0.15, 48.0),
    TransitMode("rail", 0.05, 168.0),
)


@dataclass(frozen=True, slots=True)
class NodePolicy:
    """The node's own setting names (node.identity.config) and backoff (outbox policy)."""

    retry_cap_seconds: int = DEFAULT_RETRY_CAP_SECONDS
    fallback_attempts: int = DEFAULT_FALLBACK_ATTEMPTS
    fallback_seconds: int = DEFAULT_FALLBACK_SECONDS
    backoff_base_seconds: float = Backoff().base.total_seconds()
    backoff_factor: float = Backoff().factor


@dataclass(frozen=True, slots=True)
class FeeModel:
    name: str
    policy: AccountPolicy  # the hub's own pricing (node.hub.accounts)


@dataclass(frozen=True, slots=True)
class Costs:
    currency: str
    node_running_cost_per_year: int  # minor units, like the hub's amounts
    fee_models: tuple[FeeModel, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    countries: tuple[Country, ...]
    trade: GeneratedTrade | ImportedTrade
    topology: TopologyKind
    top_k: int
    period_days: float
    pull_interval_seconds: int
    hub_capacity_per_day: int
    links: Links
    outages: tuple[Outage, ...]
    key_rotations: tuple[KeyRotation, ...]
    node_policy: NodePolicy
    costs: Costs
    transit: tuple[TransitMode, ...] = DEFAULT_TRANSIT

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.countries)


def parse_scenario(data: bytes) -> Scenario:
    """The scenario in `data` (TOML), checked throughout."""
    if len(data) > MAX_SCENARIO_BYTES:
        raise InputError(f"the scenario is {len(data)} bytes; at most {MAX_SCENARIO_BYTES}")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the scenario is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"the scenario is not valid TOML: {e}") from None
    _known(
        document,
        "",
        {
            "name",
            "description",
            "period_days",
            "countries",
            "trade",
            "topology",
            "links",
            "outages",
            "hub",
            "node",
            "costs",
            "key_rotations",
            "transit",
        },
    )
    name = _text(document, "name", "", required=True)
    if not _NAME.fullmatch(name):
        raise InputError(f"name: {name!r} is not lowercase letters, digits and '-'")
    countries = _countries(document)
    codes = {c.code for c in countries}
    period_days = _number(document, "period_days", "", DEFAULT_PERIOD_DAYS, 1, MAX_PERIOD_DAYS)
    topology, top_k = _topology(_table(document, "topology", ""), countries)
    hub = _table(document, "hub", "")
    _known(hub, "hub", {"pull_interval_seconds", "capacity_per_day"})
    return Scenario(
        name=name,
        description=_text(document, "description", "", required=False),
        countries=countries,
        trade=_trade(_table(document, "trade", "", required=True)),
        topology=topology,
        top_k=top_k,
        period_days=period_days,
        pull_interval_seconds=_integer(
            hub, "pull_interval_seconds", "hub", DEFAULT_PULL_INTERVAL_SECONDS, 1, 86_400
        ),
        hub_capacity_per_day=_integer(
            hub, "capacity_per_day", "hub", DEFAULT_HUB_CAPACITY_PER_DAY, 1, 10**12
        ),
        links=_links(_table(document, "links", ""), {c.region for c in countries}),
        outages=_outages(document, codes, period_days),
        key_rotations=_rotations(document, codes, period_days),
        node_policy=_node_policy(_table(document, "node", "")),
        costs=_costs(_table(document, "costs", "")),
        transit=_transit(_table(document, "transit", ""), {c.region for c in countries}),
    )


def _countries(document: Mapping[str, Any]) -> tuple[Country, ...]:
    items = document.get("countries")
    if not isinstance(items, list) or not items:
        raise InputError("countries: a non-empty array of tables is required")
    if len(items) > MAX_COUNTRIES:
        raise InputError(f"countries: {len(items)} countries; at most {MAX_COUNTRIES}")
    iso = bundled().get("countries").codes
    seen: set[str] = set()
    countries: list[Country] = []
    for i, item in enumerate(items):
        path = f"countries[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{path}: a table ({{code = ..., region = ...}}) is required")
        _known(item, path, {"code", "region", "node", "joins_day"})
        code = _text(item, "code", path, required=True)
        if code not in iso:
            raise InputError(f"{path}.code: {code!r} is not an ISO 3166-1 alpha-2 code")
        if code in seen:
            raise InputError(f"{path}.code: {code} is listed twice")
        seen.add(code)
        region = _text(item, "region", path, required=True)
        if not _REGION.fullmatch(region):
            raise InputError(f"{path}.region: {region!r} is not lowercase letters and '-'")
        runs_node = item.get("node", False)
        if not isinstance(runs_node, bool):
            raise InputError(f"{path}.node: true (runs a node) or false (hub only)")
        joins = _number(item, "joins_day", path, 0.0, 0.0, MAX_PERIOD_DAYS)
        countries.append(Country(code, region, runs_node, joins))
    if len(countries) < 2:
        raise InputError("countries: at least two countries are needed to exchange anything")
    return tuple(countries)


def _topology(table: Mapping[str, Any], countries: tuple[Country, ...]) -> tuple[TopologyKind, int]:
    _known(table, "topology", {"kind", "top_k"})
    kind = _text(table, "kind", "topology", required=False) or "hybrid"
    if kind not in TOPOLOGIES:
        raise InputError(f"topology.kind: {kind!r}; one of {', '.join(TOPOLOGIES)}")
    top_k = _integer(table, "top_k", "topology", DEFAULT_TOP_K, 1, len(countries) - 1)
    if kind == "bilateral":
        hub_only = [c.code for c in countries if not c.runs_node]
        if hub_only:
            raise InputError(
                f"topology.kind: bilateral needs every country to run a node; hub only: "
                f"{', '.join(hub_only[:10])}"
            )
    narrowed: TopologyKind = (
        "hub" if kind == "hub" else "bilateral" if kind == "bilateral" else "hybrid"
    )
    return narrowed, top_k


def _trade(table: Mapping[str, Any]) -> GeneratedTrade | ImportedTrade:
    source = _text(table, "source", "trade", required=False) or "generated"
    if source == "imported":
        _known(table, "trade", {"source", "path", "certificates_per_year", "seasonal_profile"})
        path = _text(table, "path", "trade", required=True)
        if not path or "\x00" in path:
            raise InputError("trade.path: the edge-list CSV's path is required")
        total = (
            _integer(table, "certificates_per_year", "trade", 1, 1, MAX_CERTIFICATES_PER_YEAR)
            if "certificates_per_year" in table
            else None
        )
        return ImportedTrade(path, total, _season(table))
    if source != "generated":
        raise InputError(f"trade.source: {source!r}; generated or imported")
    _known(
        table,
        "trade",
        {"source", "model", "seed", "certificates_per_year", "seasonal_profile", "zipf_exponent"},
    )
    model = _text(table, "model", "trade", required=False) or "gravity"
    if model not in TRADE_MODELS:
        raise InputError(f"trade.model: {model!r}; gravity or zipf")
    narrowed: TradeModel = "gravity" if model == "gravity" else "zipf"
    if "seed" not in table:
        raise InputError("trade.seed: required, so the same scenario gives the same trade")
    return GeneratedTrade(
        model=narrowed,
        seed=_integer(table, "seed", "trade", 0, 0, MAX_SEED),
        certificates_per_year=_integer(
            table, "certificates_per_year", "trade", None, 1, MAX_CERTIFICATES_PER_YEAR
        ),
        seasonal_profile=_season(table),
        zipf_exponent=_number(table, "zipf_exponent", "trade", DEFAULT_ZIPF_EXPONENT, 0.1, 5.0),
    )


def _season(table: Mapping[str, Any]) -> tuple[float, ...]:
    profile = table.get("seasonal_profile")
    if profile is None:
        return FLAT_SEASON
    if not isinstance(profile, list) or len(profile) != 12:
        raise InputError("trade.seasonal_profile: 12 monthly weights, January first")
    weights = tuple(
        _finite(w, f"trade.seasonal_profile[{i}]", 0.0, 1e6) for i, w in enumerate(profile)
    )
    if sum(weights) <= 0:
        raise InputError("trade.seasonal_profile: at least one month must have weight")
    return weights


def _links(table: Mapping[str, Any], regions: set[str]) -> Links:
    _known(table, "links", {"pairs"})
    merged = {pair: Link(*values) for pair, values in _LINK_DEFAULTS.items()}
    pairs = table.get("pairs", [])
    if not isinstance(pairs, list) or len(pairs) > 1000:
        raise InputError("links.pairs: an array of at most 1000 tables")
    for i, item in enumerate(pairs):
        path = f"links.pairs[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{path}: a table is required")
        _known(item, path, {"regions", "latency_ms", "jitter_ms", "loss"})
        ends = item.get("regions")
        if (
            not isinstance(ends, list)
            or len(ends) != 2
            or not all(isinstance(r, str) for r in ends)
        ):
            raise InputError(f'{path}.regions: two region names, e.g. ["europe", "asia"]')
        unknown = [r for r in ends if r not in regions]
        if unknown:
            raise InputError(f"{path}.regions: no country is in region {unknown[0]!r}")
        merged[frozenset(ends)] = Link(
            latency_ms=_number(item, "latency_ms", path, None, 0.0, MAX_LATENCY_MS),
            jitter_ms=_number(item, "jitter_ms", path, 0.0, 0.0, MAX_LATENCY_MS),
            loss=_number(item, "loss", path, 0.0, 0.0, 1.0),
        )
    return Links(merged)


def _outages(
    document: Mapping[str, Any], codes: set[str], period_days: float
) -> tuple[Outage, ...]:
    items = _array(document, "outages", MAX_OUTAGES)
    hours = period_days * 24
    outages: list[Outage] = []
    for i, item in enumerate(items):
        path = f"outages[{i}]"
        _known(item, path, {"party", "start_hours", "duration_hours"})
        party = _text(item, "party", path, required=True)
        if party not in (PARTY_HUB, PARTY_REGISTRY) and party not in codes:
            raise InputError(
                f"{path}.party: {party!r} is not hub, registry or a country of the scenario"
            )
        start = _number(item, "start_hours", path, None, 0.0, hours)
        duration = _number(item, "duration_hours", path, None, 0.0, hours)
        if duration <= 0:
            raise InputError(f"{path}.duration_hours: must be more than 0")
        outages.append(Outage(party, start, duration))
    return tuple(outages)


def _rotations(
    document: Mapping[str, Any], codes: set[str], period_days: float
) -> tuple[KeyRotation, ...]:
    items = _array(document, "key_rotations", MAX_KEY_ROTATIONS)
    rotations: list[KeyRotation] = []
    for i, item in enumerate(items):
        path = f"key_rotations[{i}]"
        _known(item, path, {"day", "countries"})
        day = _number(item, "day", path, None, 0.0, period_days)
        who = item.get("countries")
        if who == "all":
            chosen = tuple(sorted(codes))
        elif isinstance(who, list) and who and all(isinstance(c, str) for c in who):
            unknown = [c for c in who if c not in codes]
            if unknown:
                raise InputError(f"{path}.countries: {unknown[0]!r} is not in the scenario")
            if len(set(who)) != len(who):
                raise InputError(f"{path}.countries: a country is listed twice")
            chosen = tuple(who)
        else:
            raise InputError(f'{path}.countries: "all" or a non-empty array of country codes')
        rotations.append(KeyRotation(day, chosen))
    return tuple(rotations)


def _transit(table: Mapping[str, Any], regions: set[str]) -> tuple[TransitMode, ...]:
    _known(table, "transit", {"modes"})
    if "modes" not in table:
        return DEFAULT_TRANSIT
    items = _array(table, "modes", len(TRANSPORT_MODES), path="transit.modes")
    if not items:
        raise InputError("transit.modes: at least one mode is needed")
    listed = bundled().get("transport_modes").codes
    modes: list[TransitMode] = []
    for i, item in enumerate(items):
        path = f"transit.modes[{i}]"
        _known(item, path, {"mode", "share", "hours"})
        mode = _text(item, "mode", path, required=True)
        if mode not in TRANSPORT_MODES or TRANSPORT_MODES[mode] not in listed:
            raise InputError(f"{path}.mode: {mode!r}; one of {', '.join(TRANSPORT_MODES)}")
        if any(m.mode == mode for m in modes):
            raise InputError(f"{path}.mode: {mode} is listed twice")
        share = _number(item, "share", path, None, 0.0, 1e6)
        hours = _number(item, "hours", path, None, 0.0, MAX_TRANSIT_HOURS)
        if hours <= 0:
            raise InputError(f"{path}.hours: must be more than 0")
        modes.append(TransitMode(mode, share, hours))
    if sum(m.share for m in modes) <= 0:
        raise InputError("transit.modes: the shares sum to 0; give at least one mode a share")
    across = sum(m.share for m in modes if m.mode not in SAME_REGION_MODES)
    if len(regions) > 1 and across <= 0:
        raise InputError(
            "transit.modes: the countries are in more than one region and only sea or air "
            "crosses regions; give sea or air a share"
        )
    return tuple(modes)


def _node_policy(table: Mapping[str, Any]) -> NodePolicy:
    _known(
        table,
        "node",
        {
            "retry_cap_seconds",
            "fallback_attempts",
            "fallback_seconds",
            "backoff_base_seconds",
            "backoff_factor",
        },
    )
    d = NodePolicy()
    return NodePolicy(
        retry_cap_seconds=_integer(
            table, "retry_cap_seconds", "node", d.retry_cap_seconds, 1, 86_400
        ),
        fallback_attempts=_integer(
            table, "fallback_attempts", "node", d.fallback_attempts, 1, 1000
        ),
        fallback_seconds=_integer(table, "fallback_seconds", "node", d.fallback_seconds, 1, 86_400),
        backoff_base_seconds=_number(
            table, "backoff_base_seconds", "node", d.backoff_base_seconds, 0.001, 3600.0
        ),
        backoff_factor=_number(table, "backoff_factor", "node", d.backoff_factor, 1.0, 10.0),
    )


def _costs(table: Mapping[str, Any]) -> Costs:
    _known(table, "costs", {"currency", "node_running_cost_per_year", "fee_models"})
    currency = _text(table, "currency", "costs", required=False) or "EUR"
    running = _integer(table, "node_running_cost_per_year", "costs", 0, 0, 10**15)
    items = _array(table, "fee_models", MAX_FEE_MODELS, path="costs.fee_models")
    models: list[FeeModel] = []
    for i, item in enumerate(items):
        path = f"costs.fee_models[{i}]"
        _known(item, path, {"name", "kind", "fee", "period", "included", "tiers"})
        name = _text(item, "name", path, required=True)
        if not _NAME.fullmatch(name):
            raise InputError(f"{path}.name: {name!r} is not lowercase letters, digits and '-'")
        if any(m.name == name for m in models):
            raise InputError(f"{path}.name: {name} is used twice")
        try:
            policy = AccountPolicy(currency, _pricing(item, path))
        except AccountsError as e:
            raise InputError(f"{path}: {e}") from None
        models.append(FeeModel(name, policy))
    return Costs(currency, running, tuple(models))


def _pricing(item: Mapping[str, Any], path: str) -> Prepaid | Plan:
    """The hub's own pricing kinds (node.hub.accounts): prepaid or plan."""
    kind = _text(item, "kind", path, required=True)
    if kind == "prepaid":
        _known(item, path, {"name", "kind", "fee"})
        return Prepaid(_integer(item, "fee", path, None, 0, 10**15))
    if kind != "plan":
        raise InputError(f"{path}.kind: {kind!r}; the hub's fee models are prepaid and plan")
    _known(item, path, {"name", "kind", "period", "included", "tiers"})
    period = _text(item, "period", path, required=False) or "annual"
    if period not in ("monthly", "annual"):
        raise InputError(f"{path}.period: monthly or annual, not {period!r}")
    tiers = _array(item, "tiers", MAX_TIERS, path=f"{path}.tiers")
    parsed: list[Tier] = []
    for j, tier in enumerate(tiers):
        tier_path = f"{path}.tiers[{j}]"
        _known(tier, tier_path, {"up_to", "price"})
        up_to = _integer(tier, "up_to", tier_path, 1, 1, 10**15) if "up_to" in tier else None
        parsed.append(Tier(up_to, _integer(tier, "price", tier_path, None, 0, 10**15)))
    return Plan(
        "monthly" if period == "monthly" else "annual",
        _integer(item, "included", path, 0, 0, 10**15),
        tuple(parsed),
    )


# -- small checked readers: each names the key path in its error ------------------------


def _known(table: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        where = f"{path}." if path else ""
        raise InputError(f"{where}{unknown[0]}: unknown key (known: {', '.join(sorted(allowed))})")


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _table(
    table: Mapping[str, Any], key: str, path: str, *, required: bool = False
) -> Mapping[str, Any]:
    value = table.get(key)
    if value is None:
        if required:
            raise InputError(f"{_key(path, key)}: a table is required")
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{_key(path, key)}: a table is required, not {type(value).__name__}")
    return value


def _array(
    table: Mapping[str, Any], key: str, limit: int, *, path: str | None = None
) -> list[Mapping[str, Any]]:
    where = path or key
    value = table.get(key, [])
    if not isinstance(value, list):
        raise InputError(f"{where}: an array of tables is required")
    if len(value) > limit:
        raise InputError(f"{where}: {len(value)} entries; at most {limit}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InputError(f"{where}[{i}]: a table is required")
    return value


def _text(table: Mapping[str, Any], key: str, path: str, *, required: bool) -> str:
    value = table.get(key)
    if value is None:
        if required:
            raise InputError(f"{_key(path, key)}: required")
        return ""
    if not isinstance(value, str):
        raise InputError(f"{_key(path, key)}: text is required, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise InputError(f"{_key(path, key)}: longer than {MAX_TEXT} characters")
    return value


def _integer(
    table: Mapping[str, Any], key: str, path: str, default: int | None, low: int, high: int
) -> int:
    value = table.get(key)
    if value is None:
        if default is None:
            raise InputError(f"{_key(path, key)}: required")
        return default
    # bool is an int to Python; `seed = true` is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{_key(path, key)}: an integer is required, not {value!r}")
    if not low <= value <= high:
        raise InputError(f"{_key(path, key)}: {value} is not between {low} and {high}")
    return value


def _number(
    table: Mapping[str, Any], key: str, path: str, default: float | None, low: float, high: float
) -> float:
    value = table.get(key)
    if value is None:
        if default is None:
            raise InputError(f"{_key(path, key)}: required")
        return float(default)
    return _finite(value, _key(path, key), low, high)


def _finite(value: object, where: str, low: float, high: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InputError(f"{where}: a number is required, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{where}: {value} is not between {low:g} and {high:g}")
    return number
