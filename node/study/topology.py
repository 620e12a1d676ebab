"""Links, trust relationships and keys each topology needs (pure).

Counted without a directory: every link is a trust relationship whose two ends must
hold and check each other's keys, exchanged and renewed by hand. So n countries all
through a hub need n links (each country and the hub); all bilateral, n(n-1)/2; the
hybrid, its direct links plus a hub link for each country that still has a partner
it does not reach directly. A registry (the project's directory) replaces the manual
exchange with one trust anchor per party, which is the point of having one; these
counts are what the analyst compares it against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from node.errors import InputError
from node.study.scenario import PARTY_HUB, Country, TopologyKind
from node.study.trade import Flows, top_partners


@dataclass(frozen=True, slots=True)
class TopologyCounts:
    kind: TopologyKind
    countries: int
    direct_links: frozenset[frozenset[str]]
    hub_users: frozenset[str]
    # Party ("hub" or a country code) -> the other parties' keys it must hold.
    keys_held: Mapping[str, int]

    @property
    def links(self) -> int:
        return len(self.direct_links) + len(self.hub_users)

    @property
    def trust_relationships(self) -> int:
        # One per link: without a directory each link's two ends trust each other by hand.
        return self.links

    @property
    def most_keys_held_by_a_country(self) -> int:
        return max((n for party, n in self.keys_held.items() if party != PARTY_HUB), default=0)

    def to_json(self) -> dict[str, int]:
        """The counts as `study show --json` and summary.json's `trust` give them."""
        return {
            "links": self.links,
            "direct_links": len(self.direct_links),
            "hub_links": len(self.hub_users),
            "trust_relationships": self.trust_relationships,
            "most_keys_held_by_a_country": self.most_keys_held_by_a_country,
            "keys_held_by_hub": self.keys_held.get(PARTY_HUB, 0),
        }


def bilateral_links(n: int) -> int:
    """Point-to-point links among n parties, every pair connected: n(n-1)/2."""
    if n < 0:
        raise InputError(f"a number of countries cannot be negative ({n})")
    return n * (n - 1) // 2


def count(
    kind: TopologyKind, countries: Sequence[Country], flows: Flows, top_k: int
) -> TopologyCounts:
    """What `kind` needs for these countries and this trade."""
    codes = sorted(c.code for c in countries)
    if kind == "hub":
        direct: set[frozenset[str]] = set()
    elif kind == "bilateral":
        direct = {frozenset((a, b)) for i, a in enumerate(codes) for b in codes[i + 1 :]}
    else:
        direct = _hybrid_direct(countries, flows, top_k)
    hub_users = _needing_hub(kind, codes, flows, direct)
    keys = {code: 0 for code in codes}
    for link in direct:
        for end in link:
            keys[end] += 1
    for code in hub_users:
        keys[code] += 1
    if hub_users:
        keys[PARTY_HUB] = len(hub_users)
    return TopologyCounts(kind, len(codes), frozenset(direct), frozenset(hub_users), keys)


def _hybrid_direct(countries: Sequence[Country], flows: Flows, top_k: int) -> set[frozenset[str]]:
    """A direct link wherever either end counts the other among its top-k node partners.

    Only countries running a node can link directly, so each picks its top-k among
    those; a link both ends picked is one link, not two.
    """
    with_node = {c.code for c in countries if c.runs_node}
    between_nodes = Flows(
        {p: v for p, v in flows.volumes.items() if p[0] in with_node and p[1] in with_node}
    )
    if not between_nodes.volumes:
        return set()
    return {
        frozenset((country, partner))
        for country, partners in top_partners(between_nodes, top_k).items()
        for partner in partners
    }


def _needing_hub(
    kind: TopologyKind, codes: Sequence[str], flows: Flows, direct: set[frozenset[str]]
) -> set[str]:
    if kind == "hub":
        return set(codes)
    if kind == "bilateral":
        return set()
    users: set[str] = set()
    for origin, destination in flows.volumes:
        if frozenset((origin, destination)) not in direct:
            users.update((origin, destination))
    return users
