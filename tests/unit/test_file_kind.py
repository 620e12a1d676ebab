"""Recognising files that are plainly no ePhyto (a PDF, an Office file, an image, nothing)."""

from __future__ import annotations

import io
import zipfile

import pytest

from node.certificate.file_kind import file_kind
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.samples import SAMPLES, sample_model_bytes


def _docx_like() -> bytes:
    """A real ZIP archive laid out as Office files are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF"),
        (b"%PDF-", "a PDF"),
        (_docx_like(), "a ZIP archive (or an Office file such as .docx, .xlsx, .odt)"),
        (b"PK\x05\x06" + bytes(18), "an empty ZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8), "an old Office file (.doc, .xls)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"),
        (b"GIF89a\x01\x00", "a GIF image"),
        (b"GIF87a\x01\x00", "a GIF image"),
        (b"II*\x00\x08\x00\x00\x00", "a TIFF image"),
        (b"MM\x00*\x00\x00\x00\x08", "a TIFF image"),
        (b"\x1f\x8b\x08\x00", "a gzip archive"),
        (b"", "empty"),
        (b" \r\n\t ", "empty"),
    ],
)
def test_wrong_kinds_are_named(data: bytes, kind: str) -> None:
    assert file_kind(data) == kind


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_samples_as_xml_and_json_are_not_ruled_out(name: str) -> None:
    model = sample_model_bytes(name)
    assert file_kind(model) is None
    assert file_kind(to_xml_bytes(certificate_from_json(model))) is None


@pytest.mark.parametrize(
    "data",
    [
        b"<?xml version='1.0'?><x/>",
        b"\xef\xbb\xbf<x/>",  # UTF-8 byte order mark
        "<x/>".encode("utf-16"),  # refused later, by the XML layer, with its own reason
        b"<x>%PDF- is a magic number, but not at the start</x>",
        b"  %PDF-1.4",  # leading blanks: not a PDF header, left to the XML layer
        b"\x00\x01 not xml",
        b"P",  # shorter than any magic number
        b"PK",
        b"\xff",
        b"{}",
    ],
)
def test_anything_else_is_left_to_validation(data: bytes) -> None:
    assert file_kind(data) is None
