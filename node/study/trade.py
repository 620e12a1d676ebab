"""Generated trade: certificates a year per ordered country pair (pure, seeded).

Two models, both drawn from `random.Random(seed)` alone so the same scenario gives the
same flows on every machine and Python version that keeps `random`'s documented
reproducibility:

- gravity: each country gets a seeded export and import "mass" (log-normal, ASSUMPTION:
  no real GDP or trade data is bundled); a pair's weight is exports(origin) x
  imports(destination), halved when the two are in different regions (ASSUMPTION).
- zipf: the ordered pairs are put in a seeded random order and the pair of rank r
  weighs 1/r^s, so a few lanes carry most certificates, as trade lanes do.

Weights become integer volumes that sum exactly to the scenario's total by the largest
remainder method, ties broken by pair order so nothing depends on float noise.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from node.errors import InputError
from node.study.scenario import Country, GeneratedTrade

Pair = tuple[str, str]  # (origin, destination)

# ASSUMPTION: trade between regions is half as likely as within one, mass for mass.
CROSS_REGION_FACTOR = 0.5
# ASSUMPTION: log-normal masses with sigma 1.5 give a top-heavy world (the largest
# country trading some hundreds of times the smallest), as real trade is.
MASS_SIGMA = 1.5
# ASSUMPTION: imports differ from exports by a log-normal factor (sigma 0.5).
IMBALANCE_SIGMA = 0.5


@dataclass(frozen=True, slots=True)
class Flows:
    """Certificates a year for each ordered pair with any (pairs in sorted order)."""

    volumes: Mapping[Pair, int]

    @property
    def total(self) -> int:
        return sum(self.volumes.values())

    def largest(self, count: int) -> list[tuple[Pair, int]]:
        """The `count` largest flows, largest first (ties by pair)."""
        ranked = sorted(self.volumes.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:count]


def generate_flows(countries: Sequence[Country], trade: GeneratedTrade) -> Flows:
    """Yearly certificate flows per ordered pair summing to `trade.certificates_per_year`."""
    if len(countries) < 2:
        raise InputError("trade needs at least two countries")
    rng = random.Random(trade.seed)
    ordered = sorted(countries, key=lambda c: c.code)
    pairs = [(a.code, b.code) for a in ordered for b in ordered if a.code != b.code]
    weights: list[float]
    if trade.model == "gravity":
        # A country exports and imports in proportion to its size, but not equally.
        exports = {c.code: rng.lognormvariate(0.0, MASS_SIGMA) for c in ordered}
        imports = {
            c.code: exports[c.code] * rng.lognormvariate(0.0, IMBALANCE_SIGMA) for c in ordered
        }
        region = {c.code: c.region for c in ordered}
        weights = [
            exports[a] * imports[b] * (1.0 if region[a] == region[b] else CROSS_REGION_FACTOR)
            for a, b in pairs
        ]
    else:
        ranks = list(range(1, len(pairs) + 1))
        rng.shuffle(ranks)
        weights = [1.0 / rank**trade.zipf_exponent for rank in ranks]
    volumes = apportion(trade.certificates_per_year, weights)
    return Flows({pair: v for pair, v in zip(pairs, volumes, strict=True) if v > 0})


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Integers proportional to `weights` that sum to `total` (largest remainder)."""
    if total < 0:
        raise InputError(f"a volume cannot be negative ({total})")
    weight_sum = sum(weights)
    if not weights or weight_sum <= 0 or any(w < 0 for w in weights):
        raise InputError("weights must be non-negative with a positive sum")
    shares = [total * w / weight_sum for w in weights]
    floors = [int(s) for s in shares]
    short = total - sum(floors)
    # Float rounding can leave `short` a little outside [0, len): clamp by construction.
    by_remainder = sorted(range(len(shares)), key=lambda i: (floors[i] - shares[i], i))
    for i in by_remainder[: max(short, 0)]:
        floors[i] += 1
    excess = -short
    for i in reversed(by_remainder):
        if excess <= 0:
            break
        if floors[i] > 0:
            floors[i] -= 1
            excess -= 1
    return floors


def top_partners(flows: Flows, k: int) -> dict[str, tuple[str, ...]]:
    """Each country's `k` largest partners by certificates both ways (the hybrid's direct links).

    Ties go to the lower code, so the choice is as deterministic as the flows.
    """
    if k < 1:
        raise InputError(f"top-k must be at least 1, not {k}")
    both_ways: dict[str, dict[str, int]] = {}
    for (origin, destination), volume in flows.volumes.items():
        both_ways.setdefault(origin, {}).setdefault(destination, 0)
        both_ways.setdefault(destination, {}).setdefault(origin, 0)
        both_ways[origin][destination] += volume
        both_ways[destination][origin] += volume
    return {
        country: tuple(
            p for p, _ in sorted(partners.items(), key=lambda item: (-item[1], item[0]))[:k]
        )
        for country, partners in sorted(both_ways.items())
    }


def monthly(flows: Flows, profile: Sequence[float], seed: int) -> dict[Pair, tuple[int, ...]]:
    """Each pair's yearly volume spread over 12 months by `profile`, summing exactly.

    The whole months come from the profile; the few certificates left over go to months
    drawn (seeded) in proportion to what each month fell short, so a small flow does not
    always land in the same month.
    """
    if len(profile) != 12 or sum(profile) <= 0 or any(w < 0 for w in profile):
        raise InputError("the seasonal profile is 12 non-negative weights with a positive sum")
    rng = random.Random(seed)
    weight_sum = sum(profile)
    spread: dict[Pair, tuple[int, ...]] = {}
    for pair in sorted(flows.volumes):
        volume = flows.volumes[pair]
        shares = [volume * w / weight_sum for w in profile]
        months = [int(s) for s in shares]
        left = volume - sum(months)
        fractions = [s - m for s, m in zip(shares, months, strict=True)]
        # Weighted sampling without replacement (Efraimidis-Spirakis keys u^(1/w)).
        keys = sorted(
            ((rng.random() ** (1.0 / f) if f > 0 else -1.0, m) for m, f in enumerate(fractions)),
            reverse=True,
        )
        for _, month in keys[:left]:
            months[month] += 1
        spread[pair] = tuple(months)
    return spread
