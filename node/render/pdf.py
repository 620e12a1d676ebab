"""A certificate as a PDF in the layout of the ISPM 12 model certificate.

The boxes come from `node.certificate.ispm12`, so the PDF says exactly what `ephyto cert
show` says. A certificate that fits one page is the model certificate on one page. One
that does not keeps the first page for the header and Section I with as many items as
fit; the other items continue on an annex ("Annex to Phytosanitary Certificate No. ...")
and the certifying statement, place and date of issue, officer, stamp and signature stay
together on the last page. Every page carries the certificate number and "Page n of m".

The only outside input is the bundled font files; there is no clock: the certificate's
own issue date is the PDF creation date, so one certificate always gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fpdf import FPDF
from fpdf.errors import FPDFException

from node.certificate.ispm12 import Ispm12View, ispm12_view, item_rows, sections
from node.certificate.lifecycle import Standing
from node.certificate.model import Certificate
from node.codelists.lists import CodeLists
from node.errors import InputError
from node.render.fonts import MAIN, load_fonts
from node.render.layout import (
    MARGIN,
    PAGE_W,
    TOP,
    Bar,
    Group,
    Heading,
    Measure,
    Page,
    Piece,
    box,
    closing,
    paginate,
    pair,
    text_line,
)

_FOOTER_PT, _FOOTER_LH = 6.5, 3.0
_STAMP = (200, 40, 40)
# Rows the model certificate sets side by side, by the label of the left one.
_SIDE_BY_SIDE = frozenset({"Declared means of conveyance", "Import permit"})
# A language tag fit for the PDF's /Lang entry.
_LANG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,3}")


def render_pdf(
    cert: Certificate,
    standing: Standing | None = None,
    lists: CodeLists | None = None,
    *,
    watermark: str | None = None,
) -> bytes:
    """The certificate as an A4 PDF after the ISPM 12 model certificate; a withdrawn or
    replaced one (`standing`, from the store) is stamped so across every page, and so is
    `watermark` (the console's "DRAFT" on a certificate not issued yet) when given.

    Codes are named from `lists` (the bundled code lists by default). InputError when the
    certificate cannot be drawn (a character no bundled font has); ConfigError when a
    font package is missing.
    """
    view = ispm12_view(cert, lists)
    pdf = _Document(view, watermark or (None if standing is None else standing.watermark))
    pdf.set_creation_date(cert.issue_datetime)
    pdf.set_title(f"{view.title} {view.number}")
    pdf.set_subject("ISPM 12 phytosanitary certificate")
    pdf.set_creator("ephyto")
    if _LANG.fullmatch(view.language):
        pdf.set_lang(view.language)
    load_fonts(pdf, [*_texts(view), pdf.liability, pdf.watermark or ""])
    try:
        # fpdf2 measures text only on a page; the footer is drawn when the page is done,
        # by which time the number of pages is known.
        pdf.add_page()
        measure = Measure(pdf)
        pdf.footer_lines = measure.lines(PAGE_W, _FOOTER_PT, pdf.liability)
        pages = _plan(measure, pdf.body, view)
        pdf.pages_total = len(pages)
        for n, page in enumerate(pages):
            if n:
                pdf.add_page()
            for y, piece in page:
                piece.draw(pdf, y)
        return bytes(pdf.output())
    except FPDFException as e:
        raise InputError(f"cannot render certificate {cert.number} as PDF: {e}") from e


class _Document(FPDF):
    """FPDF with the model certificate's footer, and a superseded certificate's stamp, on
    every page; pages are laid out beforehand, so fpdf2 never breaks one on its own."""

    def __init__(self, view: Ispm12View, watermark: str | None = None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.view = view
        self.watermark = watermark
        org = (
            view.organization_name or f"the plant protection organization of {view.organization_of}"
        )
        self.liability = (
            "No financial liability with respect to this certificate shall attach "
            f"to {org} or to any of its officers or representatives."
        )
        self.footer_lines: tuple[str, ...] = ()
        self.pages_total = 0
        self.set_margins(MARGIN, TOP, MARGIN)
        self.set_auto_page_break(False)

    @property
    def body(self) -> float:
        """The height pages have for content, between the top margin and the footer."""
        return self.h - TOP - self.footer_height - 3.0

    @property
    def footer_height(self) -> float:
        """The liability note and the number line, from the bottom edge."""
        return len(self.footer_lines) * _FOOTER_LH + 4.0 + 6.0

    def header(self) -> None:
        """A superseded certificate's stamp, across the page and under its content."""
        if not self.watermark:
            return
        text = self.watermark
        # The core font writes plain text into the page, which any reader can search;
        # a number in another script needs the embedded font.
        family, style = ("Helvetica", "B") if text.isascii() else (MAIN[2], "")
        with self.local_context(), self.rotation(35, self.w / 2, self.h / 2):
            self.set_font(family, style, 44 if len(text) <= 24 else 28)
            self.set_text_color(*_STAMP)
            width = self.get_string_width(text)
            self.text(self.w / 2 - width / 2, self.h / 2, text)
        with self.local_context():
            self.set_font(family, style, 10)
            self.set_text_color(*_STAMP)
            self.set_xy(MARGIN, 4.0)
            self.cell(self.epw, 6.0, text, align="C")

    def footer(self) -> None:
        """ISPM 12's liability footnote, the certificate number and the page."""
        y = self.h - self.footer_height + 2.0
        with self.local_context(text_color=90):
            for line in self.footer_lines:
                self.set_xy(MARGIN, y)
                text_line(self, PAGE_W, _FOOTER_LH, _FOOTER_PT, line)
                y += _FOOTER_LH
            self.set_xy(MARGIN, y + 0.5)
            text_line(self, PAGE_W, 4, 7, f"{self.view.title} No. {self.view.number}")
            self.set_xy(MARGIN, y + 0.5)
            text_line(self, PAGE_W, 4, 7, f"Page {self.page_no()} of {self.pages_total}", "R")


# --- the plan --------------------------------------------------------------------------


def _plan(m: Measure, body: float, view: Ispm12View) -> list[Page]:
    """One page when everything fits; else the first page, the annex, and the closing."""
    parts = dict(sections(view))
    declarations = _declarations(m, view, parts)
    one_page = [
        *_face(m, view, len(view.items)),
        *_section(m, "Certifying statement", parts["Certifying statement"]),
        *declarations,
        _authorization(m, parts),
    ]
    if sum(g.height for g in one_page) <= body:
        return paginate(one_page, body)
    shown = _items_on_first_page(m, body, view)
    return paginate(
        [
            *_face(m, view, shown),
            *_annex(m, view, shown),
            *declarations,
            _closing_with_statement(m, parts),
        ],
        body,
    )


def _items_on_first_page(m: Measure, body: float, view: Ispm12View) -> int:
    """The most items Section I can give on the first page (at least one)."""
    lo, hi = 1, len(view.items)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(g.height for g in _face(m, view, mid)) <= body:
            lo = mid
        else:
            hi = mid - 1
    return min(lo, len(view.items))


def _face(m: Measure, view: Ispm12View, shown: int) -> list[Group]:
    """The title, the header boxes and Section I with the first `shown` items."""
    parts = sections(view, shown)
    title: list[Piece] = [
        Heading(((f"No. {view.number}", 10, "R", True), (view.title, 15, "C", True))),
    ]
    if view.status != "Issued":
        # A withdrawn or replaced certificate must not pass for a valid one at a glance.
        title.append(Heading(((view.status.upper(), 11, "C", True),), color=(180, 0, 0)))
    header = [box(m, label, value) for label, value in parts[0][1] if label != "No."]
    return [Group((*title, *header)), *_section(m, *parts[1])]


def _annex(m: Measure, view: Ispm12View, shown: int) -> list[Group]:
    """The items the first page leaves out, one block each, from a page of their own."""
    rest = view.items[shown:]
    if not rest:
        return []
    name = f"Annex to {view.title} No. {view.number}"
    first, last = rest[0].sequence, rest[-1].sequence
    which = f"item {first}" if len(rest) == 1 else f"items {first} to {last}"
    heading = Heading(
        (
            (name, 12, "C", True),
            (f"I. Description of consignment, continued: {which}", 9, "C", False),
        )
    )
    running = Heading(((f"{name} (continued)", 10, "C", True),))
    groups = []
    for n, item in enumerate(rest):
        block: list[Piece] = [Bar(f"Item {item.sequence}")]
        block += [box(m, label, value) for label, value in item_rows(item)]
        opening = (heading,) if n == 0 else ()
        groups.append(Group((*opening, *block), new_page=n == 0, running=running))
    return groups


def _declarations(
    m: Measure, view: Ispm12View, parts: dict[str, list[tuple[str, str]]]
) -> list[Group]:
    """Sections II and III, each treatment's six boxes as three side-by-side pairs."""
    groups = _section(m, "II. Additional declaration", parts["II. Additional declaration"])
    title = "III. Disinfestation and/or disinfection treatment"
    rows = parts[title]
    if not view.treatments:
        return [*groups, *_section(m, title, rows)]
    units = []
    for i in range(0, len(rows), 6):
        r = rows[i : i + 6]
        units.append([*pair(m, r[0], r[1]), *pair(m, r[2], r[3]), *pair(m, r[4], r[5])])
    return [*groups, *_titled(title, units)]


def _authorization(m: Measure, parts: dict[str, list[tuple[str, str]]]) -> Group:
    return Group((Bar("Authorization"), *closing(m, parts["Authorization"])))


def _closing_with_statement(m: Measure, parts: dict[str, list[tuple[str, str]]]) -> Group:
    """The certifying statement with the authorization, stamp and signature it belongs to."""
    (statement,) = _section(m, "Certifying statement", parts["Certifying statement"])
    return Group((*statement.pieces, *_authorization(m, parts).pieces))


def _section(m: Measure, title: str, rows: Sequence[tuple[str, str]]) -> list[Group]:
    """A section's boxes; rows the model sets side by side are paired."""
    units: list[list[Piece]] = []
    i = 0
    while i < len(rows):
        if rows[i][0] in _SIDE_BY_SIDE and i + 1 < len(rows):
            units.append([*pair(m, rows[i], rows[i + 1])])
            i += 2
        else:
            units.append([box(m, *rows[i])])
            i += 1
    return _titled(title, units)


def _titled(title: str, units: Sequence[Sequence[Piece]]) -> list[Group]:
    """A title bar kept on the page of the section's first boxes."""
    if not units:
        return [Group((Bar(title),))]
    first, *rest = units
    return [Group((Bar(title), *first)), *(Group(tuple(unit)) for unit in rest)]


def _texts(view: Ispm12View) -> list[str]:
    """Every text the PDF may draw, for choosing the fonts."""
    out = [view.title, view.number, view.status]
    for title, rows in sections(view):
        out.append(title)
        for label, value in rows:
            out += [label, value]
    return out
