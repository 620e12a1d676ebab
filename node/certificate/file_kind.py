"""What a file is when its first bytes already show it is no ePhyto: a PDF, an Office file,
an image, nothing at all.

People hand the certificate commands the PDF they printed, a scan or a Word file; the XML
checks would only say "not valid UTF-8 (byte offset 10)". Recognising the usual wrong
kinds by their magic numbers lets a command say what the file is and what to give
instead. Pure: bytes in, a name out.
"""

from __future__ import annotations

from typing import Final

# Each kind by the bytes it starts with (its "magic number"). Only kinds people mistake
# for a certificate; an XML or JSON document never starts with any of these.
_MAGIC: Final[tuple[tuple[bytes, str], ...]] = (
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive (or an Office file such as .docx, .xlsx, .odt)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc, .xls)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
)


def file_kind(data: bytes) -> str | None:
    """What `data` is if it is obviously not an ePhyto ("a PDF", "empty"); None otherwise.

    None does not mean the document is an ePhyto, only that its first bytes do not rule
    it out: the validation layers decide the rest.
    """
    if not data or data.isspace():
        return "empty"
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None
