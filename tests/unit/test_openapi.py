"""The OpenAPI description: one text in two places, and the code's limits are its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.api import params
from node.api.app import MAX_CERTIFICATE_BYTES
from node.certificate.jsonmodel import MAX_DEPTH

ROOT = Path(__file__).resolve().parents[2]
SERVED = ROOT / "node" / "api" / "openapi.yaml"


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SERVED.read_text(encoding="utf-8"))
    return spec


def test_the_documented_copy_is_the_served_one() -> None:
    assert (ROOT / "docs" / "openapi.yaml").read_bytes() == SERVED.read_bytes()


def test_the_described_limits_are_the_code_s() -> None:
    spec = _spec()
    description = spec["info"]["description"]
    assert f"{MAX_CERTIFICATE_BYTES:,}" in description
    assert f"more than {MAX_DEPTH} levels" in " ".join(description.split())
    assert str(params.MAX_ID) in description
    assert spec["components"]["parameters"]["id"]["schema"]["maximum"] == params.MAX_ID


@pytest.mark.parametrize(
    "reason",
    ["x", " x ", "", " ", "  ", "a\nb", "\t", "\x85", "\u00a0", "ok\ufffe", "\uffff", "é" * 3],
)
def test_the_reason_pattern_is_the_code_s(reason: str) -> None:
    replace = _spec()["paths"]["/certificates/{id}/replace"]
    schema = next(p for p in replace["parameters"] if p.get("name") == "reason")["schema"]
    by_spec = re.search(schema["pattern"], reason) is not None
    assert by_spec == (params._REASON.fullmatch(reason) is not None)
