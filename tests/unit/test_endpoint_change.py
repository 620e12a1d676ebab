"""The endpoint change request: built, verified, and refused when hostile or stale."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.identity.endpoint_change import (
    MAX_ENDPOINT_CHANGE_BYTES,
    EndpointChange,
    EndpointChangeError,
    build_endpoint_change,
    endpoint_change_country,
    verify_endpoint_change,
)
from node.identity.enrolment import EnrolmentError
from registry.endpoints import check_change, current_endpoint
from registry.publish import RegistryError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PUBLIC = KEY.public_key().public_bytes_raw()


def _request(endpoint: str | None = "https://nl.example:9443", **kw: Any) -> bytes:
    return build_endpoint_change(
        kw.get("key", KEY), country="NL", endpoint=endpoint, created=kw.get("created", NOW)
    )


def test_round_trip_to_a_new_endpoint_and_to_hub_only() -> None:
    moved = verify_endpoint_change(_request(), [PUBLIC])
    assert moved.country == "NL" and moved.endpoint == "https://nl.example:9443"
    assert moved.created == NOW
    assert verify_endpoint_change(_request(None), [PUBLIC]).endpoint is None
    assert endpoint_change_country(_request()) == "NL"


def test_any_currently_valid_key_may_sign_during_a_rotation() -> None:
    other_public = OTHER.public_key().public_bytes_raw()
    assert verify_endpoint_change(_request(key=OTHER), [PUBLIC, other_public]).country == "NL"


def test_a_key_the_registry_does_not_list_is_refused() -> None:
    with pytest.raises(EndpointChangeError, match="is not a signing key of NL valid now"):
        verify_endpoint_change(_request(key=OTHER), [PUBLIC])


def test_a_bad_url_is_refused_when_building() -> None:
    with pytest.raises(EnrolmentError, match="https"):
        _request("http://nl.example:9443")


def _tampered(change: dict[str, Any]) -> bytes:
    document = json.loads(_request())
    document["body"].update(change)
    return canonical_bytes(document)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not JSON"),
        (b"[]", "request"),
        (b'{"body":1,"body":2}', "not JSON"),
        (b"x" * (MAX_ENDPOINT_CHANGE_BYTES + 1), "over"),
        (_request() + b" ", "not canonical"),
        (_tampered({"endpoint": "https://evil.example:443"}), "not signed by"),
        (_tampered({"endpoint": "https://NL.example:9443"}), "not in the form"),
        (_tampered({"endpoint": 5}), "endpoint"),
        (_tampered({"type": "ephyto-rotation-request"}), "body.type"),
        (_tampered({"version": 2}), "only version 1"),
        (_tampered({"country": "nl"}), "country"),
        (_tampered({"created": "yesterday"}), "created"),
        (_tampered({"extra": 1}), "extra"),
        (canonical_bytes({"body": json.loads(_request())["body"], "proofs": {}}), "current_key"),
    ],
)
def test_hostile_requests_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(EndpointChangeError, match=message):
        verify_endpoint_change(data, [PUBLIC])


def test_a_request_naming_no_country_is_refused_before_verifying() -> None:
    with pytest.raises(EndpointChangeError, match="naming a country"):
        endpoint_change_country(b'{"body":{}}')


# --- the registry's rules --------------------------------------------------------------


class _Enrolment:
    """The one attribute check_change reads of an enrolment request."""

    def __init__(self, url: str | None) -> None:
        self.endpoint = None if url is None else type("E", (), {"url": url})()


def _change(endpoint: str | None, created: datetime = NOW) -> EndpointChange:
    return EndpointChange("NL", created, "k", endpoint)


def test_registry_rules() -> None:
    enrolled: Any = _Enrolment("https://nl.example:8443")
    check_change(_change("https://nl.example:9443"), enrolled, None, NOW)
    check_change(_change(None), enrolled, None, NOW)
    with pytest.raises(RegistryError, match=r"already listed as https://nl\.example:8443"):
        check_change(_change("https://nl.example:8443"), enrolled, None, NOW)
    with pytest.raises(RegistryError, match="not fresh"):
        check_change(_change(None, NOW - timedelta(days=31)), enrolled, None, NOW)
    with pytest.raises(RegistryError, match="not fresh"):
        check_change(_change(None, NOW + timedelta(hours=1)), enrolled, None, NOW)
    earlier = _change(None, NOW - timedelta(hours=1))
    with pytest.raises(RegistryError, match="a replay"):
        older = _change("https://x.example:1", NOW - timedelta(hours=2))
        check_change(older, enrolled, earlier, NOW)
    with pytest.raises(RegistryError, match="already listed as hub only"):
        check_change(_change(None), enrolled, earlier, NOW)
    assert current_endpoint(enrolled, earlier) is None
    assert current_endpoint(enrolled, None) == "https://nl.example:8443"
