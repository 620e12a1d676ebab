"""Layer 1: hostile and foreign XML is refused before anything reads it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.certificate import safe_xml
from node.certificate.findings import Area, Level
from node.certificate.validate import Validator
from node.errors import UnsafeXmlError

ROOT_OPEN = (
    b'<rsm:SPSCertificate xmlns:rsm="urn:un:unece:uncefact:data:standard:SPSCertificate:17">'
)
ROOT_CLOSE = b"</rsm:SPSCertificate>"

BILLION_LAUGHS = (
    b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
    + ROOT_OPEN
    + b"&lol9;"
    + ROOT_CLOSE
)


def _refused(
    data: bytes, fragment: str, limits: safe_xml.XmlLimits = safe_xml.DEFAULT_LIMITS
) -> str:
    with pytest.raises(UnsafeXmlError) as caught:
        safe_xml.parse(data, limits)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    return message


def test_billion_laughs_is_refused_without_expanding() -> None:
    _refused(BILLION_LAUGHS, "DTD")


def test_external_entity_to_a_local_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>'.encode()
        + ROOT_OPEN
        + b"&xxe;"
        + ROOT_CLOSE
    )
    message = _refused(data, "DTD")
    assert "TOP-SECRET" not in message


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback that records every request made to it."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "fetched">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_external_dtd_and_entity_fetches_never_happen(http_server: tuple[str, list[str]]) -> None:
    url, requests = http_server
    external_dtd = f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{url}/evil.dtd">'.encode()
    _refused(external_dtd + ROOT_OPEN + ROOT_CLOSE, "DTD")
    parameter_entity = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>'.encode()
        + ROOT_OPEN
        + ROOT_CLOSE
    )
    _refused(parameter_entity, "DTD")
    assert requests == []


def test_deep_nesting_is_refused() -> None:
    depth = 40
    data = ROOT_OPEN + b"<a>" * depth + b"</a>" * depth + ROOT_CLOSE
    _refused(data, "nests deeper than 32")


def test_oversized_document_is_refused_before_parsing() -> None:
    limits = safe_xml.XmlLimits(max_bytes=1000)
    data = ROOT_OPEN + b" " * 2000 + ROOT_CLOSE
    _refused(data, "over the limit of 1000 bytes", limits)


def test_too_many_elements_is_refused() -> None:
    limits = safe_xml.XmlLimits(max_elements=100)
    data = ROOT_OPEN + b"<a/>" * 200 + ROOT_CLOSE
    _refused(data, "more than 100 elements", limits)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"<SPSCertificate/>", "expected rsm:SPSCertificate"),
        (b'<x:SPSCertificate xmlns:x="urn:other"/>', "{urn:other}SPSCertificate"),
        (
            b'<rsm:SPSAcknowledgement xmlns:rsm="urn:un:unece:uncefact:data:standard:'
            b'SPSAcknowledgement:17"/>',
            "SPSAcknowledgement",
        ),
    ],
)
def test_wrong_root_or_namespace_is_refused(data: bytes, fragment: str) -> None:
    _refused(data, fragment)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("<rsm:SPSCertificate/>".encode("utf-16"), "UTF-16"),
        (
            b'<?xml version="1.0" encoding="ISO-8859-1"?>' + ROOT_OPEN + b"\xe9" + ROOT_CLOSE,
            "ISO-8859-1",
        ),
        (ROOT_OPEN + b"caf\xe9" + ROOT_CLOSE, "not valid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not valid UTF-8"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"this is not xml", "not well-formed"),
        (ROOT_OPEN + b"<unclosed>" + ROOT_CLOSE, "not well-formed"),
    ],
)
def test_bytes_that_are_not_utf8_xml_are_refused(data: bytes, fragment: str) -> None:
    _refused(data, fragment)


def test_validator_reports_refusal_as_one_severe_finding(validator: Validator) -> None:
    report = validator.validate(BILLION_LAUGHS)
    assert not report.valid
    assert report.certificate is None
    assert len(report.findings) == 1
    (finding,) = report.findings
    assert finding.level is Level.SEVERE
    assert finding.area is Area.SCHEMA
    assert "DTD" in finding.message


def test_a_bom_and_utf8_declaration_are_accepted(phyto_xml: bytes) -> None:
    root = safe_xml.parse(b"\xef\xbb\xbf" + phyto_xml)
    assert root.tag.endswith("SPSCertificate")
