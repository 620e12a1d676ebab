"""Canonical JSON and identifiers: fixed vectors another implementation can check."""

from __future__ import annotations

import pytest

from node.crypto.canonical import CanonicalJsonError, canonical_bytes, is_canonical
from node.crypto.ids import key_id


def test_canonical_bytes_vector() -> None:
    value = {"b": [1, True, None], "a": 'é\n"x"', "c": {"z": 0, "y": -7}}
    assert (
        canonical_bytes(value) == b'{"a":"\xc3\xa9\\n\\"x\\"","b":[1,true,null],"c":{"y":-7,"z":0}}'
    )
    assert is_canonical(canonical_bytes(value))
    assert not is_canonical(b'{"b":1, "a":2}')
    assert not is_canonical(b"not json")


@pytest.mark.parametrize("value", [1.5, {"a": float("nan")}, {1: "x"}, {"a": b"bytes"}])
def test_canonical_refuses_what_it_cannot_hold(value: object) -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_bytes(value)


def test_key_id_vector() -> None:
    # SHA-256 of 32 zero bytes, first 16 bytes.
    assert key_id(bytes(32)) == "66687aadf862bd776c8fc18b8e9f8e20"
