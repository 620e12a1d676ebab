"""The PDF rendering of the bundled samples: real text in every script, embedded fonts."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import unicodedata
from functools import cache
from importlib.resources import files
from pathlib import Path

import pytest

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Certificate
from node.errors import ConfigError
from node.render import fonts
from node.render.pdf import render_pdf

SAMPLES = ["phyto_nl_cn.json", "reexport_ae_ru.json"]
# Cyrillic on purpose: the sample's consignee, not Latin look-alikes.
RU_CONSIGNEE = "ООО «Цветы Москвы»"  # noqa: RUF001


def _cert(name: str) -> Certificate:
    return certificate_from_json((files("node.samples") / name).read_bytes())


@cache
def _pdf(name: str) -> bytes:
    # Rendering loads fonts (CJK is 16 MB): once per sample for the whole module.
    return render_pdf(_cert(name))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} (poppler-utils) is not installed")
    return path


def _run(tool: str, pdf: bytes, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        [_tool(tool), *args, str(path), *(["-"] if tool == "pdftotext" else [])],
        capture_output=True,
        check=True,
    )
    return out.stdout.decode("utf-8")


def _letters(text: str) -> str:
    """Text reduced to what survives extraction whatever the tool does to Arabic.

    pdftotext may give presentation forms (NFKC maps them back to letters), wraps RTL runs
    in bidi controls (category Cf) and puts spaces between glyph runs inside a word, so
    compare without format characters and whitespace.
    """
    norm = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in norm if not ch.isspace() and unicodedata.category(ch) != "Cf")


@pytest.mark.parametrize("name", SAMPLES)
def test_renders_a_pdf(name: str) -> None:
    pdf = _pdf(name)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")


@pytest.mark.parametrize("name", SAMPLES)
def test_deterministic(name: str) -> None:
    # No clock: the creation date and file ID come from the certificate itself.
    assert render_pdf(_cert(name)) == _pdf(name)


def test_chinese_is_text(tmp_path: Path) -> None:
    text = _run("pdftotext", _pdf("phyto_nl_cn.json"), tmp_path, "-enc", "UTF-8")
    assert "上海花卉进出口有限公司" in text
    assert "Tulipa gesneriana" in text
    assert "Phytosanitary Certificate" in text
    assert "I. Description of consignment" in text
    assert "III. Disinfestation and/or disinfection treatment" in text
    assert "\ufffd" not in text


def test_cyrillic_and_arabic_are_text(tmp_path: Path) -> None:
    text = _run("pdftotext", _pdf("reexport_ae_ru.json"), tmp_path, "-enc", "UTF-8")
    assert RU_CONSIGNEE in text
    assert "Phytosanitary Certificate for Re-export" in text
    assert "[X] original [ ] certified true copy" in " ".join(text.split())
    officer = _letters("أحمد المنصوري")
    flat = _letters(text)
    # Logical order is what pdftotext gives for this PDF; accept visual order too.
    assert officer in flat or officer[::-1] in flat
    assert "\ufffd" not in text


@pytest.mark.parametrize("name", SAMPLES)
def test_fonts_embedded(name: str, tmp_path: Path) -> None:
    listing = _run("pdffonts", _pdf(name), tmp_path)
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    assert rows, listing
    # Columns from the right: emb sub uni object-number generation.
    assert all(row[-5] == "yes" for row in rows), listing
    names = " ".join(row[0] for row in rows)
    assert "NotoSans" in names
    if name == "phyto_nl_cn.json":
        assert "NotoSansCJK" in names
    else:
        assert "NotoSansArabic" in names
        assert "NotoSansCJK" not in names  # the 16 MB font only when the text needs it


def test_long_certificate_breaks_pages(tmp_path: Path) -> None:
    cert = _cert("phyto_nl_cn.json")
    items = tuple(
        dataclasses.replace(item, sequence=n + 1)
        for n, item in enumerate(cert.consignment.items * 30)
    )
    long = dataclasses.replace(cert, consignment=dataclasses.replace(cert.consignment, items=items))
    pdf = render_pdf(long)
    assert pdf.startswith(b"%PDF-")
    text = _run("pdftotext", pdf, tmp_path, "-enc", "UTF-8")
    assert "Annex to Phytosanitary Certificate No. NL-2026-0001234" in text
    assert "Item 90" in text  # the last item's block, in the annex
    assert "(continued)" in text  # a box longer than a page goes on over the next
    assert text.count("\f") > 2


def test_missing_font_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "MAIN", ("no_such_font_pkg", "x.ttf", "NotoSans"))
    with pytest.raises(ConfigError, match="pip install no-such-font-pkg"):
        render_pdf(_cert("phyto_nl_cn.json"))
