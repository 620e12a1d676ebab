"""Log lines: a certificate event's fields, text and JSON formatting, and the rate limit
of repeated warnings (with an injected clock)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from node.observe import names
from node.observe.event_lines import CertificateEvent, counts, log_fields, log_message
from node.observe.formatting import FIELDS, JsonFormatter, TextFormatter, key_values
from node.observe.hub_lines import hub_log_fields, hub_log_message
from node.observe.ratelimit import RateLimitFilter, Seen, decide, limit_key

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _event(kind: str, **detail: object) -> CertificateEvent:
    return CertificateEvent(
        id=7, at=T0 + timedelta(seconds=2), kind=kind, direction="out",
        message_kind="certificate", certificate_number="NL-2026-001", message_id="m-1",
        partner="KE", route="direct", created_at=T0, detail=detail,
    )  # fmt: skip


def test_a_delivery_is_one_line_with_its_certificate_message_partner_and_route() -> None:
    event = _event("delivered", route="direct", outcome="accepted")
    assert log_message(event) == "certificate delivered"
    assert log_fields(event) == {
        "event": "delivered", "certificate": "NL-2026-001", "message_id": "m-1",
        "partner": "KE", "direction": "out", "route": "direct", "outcome": "accepted",
        "reason": None,
    }  # fmt: skip
    moved = {(c.metric, tuple(sorted(c.labels.items())), c.value) for c in counts(event)}
    assert moved == {
        (names.EVENTS, (("kind", "delivered"),), 1.0),
        (names.SENT, (("partner", "KE"), ("route", "direct")), 1.0),
        (names.LATENCY, (("route", "direct"),), 2.0),
    }


def test_a_failure_counts_by_reason_class_never_by_its_text() -> None:
    event = _event("failed", error="https://ke.example/x answered HTTP 400: bad envelope")
    assert log_fields(event)["reason"] == "https://ke.example/x answered HTTP 400: bad envelope"
    failed = [c for c in counts(event) if c.metric == names.FAILED]
    assert [dict(c.labels) for c in failed] == [
        {"route": "direct", "partner": "KE", "reason": "http"}
    ]
    retry = _event("retry", error="https://ke/x: no answer within the timeout")
    assert [dict(c.labels) for c in counts(retry) if c.metric == names.RETRIES] == [
        {"partner": "KE", "reason": "timeout"}
    ]


def test_a_duplicate_dropped_is_a_line_and_counted_by_partner() -> None:
    event = dataclasses.replace(_event("duplicate", **{"from": "KE"}), direction="in")
    assert log_message(event) == "certificate received again and dropped"
    moved = {(c.metric, tuple(sorted(c.labels.items()))) for c in counts(event)}
    assert moved == {
        (names.EVENTS, (("kind", "duplicate"),)),
        (names.DUPLICATES, (("partner", "KE"),)),
    }


def test_a_refused_certificate_says_so_and_counts_its_outcome() -> None:
    event = CertificateEvent(
        1, T0, "received", "in", "certificate", "KE-1", "m-9", "KE", None, T0,
        {"from": "KE", "outcome": "rejected"},
    )  # fmt: skip
    assert log_message(event) == "certificate received and refused"
    received = [c for c in counts(event) if c.metric == names.RECEIVED]
    assert [dict(c.labels) for c in received] == [{"partner": "KE", "outcome": "rejected"}]


def test_only_named_detail_fields_reach_the_log() -> None:
    event = _event("submitted", to="KE", secret="s3cr3t", payload="<xml/>")
    line = key_values(log_fields(event))
    assert "s3cr3t" not in line and "<xml/>" not in line
    assert log_fields(event)["route"] is None  # not known when it was submitted


def test_hub_lines_name_the_envelope_and_not_its_content() -> None:
    fields = hub_log_fields("delivered", "trk-1", "NL", {"from": "NL", "to": "CL", "size": 9})
    assert hub_log_message("delivered") == "envelope accepted"
    assert fields["tracking_number"] == "trk-1" and fields["bytes"] == 9
    assert hub_log_message("expired") == "envelope expired unacknowledged"


def _record(
    msg: str, *args: object, level: int = logging.WARNING, **fields: object
) -> logging.LogRecord:
    record = logging.LogRecord("node.x", level, __file__, 1, msg, args or None, None)
    if fields:
        setattr(record, FIELDS, fields)
    return record


def test_text_lines_carry_fields_as_key_value_pairs_quoted_when_needed() -> None:
    line = TextFormatter().format(
        _record("certificate delivered", certificate="NL 1", route="direct", empty=None)
    )
    assert line.endswith('node.x: certificate delivered certificate="NL 1" route=direct')
    assert key_values({"a": 'x"y', "b": "k=v", "c": ""}) == 'a="x\\"y" b="k=v" c=""'


def test_json_lines_are_one_object_with_time_level_logger_message_and_fields() -> None:
    record = _record(
        "from %s\nnext line", "KE", certificate="NL-1", message="clash", level=logging.INFO
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "INFO" and document["logger"] == "node.x"
    assert document["message"] == "from KE\nnext line"
    assert document["certificate"] == "NL-1"
    assert document["field_message"] == "clash"  # a field never overwrites the message
    assert datetime.fromisoformat(document["time"]).tzinfo is not None


def test_json_lines_hold_the_traceback_of_an_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("n", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    document = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in document["exception"]


def test_decide_lets_one_through_per_window_and_counts_the_rest() -> None:
    first = decide(None, 100.0)
    assert first.emit and first.suppressed == 0
    held = decide(first.seen, 130.0)
    assert not held.emit and held.seen == Seen(100.0, 1)
    again = decide(held.seen, 160.0)
    assert again.emit and again.suppressed == 1 and again.seen == Seen(160.0)
    assert decide(Seen(100.0, 3), 50.0).emit  # a clock that went back: let it through


def test_limit_key_is_the_template_unless_the_template_says_nothing() -> None:
    assert limit_key("a", "registry %s down", "registry x down") == ("a", "registry %s down", "")
    assert limit_key("a", "%s", "registry x down") == ("a", "registry x down", "")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited() -> Iterator[tuple[logging.Logger, io.StringIO, _Clock]]:
    clock, out = _Clock(), io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter())
    handler.addFilter(RateLimitFilter(clock))
    logger = logging.getLogger("tests.ratelimit")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield logger, out, clock
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_repeated_warnings_go_out_once_a_minute_with_a_count(
    limited: tuple[logging.Logger, io.StringIO, _Clock],
) -> None:
    logger, out, clock = limited
    for attempt in range(30):  # every 2 s for a minute, as a node whose registry is down
        logger.warning("registry unreachable: attempt %d", attempt)
        logger.info("an info line is never held back")
        clock.now += 2
    logger.warning("registry unreachable: attempt %d", 30)
    lines = out.getvalue().splitlines()
    warnings = [line for line in lines if "WARNING" in line]
    assert len(warnings) == 2
    assert warnings[0].endswith("registry unreachable: attempt 0")
    assert warnings[1].endswith("registry unreachable: attempt 30 (29 similar suppressed)")
    assert sum("an info line" in line for line in lines) == 30


def test_different_warnings_and_different_fields_are_not_merged(
    limited: tuple[logging.Logger, io.StringIO, _Clock],
) -> None:
    logger, out, _ = limited
    logger.warning("one thing")
    logger.warning("another thing")
    logger.warning("refused", extra={FIELDS: {"pin": "sha256:aa"}})
    logger.warning("refused", extra={FIELDS: {"pin": "sha256:bb"}})
    logger.warning("refused", extra={FIELDS: {"pin": "sha256:aa"}})
    assert len(out.getvalue().splitlines()) == 4
