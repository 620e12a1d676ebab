"""The webhook signature: a fixed vector another team can check their receiver with."""

from __future__ import annotations

from node.api.webhook_signature import signature, verify

SECRET = "whsec_0123456789abcdef"
TIMESTAMP = 1765101600
BODY = b'{"events":[]}'
# HMAC-SHA256(key=SECRET's ASCII, msg=b"1765101600." + BODY), hex: docs/operations.md.
EXPECTED = "v1=4c0868001e43cf69e862fb1270e27a58e7738ccc8539efac4754794700e92b7e"


def test_vector() -> None:
    assert signature(SECRET, TIMESTAMP, BODY) == EXPECTED


def test_verify_refuses_any_change() -> None:
    assert verify(SECRET, TIMESTAMP, BODY, EXPECTED)
    assert not verify(SECRET, TIMESTAMP + 1, BODY, EXPECTED)
    assert not verify(SECRET, TIMESTAMP, b'{"events":[1]}', EXPECTED)
    assert not verify("whsec_another-secret-value", TIMESTAMP, BODY, EXPECTED)
    assert not verify(SECRET, TIMESTAMP, BODY, EXPECTED[3:])
