"""Shared fixtures: the bundled samples, and ../shared/conformance where present."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes
from node.cli.cert import sample_model_bytes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"


def shared_dir() -> Path:
    """../shared/conformance beside the checkout, or skip saying why."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the third-party conformance files are not here")
    return SHARED


def shared_samples() -> list[Path]:
    return sorted((shared_dir() / "samples").glob("*.xml"))


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator.default()


@pytest.fixture(scope="session")
def phyto() -> Certificate:
    return certificate_from_json(sample_model_bytes("phyto"))


@pytest.fixture(scope="session")
def reexport() -> Certificate:
    return certificate_from_json(sample_model_bytes("reexport"))


@pytest.fixture(scope="session")
def phyto_xml(phyto: Certificate) -> bytes:
    return to_xml_bytes(phyto)
