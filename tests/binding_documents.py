"""ePhyto documents whose number, status and countries a test chooses, from the samples.

The header/document binding tests (issue 11) need documents that are valid in every
other respect, so that only the binding decides whether they are accepted.
"""

from __future__ import annotations

from dataclasses import replace

from node.certificate.model import Certificate, Country
from node.certificate.xml_build import to_xml_bytes


def certificate(
    base: Certificate, *, number: str, exporter: str, importer: str, status: str = "70"
) -> Certificate:
    """`base` (the 851 or the 657 sample) with this number, status and route."""
    consignment = replace(
        base.consignment, export_country=Country(exporter), import_country=Country(importer)
    )
    return replace(base, number=number, status_code=status, consignment=consignment)


def document(
    base: Certificate, *, number: str, exporter: str, importer: str, status: str = "70"
) -> bytes:
    """The XML of `certificate(...)`."""
    return to_xml_bytes(
        certificate(base, number=number, exporter=exporter, importer=importer, status=status)
    )
