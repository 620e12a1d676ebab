"""The PDF as an inspector reads it: one page for one or two items, an annex past that,
the signature block with what it certifies, names in every script extractable as written,
and a right-to-left name in a left-to-right box laid out by the bidi algorithm."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from node.certificate import model as m
from node.render.pdf import render_pdf
from tests.pdf_certificates import certificate, lists, pages, pdftotext, with_items, words

NUMBER = "CL-2026-000451"
# What must stay together on the last page, as pdftotext gives it.
CLOSING = [
    "Certifying statement",
    "This is to certify that the plants",
    "Place of issue",
    "Valparaíso (CLVAP)",
    "Name of authorized officer",
    "María José Pérez",
    "2026-12-01",
    "(Stamp of organization)",
    "(Signature)",
]


@cache
def _pdf(n_items: int) -> bytes:
    # Rendering loads the fonts: once per certificate for the whole module.
    return render_pdf(certificate(n_items), lists=lists())


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("n_items", [1, 2])
def test_one_or_two_items_fit_one_page(n_items: int, tmp_path: Path) -> None:
    (page,) = pages(_pdf(n_items), tmp_path)
    flat = _flat(page)
    for text in CLOSING:
        assert text in flat
    assert f"Phytosanitary Certificate No. {NUMBER}" in flat
    assert "Page 1 of 1" in flat
    assert "Annex" not in flat
    for n in range(1, n_items + 1):
        assert f"Fresh apples lot {n}" in flat


def test_many_items_continue_on_an_annex(tmp_path: Path) -> None:
    texts = [_flat(t) for t in pages(_pdf(12), tmp_path)]
    total = len(texts)
    assert total >= 3
    for n, text in enumerate(texts, start=1):
        assert f"Phytosanitary Certificate No. {NUMBER}" in text, n
        assert f"Page {n} of {total}" in text, n
    first, annex = texts[0], texts[1]
    shown = [n for n in range(1, 13) if f"{n}. Fresh apples lot {n}," in first]
    assert shown and shown == list(range(1, len(shown) + 1))
    assert f"Items {len(shown) + 1} to 12: see the annex" in first
    assert f"Annex to Phytosanitary Certificate No. {NUMBER}" in annex
    assert f"continued: items {len(shown) + 1} to 12" in annex
    # Every item is described once, on the first page or in the annex.
    everything = " ".join(texts)
    for n in range(1, 13):
        assert len(re.findall(rf"Fresh apples lot {n}\b", everything)) == 1, n
    # The declaration, place, date, officer, stamp and signature: together, and last.
    for text in CLOSING:
        assert text in texts[-1], text
        assert all(text not in earlier for earlier in texts[:-1]), text


def test_countries_print_as_short_names_in_the_certificate_language(tmp_path: Path) -> None:
    cert = certificate(
        1,
        language="es",
        export_country=m.Country("NL", (m.Text("Netherlands, Kingdom of the", "en"),)),
    )
    cert = replace(
        cert,
        consignment=replace(
            cert.consignment,
            consignor=m.Party(
                name=m.Text("Bloembollen Export B.V."),
                address=m.Address(line_one="Heereweg 120", city_name="Lisse", country_id="NL"),
            ),
        ),
    )
    text = _flat(pdftotext(render_pdf(cert, lists=lists()), tmp_path))
    assert "Países Bajos (NL)" in text
    assert "Heereweg 120, Lisse, Países Bajos" in text  # inside the exporter's address too
    assert "Kingdom of the" not in text
    assert "Tratamiento en frío" in text  # the treatment by its name, in Spanish
    assert "(CT)" not in text


def test_mixed_runs_keep_their_commas_and_order(tmp_path: Path) -> None:
    # Left-to-right boxes with Arabic runs in them: after a Latin run ("United Arab
    # Emirates (AE), وزارة…") and before one ("شارع الشيخ زايد, Dubai, ..."). Each comma
    # follows the run it ends, on the side that run is read from.
    cert = certificate(1, issuer="وزارة التغير المناخي والبيئة", export_country=m.Country("AE"))
    street = m.Address(line_one="شارع الشيخ زايد", city_name="Dubai", country_id="AE")
    consignor = m.Party(name=m.Text("Al Waha Flowers"), address=street)
    cert = replace(cert, consignment=replace(cert.consignment, consignor=consignor))
    pdf = render_pdf(cert, lists=lists())
    assert "United Arab Emirates (AE)," in pdftotext(pdf, tmp_path)
    found = [
        (float(x), float(y), word)
        for x, y, word in re.findall(
            r'<word xMin="([0-9.]+)" yMin="([0-9.]+)"[^>]*>([^<]+)</word>',
            pdftotext(pdf, tmp_path, "-bbox"),
        )
    ]

    def arabic_on_line_of(anchor: str) -> tuple[float, list[float]]:
        # -bbox gives glyphs as placed (visual order): look at where words are, not what.
        x0, y0 = next((x, y) for x, y, word in found if word == anchor)
        return x0, [
            x
            for x, y, word in found
            if abs(y - y0) < 5 and any("\u0600" <= ch <= "\u06ff" for ch in word)
        ]

    comma_x, after = arabic_on_line_of("(AE),")
    assert after and min(after) > comma_x
    city_x, before = arabic_on_line_of("Dubai,")
    assert before and max(before) < city_x


def test_names_in_every_script_extract_as_written(tmp_path: Path) -> None:
    names = {
        "consignee": "شركة الواحة لتجارة الزهور",
        "exporter": "上海花卉进出口有限公司",
        "officer": "Мария Иванова",
        "place": "Θεσσαλονίκη Λιμάνι",
    }
    cert = certificate(
        1,
        consignee=names["consignee"],
        consignee_language="ar",
        exporter=names["exporter"],
        officer=names["officer"],
        place=names["place"],
    )
    found = words(pdftotext(render_pdf(cert, lists=lists()), tmp_path))
    for name in names.values():
        for word in name.split():
            assert word in found, (word, sorted(found))


def test_hostile_lengths_still_end_with_the_signature(tmp_path: Path) -> None:
    long_word = "Ditylenchus" * 40  # longer than any box is wide
    cert = certificate(1, exporter="Exporter " * 300, officer="Officer " * 80)
    cert = replace(cert, notes=(m.Note("ADEDL", (m.Text("Declaration text. " * 400),)),))
    big = tuple(
        replace(it, descriptions=(m.Text(f"{long_word} {n}"),))
        for n, it in enumerate(certificate(15).consignment.items, start=1)
    )
    texts = [_flat(t) for t in pages(render_pdf(with_items(cert, big), lists=lists()), tmp_path)]
    assert len(texts) > 3
    for n, text in enumerate(texts, start=1):
        assert f"Page {n} of {len(texts)}" in text
    assert "(Signature)" in texts[-1] and "Certifying statement" in texts[-1]
    assert "(continued)" in " ".join(texts)  # the long declaration goes on over pages
