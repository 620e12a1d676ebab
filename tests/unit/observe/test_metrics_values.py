"""The metrics of one process: its own registry, the counters' labels, the scrape-time
gauges (node and hub values), and the readiness verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from node.directory.model import KeyEntry, NppoEntry, TlsPin
from node.observe import names
from node.observe.event_lines import Count
from node.observe.gauges import key_samples, outbox_samples, tls_certificate_samples
from node.observe.health import Check, readiness
from node.observe.hub_lines import age_seconds
from node.observe.metrics import NODE_COUNTERS, NODE_HISTOGRAMS, ProcessMetrics, Sample
from node.observe.reasons import REASON_CLASSES, reason_class

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.decode())
        for s in family.samples
    }


def test_each_process_counts_in_a_registry_of_its_own() -> None:
    one = ProcessMetrics(NODE_COUNTERS, NODE_HISTOGRAMS)
    two = ProcessMetrics(NODE_COUNTERS, NODE_HISTOGRAMS)
    one.count([Count(names.SENT, {names.ROUTE: "hub", names.PARTNER: "KE"})] * 2)
    one.count([Count(names.LATENCY, {names.ROUTE: "hub"}, 3.0)])
    found = _samples(one.exposition([]))
    assert found[(names.SENT, (("partner", "KE"), ("route", "hub")))] == 2.0
    assert found[(names.LATENCY + "_count", (("route", "hub"),))] == 1.0
    assert found[(names.LATENCY + "_sum", (("route", "hub"),))] == 3.0
    assert (names.SENT, (("partner", "KE"), ("route", "hub"))) not in _samples(two.exposition([]))


def test_gauges_are_what_the_scrape_gathered_and_nothing_stale() -> None:
    metrics = ProcessMetrics(NODE_COUNTERS)
    first = metrics.exposition(
        [
            Sample(names.OUTBOX_DEPTH, {}, 4),
            Sample(names.KEY_EXPIRY, {"key": "signing", "key_id": "a"}, 9.5),
        ]
    )
    assert _samples(first)[(names.OUTBOX_DEPTH, ())] == 4.0
    assert _samples(first)[(names.KEY_EXPIRY, (("key", "signing"), ("key_id", "a")))] == 9.5
    second = metrics.exposition([Sample(names.OUTBOX_DEPTH, {}, 0)])
    assert _samples(second)[(names.OUTBOX_DEPTH, ())] == 0.0
    assert not any(name == names.KEY_EXPIRY for name, _ in _samples(second))


def test_outbox_gauges() -> None:
    assert outbox_samples(0, None, NOW) == [
        Sample(names.OUTBOX_DEPTH, {}, 0.0),
        Sample(names.OLDEST_UNDELIVERED, {}, 0.0),
    ]
    oldest = outbox_samples(3, NOW - timedelta(minutes=2), NOW)[1]
    assert oldest.value == 120.0
    assert age_seconds(NOW - timedelta(seconds=5), NOW) == 5.0 and age_seconds(None, NOW) == 0


def test_key_and_certificate_expiry_in_days_leaving_out_the_past() -> None:
    day = timedelta(days=1)
    entry = NppoEntry(
        country="NL", name="NVWA", status="active", endpoint=None,
        keys=(
            KeyEntry("signing", b"\x01" * 32, "sig-now", NOW - day, NOW + 10 * day),
            KeyEntry("signing", b"\x02" * 32, "sig-old", NOW - 9 * day, NOW - day),
        ),
        tls_pins=(TlsPin("sha256:ab", NOW, NOW + timedelta(hours=36)),),
        schema_versions=(),
    )  # fmt: skip
    assert key_samples(entry, NOW) == [
        Sample(names.KEY_EXPIRY, {"key": "signing", "key_id": "sig-now"}, 10.0),
        Sample(names.KEY_EXPIRY, {"key": "tls", "key_id": "sha256:ab"}, 1.5),
    ]
    assert key_samples(None, NOW) == []
    assert tls_certificate_samples([NOW - timedelta(days=2)], NOW)[0].value == -2.0


def test_reason_classes_are_a_fixed_set() -> None:
    texts = [
        "KE is revoked in the directory: x", "https://x: TLS certificate refused: y",
        "https://x: no answer within the timeout", "cannot seal message 1: z",
        "https://x answered HTTP 500", "the hub reports FailedDelivery: gone",
        "receipt outcome rejected", "something new", "",
    ]  # fmt: skip
    classes = [reason_class(text) for text in texts]
    assert classes == [
        "revoked", "tls", "timeout", "seal", "http", "hub", "rejected", "other", "other"
    ]  # fmt: skip
    assert set(classes) <= set(REASON_CLASSES)


def test_ready_only_when_every_check_passes() -> None:
    good = readiness([Check("store", True, "writable"), Check("directory", True, "v3")])
    assert good.ready and good.status == 200 and good.to_plain()["failing"] == []
    bad = readiness([Check("store", True), Check("directory", False, "expired")])
    assert bad.status == 503
    assert bad.to_plain() == {
        "ready": False,
        "checks": {
            "store": {"ok": True, "detail": ""},
            "directory": {"ok": False, "detail": "expired"},
        },
        "failing": ["directory"],
    }
