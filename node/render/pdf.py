"""A certificate as a PDF in the layout of the ISPM 12 model certificate.

The boxes come from `node.certificate.ispm12`, so the PDF says exactly what `ephyto cert
show` says. The only outside input is the bundled font files; there is no clock: the
certificate's own issue date is the PDF creation date, so one certificate always gives
the same bytes.
"""

from __future__ import annotations

import importlib.resources
import unicodedata
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TextMode, XPos, YPos
from fpdf.errors import FPDFException
from fpdf.fonts import TTFFont

from node.certificate.ispm12 import Ispm12View, ispm12_view, sections
from node.certificate.lifecycle import Standing
from node.certificate.model import Certificate
from node.errors import ConfigError, InputError

# (font package, path inside it, family name in the PDF)
_MAIN = ("fontpkg_noto_sans", "files/NotoSans[wdth,wght].ttf", "NotoSans")
_ARABIC = ("fontpkg_noto_sans_arabic", "files/NotoSansArabic[wdth,wght].ttf", "NotoSansArabic")
_CJK = ("cvttf_NotoSansCJK_Regular", "NotoSansCJKtc-Regular.otf", "NotoSansCJK")

# A4 layout, in mm.
_MARGIN = 15.0
_LABEL_W = 58.0
_PAD = 1.4
_LABEL_PT, _LABEL_LH = 7.5, 3.5
_VALUE_PT, _VALUE_LH = 9.0, 4.3
_FOOTER_H = 14.0
_SIGNATURE_H = 30.0
_GREY = (236, 236, 236)
_DARK = (48, 72, 48)
_STAMP = (200, 40, 40)

# Unicode blocks the Arabic fallback covers; anything else the main font lacks goes to CJK.
_ARABIC_BLOCKS = (
    (0x0600, 0x06FF),
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
)


def render_pdf(cert: Certificate, standing: Standing | None = None) -> bytes:
    """The certificate as an A4 PDF after the ISPM 12 model certificate; a withdrawn or
    replaced one (`standing`, from the store) is stamped so across every page."""
    view = ispm12_view(cert)
    parts = sections(view)
    pdf = _Document(view, None if standing is None else standing.watermark)
    pdf.set_creation_date(cert.issue_datetime)
    pdf.set_title(f"{view.title} {view.number}")
    pdf.set_subject("ISPM 12 phytosanitary certificate")
    pdf.set_creator("ephyto")
    _load_fonts(pdf, [*_texts(view, parts), pdf.watermark or ""])
    try:
        pdf.add_page()
        _header(pdf, view)
        for title, rows in parts[1:]:
            _section(pdf, title)
            for label, value in rows:
                _row(pdf, label, value)
        _signature(pdf)
        return bytes(pdf.output())
    except FPDFException as e:
        raise InputError(f"cannot render certificate {cert.number} as PDF: {e}") from e


class _Document(FPDF):
    """FPDF with the model certificate's footer on every page."""

    def __init__(self, view: Ispm12View, watermark: str | None = None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.view = view
        self.watermark = watermark
        self.set_margins(_MARGIN, 12.0, _MARGIN)
        self.set_auto_page_break(True, margin=_FOOTER_H + 4)

    def header(self) -> None:
        """A superseded certificate's stamp, across the page and under its content."""
        if not self.watermark:
            return
        text = self.watermark
        # The core font writes plain text into the page, which any reader can search;
        # a number in another script needs the embedded font.
        family, style = ("Helvetica", "B") if text.isascii() else (_MAIN[2], "")
        with self.local_context(), self.rotation(35, self.w / 2, self.h / 2):
            self.set_font(family, style, 44 if len(text) <= 24 else 28)
            self.set_text_color(*_STAMP)
            width = self.get_string_width(text)
            self.text(self.w / 2 - width / 2, self.h / 2, text)
        with self.local_context():
            self.set_font(family, style, 10)
            self.set_text_color(*_STAMP)
            self.set_xy(_MARGIN, 4.0)
            self.cell(self.epw, 6.0, text, align="C")
        self.set_xy(_MARGIN, self.t_margin)

    def footer(self) -> None:
        """ISPM 12's liability footnote, the certificate number and the page."""
        self.set_y(-_FOOTER_H - 2)
        org = self.view.organization_of or "the issuing organization"
        with self.local_context(text_color=90):
            # In its own graphics state for the same reason as `_line`.
            with self.local_context():
                self.set_font(_MAIN[2], "", 6.5)
                self.multi_cell(
                    0,
                    3.0,
                    "No financial liability with respect to this certificate shall attach "
                    f"to {org} or to any of its officers or representatives.",
                    align="L",
                    new_x=XPos.LMARGIN,
                    new_y=YPos.NEXT,
                )
            y = self.get_y()
            _line(self, self.epw, 4, 6.5, f"{self.view.title} No. {self.view.number}")
            self.set_xy(_MARGIN, y)
            _line(self, self.epw, 4, 6.5, f"Page {self.page_no()}", align="R")


# --- fonts -----------------------------------------------------------------------------


def _font_path(package: str, name: str) -> Path:
    try:
        path = Path(str(importlib.resources.files(package) / name))
    except ModuleNotFoundError:
        dist = package.replace("_", "-")
        raise ConfigError(f"font package {package} is missing: pip install {dist}") from None
    if not path.is_file():
        raise ConfigError(f"font file {name} is missing from package {package}: reinstall it")
    return path


def _load_fonts(pdf: FPDF, texts: Iterable[str]) -> None:
    """The main font always; the Arabic and CJK fallbacks only when the text needs them.

    The variable fonts are used at their default instance (regular): instancing a bold
    weight takes seconds, so headings are emboldened by stroking instead.
    """
    pdf.add_font(_MAIN[2], "", _font_path(_MAIN[0], _MAIN[1]))
    main = _cmap(pdf, _MAIN[2])
    missing = {
        ch
        for text in texts
        for ch in text
        if ord(ch) not in main and unicodedata.category(ch)[0] not in "CZ"
    }
    arabic = {ch for ch in missing if any(lo <= ord(ch) <= hi for lo, hi in _ARABIC_BLOCKS)}
    fallbacks = []
    if arabic:
        pdf.add_font(_ARABIC[2], "", _font_path(_ARABIC[0], _ARABIC[1]))
        fallbacks.append(_ARABIC[2])
        missing -= {ch for ch in arabic if ord(ch) in _cmap(pdf, _ARABIC[2])}
    if missing:
        pdf.add_font(_CJK[2], "", _font_path(_CJK[0], _CJK[1]))
        fallbacks.append(_CJK[2])
        missing -= {ch for ch in missing if ord(ch) in _cmap(pdf, _CJK[2])}
    if missing:
        # fpdf2 would silently drop these: a certificate must not lose text unnoticed.
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in sorted(missing))
        raise InputError(f"no bundled font can show these characters: {shown}")
    if fallbacks:
        # exact_match=False lets the fallbacks (regular only) serve emboldened text too.
        pdf.set_fallback_fonts(fallbacks, exact_match=False)
    # Shaping joins Arabic letters and lays Arabic out right to left.
    pdf.set_text_shaping(True)


def _cmap(pdf: FPDF, family: str) -> set[int]:
    """The code points a loaded font has glyphs for."""
    font = pdf.fonts[family.lower()]
    return set(font.cmap) if isinstance(font, TTFFont) else set()


def _texts(view: Ispm12View, parts: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    out = [view.title, view.number, view.organization_of]
    for title, rows in parts:
        out.append(title)
        for label, value in rows:
            out += [label, value]
    return out


# --- layout ----------------------------------------------------------------------------


def _bold(pdf: FPDF, stroke: int | tuple[int, int, int] = 0) -> AbstractContextManager[None]:
    """Embolden by stroking the glyph outlines (no bold instance of the variable font).

    A local context, because fpdf2 does not reset the PDF's text mode on its own when
    text_mode is set back to FILL: plain text after a heading would stay stroked.
    """
    color = stroke if isinstance(stroke, tuple) else (stroke, stroke, stroke)
    return pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=0.18, draw_color=color)


def _header(pdf: FPDF, view: Ispm12View) -> None:
    with _bold(pdf):
        pdf.set_font(_MAIN[2], "", 10)
        pdf.cell(0, 6, f"No. {view.number}", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_MAIN[2], "", 16)
        pdf.cell(0, 9, view.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if view.status != "Issued":
        # A withdrawn or replaced certificate must not pass for a valid one at a glance.
        red = (180, 0, 0)
        with _bold(pdf, red):
            pdf.set_font(_MAIN[2], "", 11)
            pdf.set_text_color(*red)
            pdf.cell(0, 6, view.status.upper(), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0)
    pdf.ln(2)
    for label, value in sections(view)[0][1]:
        if label != "No.":
            _row(pdf, label, value)
    pdf.ln(1)


def _section(pdf: FPDF, title: str) -> None:
    """A section title bar, kept on the page of its first row."""
    if pdf.get_y() + 7 + 12 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(2)
    pdf.set_fill_color(*_DARK)
    with _bold(pdf, 255):
        pdf.set_text_color(255)
        pdf.set_font(_MAIN[2], "", 9.5)
        pdf.cell(0, 6, f" {title}", fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0)


def _lines(pdf: FPDF, width: float, size: float, height: float, text: str) -> list[str]:
    pdf.set_font(_MAIN[2], "", size)
    lines = pdf.multi_cell(width, height, text, dry_run=True, output="LINES", align="L")
    assert isinstance(lines, list)
    return [str(line) for line in lines] or [""]


def _row(pdf: FPDF, label: str, value: str) -> None:
    """One bordered box: grey label cell and value cell; a value may go on over pages."""
    full = not label
    label_w = 0.0 if full else _LABEL_W
    value_w = pdf.epw - label_w
    labels = [] if full else _lines(pdf, label_w - 2 * _PAD, _LABEL_PT, _LABEL_LH, label)
    values = _lines(pdf, value_w - 2 * _PAD, _VALUE_PT, _VALUE_LH, value or "—")
    body = pdf.page_break_trigger - pdf.t_margin

    def height(n_labels: int, n_values: int) -> float:
        return max(n_labels * _LABEL_LH, n_values * _VALUE_LH) + 2 * _PAD

    # A box that fits on a page is not split: it starts a new page instead.
    needed = height(len(labels), len(values))
    at_top = pdf.get_y() <= pdf.t_margin + 0.01
    if pdf.get_y() + needed > pdf.page_break_trigger and not at_top and needed <= body:
        pdf.add_page()
    while True:
        space = pdf.page_break_trigger - pdf.get_y()
        if height(len(labels), len(values)) <= space:
            _box(pdf, labels, values, label_w, value_w)
            return
        # Longer than the rest of the page: as many lines as fit, the rest on the next.
        fit = max(1, int((space - 2 * _PAD) // _VALUE_LH))
        _box(pdf, labels[: max(1, fit)], values[:fit], label_w, value_w)
        values = values[fit:]
        if not full:
            labels = _lines(pdf, label_w - 2 * _PAD, _LABEL_PT, _LABEL_LH, f"{label} (continued)")
        pdf.add_page()


def _line(pdf: FPDF, w: float, h: float, size: float, text: str, align: str = "L") -> None:
    """One line of text in its own graphics state.

    fpdf2 2.8 switches to a fallback font (Arabic, CJK) inside the text object but keeps
    believing the main font is still selected on the page, so the next line would be
    drawn with the fallback font's metrics; a local context restores the font after it.
    """
    with pdf.local_context():
        pdf.set_font(_MAIN[2], "", size)
        pdf.cell(w, h, text, align=align)


def _box(pdf: FPDF, labels: list[str], values: list[str], label_w: float, value_w: float) -> None:
    x, y = pdf.l_margin, pdf.get_y()
    h = max(len(labels) * _LABEL_LH, len(values) * _VALUE_LH) + 2 * _PAD
    pdf.set_line_width(0.2)
    if label_w:
        pdf.set_fill_color(*_GREY)
        pdf.rect(x, y, label_w, h, style="DF")
        pdf.set_text_color(60)
        for i, line in enumerate(labels):
            pdf.set_xy(x + _PAD, y + _PAD + i * _LABEL_LH)
            _line(pdf, label_w - 2 * _PAD, _LABEL_LH, _LABEL_PT, line)
        pdf.set_text_color(0)
    pdf.rect(x + label_w, y, value_w, h)
    for i, line in enumerate(values):
        pdf.set_xy(x + label_w + _PAD, y + _PAD + i * _VALUE_LH)
        _line(pdf, value_w - 2 * _PAD, _VALUE_LH, _VALUE_PT, line)
    pdf.set_xy(x, y + h)


def _signature(pdf: FPDF) -> None:
    """Room for the organization's stamp and the authorized officer's signature."""
    if pdf.get_y() + _SIGNATURE_H > pdf.page_break_trigger:
        pdf.add_page()
    x, y, half = pdf.l_margin, pdf.get_y(), pdf.epw / 2
    pdf.set_line_width(0.2)
    pdf.rect(x, y, half, _SIGNATURE_H)
    pdf.rect(x + half, y, half, _SIGNATURE_H)
    pdf.set_font(_MAIN[2], "", _LABEL_PT)
    pdf.set_text_color(60)
    for dx, caption in ((0.0, "(Stamp of organization)"), (half, "(Signature)")):
        pdf.set_xy(x + dx + _PAD, y + _SIGNATURE_H - _LABEL_LH - _PAD)
        pdf.cell(half - 2 * _PAD, _LABEL_LH, caption, align="C")
    pdf.set_text_color(0)
    pdf.set_xy(x, y + _SIGNATURE_H)
