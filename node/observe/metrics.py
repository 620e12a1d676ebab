"""One process's metrics (shell): counters and a histogram moved as things happen, and
gauges computed at scrape time, all in a `CollectorRegistry` of the process's own.

A registry of its own, not prometheus_client's global one: tests run several nodes in
one process, and each must count only its own. The gauges are samples an async callable
gathers from the store and the directory when `/metrics` is asked for
(node.observe.listener), so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.observe import names
from node.observe.event_lines import Count

NODE_COUNTERS: Final[Mapping[str, tuple[str, ...]]] = {
    names.SENT: (names.ROUTE, names.PARTNER),
    names.RECEIVED: (names.PARTNER, names.OUTCOME),
    names.FAILED: (names.ROUTE, names.PARTNER, names.REASON),
    names.RETRIES: (names.PARTNER, names.REASON),
    names.DUPLICATES: (names.PARTNER,),
    names.EVENTS: (names.KIND,),
    names.CONSOLE_SIGN_INS: (names.OUTCOME,),
    names.CONSOLE_REFUSALS: (names.REASON,),
}
NODE_HISTOGRAMS: Final[Mapping[str, tuple[str, ...]]] = {names.LATENCY: (names.ROUTE,)}
HUB_COUNTERS: Final[Mapping[str, tuple[str, ...]]] = {names.HUB_ENVELOPES: (names.KIND,)}
REGISTRY_COUNTERS: Final[Mapping[str, tuple[str, ...]]] = {names.REGISTRY_ACTIONS: (names.ACTION,)}
# Delivery takes from well under a second (direct) to hours (a partner down, the hub).
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600)


@dataclass(frozen=True, slots=True)
class Sample:
    """One gauge value at scrape time."""

    name: str
    labels: Mapping[str, str]
    value: float


class ProcessMetrics:
    """The metrics of one process: its counters, its histograms, its scrape-time gauges."""

    def __init__(
        self,
        counters: Mapping[str, tuple[str, ...]],
        histograms: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = {
            name: Counter(name, names.HELP[name], labels, registry=self.registry)
            for name, labels in counters.items()
        }
        self._histograms = {
            name: Histogram(
                name, names.HELP[name], labels, registry=self.registry, buckets=LATENCY_BUCKETS
            )
            for name, labels in (histograms or {}).items()
        }
        self._gauges = _Gauges()
        self.registry.register(self._gauges)

    def count(self, moved: Iterable[Count]) -> None:
        """Apply increments and observations (an unknown metric is a bug: KeyError)."""
        for count in moved:
            if count.metric in self._histograms:
                self._histograms[count.metric].labels(**count.labels).observe(count.value)
            else:
                self._counters[count.metric].labels(**count.labels).inc(count.value)

    def exposition(self, gauges: Sequence[Sample]) -> bytes:
        """The text exposition format, with `gauges` as the scrape-time values."""
        self._gauges.samples = tuple(gauges)
        return generate_latest(self.registry)


class _Gauges(Collector):
    """The scrape-time gauges: whatever was set just before the exposition was made."""

    def __init__(self) -> None:
        self.samples: tuple[Sample, ...] = ()

    def describe(self) -> Iterable[Metric]:
        return ()  # unknown until a scrape: no name clash to check at registration

    def collect(self) -> Iterator[Metric]:
        families: dict[str, tuple[GaugeMetricFamily, list[str]]] = {}
        for sample in self.samples:
            if sample.name not in families:
                labels = list(sample.labels)
                help_text = names.HELP.get(sample.name, sample.name)
                families[sample.name] = (
                    GaugeMetricFamily(sample.name, help_text, labels=labels),
                    labels,
                )
            family, labels = families[sample.name]
            family.add_metric([sample.labels.get(label, "") for label in labels], sample.value)
        for family, _ in families.values():
            yield family
