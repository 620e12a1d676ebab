"""The pieces a certificate page is made of, measured before anything is drawn, and the
pagination that places them.

Measuring first is what lets the renderer decide the layout as a whole: whether the
certificate fits one page, how many items the first page holds before the annex takes
over, and that the signature block is never cut off from what it certifies. Each piece
knows its height and how to draw itself at a given height on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from fpdf import FPDF
from fpdf.enums import TextMode

from node.render.fonts import MAIN

# A4, in mm.
MARGIN = 15.0
TOP = 12.0
PAGE_W = 210.0 - 2 * MARGIN
PAD = 0.9
LABEL_PT, LABEL_LH = 7.0, 3.2
VALUE_PT, VALUE_LH = 8.5, 3.75
_LABEL_W = 52.0
_BAR_H, _BAR_GAP = 5.5, 1.8
_STAMP_H = 22.0
_CONTINUED = "(continued)"
_GREY = (236, 236, 236)
_DARK = (48, 72, 48)


class Piece(Protocol):
    """Something drawn on a page: a box, a title bar, a heading."""

    @property
    def height(self) -> float:
        """Its height in mm."""
        ...

    def draw(self, pdf: FPDF, y: float) -> None:
        """Draw it with its top at `y`."""
        ...


@dataclass(frozen=True, slots=True)
class Group:
    """Pieces kept on one page when they fit on one.

    `new_page` starts the group on a fresh page; `running` is drawn at the top of any
    further page the group starts or continues on (an annex's "continued" heading).
    """

    pieces: tuple[Piece, ...]
    new_page: bool = False
    running: Piece | None = None

    @property
    def height(self) -> float:
        """The height of all its pieces."""
        return sum(p.height for p in self.pieces)


Page = list[tuple[float, Piece]]


def paginate(groups: Sequence[Group], body: float) -> list[Page]:
    """Place the groups on pages `body` mm tall (from TOP): a group that does not fit in
    what is left of a page starts the next one; a box taller than a page is split."""
    pages: list[Page] = [[]]
    y = TOP
    bottom = TOP + body

    def new_page(running: Piece | None) -> None:
        nonlocal y
        pages.append([])
        y = TOP
        if running is not None:
            pages[-1].append((y, running))
            y += running.height

    for group in groups:
        at_top = not pages[-1]
        if group.new_page and not at_top:
            new_page(None)  # the group opens with its own heading
        elif y + group.height > bottom and not at_top and group.height <= body:
            new_page(group.running)
        for piece in group.pieces:
            while y + piece.height > bottom:
                rest_of_page = bottom - y
                split = piece.split(rest_of_page) if isinstance(piece, Box) else None
                if split is not None:
                    head, piece = split
                    pages[-1].append((y, head))
                elif y == TOP or (pages[-1] and pages[-1][-1][1] is group.running):
                    break  # taller than a page and not splittable: it overflows, once
                new_page(group.running)
            pages[-1].append((y, piece))
            y += piece.height
    return [page for page in pages if page]


# --- measuring -------------------------------------------------------------------------


class Measure:
    """Breaks text into the lines it takes in a column, as fpdf2 draws it.

    Each paragraph's lines are kept: choosing how many items the first page holds
    measures the same item texts several times, and fpdf2's line breaking, glyph by
    glyph with shaping, is most of the time a long certificate takes.
    """

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf
        self._known: dict[tuple[float, float, str], tuple[str, ...]] = {}

    def lines(self, width: float, size: float, text: str) -> tuple[str, ...]:
        """`text` broken into the lines it takes in a column `width` mm wide."""
        out: list[str] = []
        for paragraph in text.split("\n"):
            key = (width, size, paragraph)
            if key not in self._known:
                self._known[key] = self._break(width, size, paragraph)
            out += self._known[key]
        return tuple(out)

    def _break(self, width: float, size: float, paragraph: str) -> tuple[str, ...]:
        pdf = self.pdf
        pdf.set_font(MAIN[2], "", size)
        # Most paragraphs fit on one line: one width measure instead of a line breaking.
        if pdf.get_string_width(paragraph) < width - 2 * pdf.c_margin - 0.01:
            return (paragraph,)
        broken = pdf.multi_cell(width, 1, paragraph, dry_run=True, output="LINES", align="L")
        assert isinstance(broken, list)
        return tuple(str(line) for line in broken) or ("",)


@dataclass(frozen=True, slots=True)
class Cell:
    """One label and value of a box, broken into lines for their columns."""

    label: tuple[str, ...]
    value: tuple[str, ...]
    label_w: float
    value_w: float

    @property
    def height(self) -> float:
        """The height of the taller column, with padding."""
        return max(len(self.label) * LABEL_LH, len(self.value) * VALUE_LH) + 2 * PAD

    @property
    def width(self) -> float:
        """Label and value column together."""
        return self.label_w + self.value_w


def cell(m: Measure, label: str, value: str, width: float, label_w: float) -> Cell:
    """A cell `width` mm wide; no label column when `label` is empty."""
    label_w = label_w if label else 0.0
    value_w = width - label_w
    return Cell(
        label=m.lines(label_w - 2 * PAD, LABEL_PT, label) if label else (),
        value=m.lines(value_w - 2 * PAD, VALUE_PT, value or "—"),
        label_w=label_w,
        value_w=value_w,
    )


# --- pieces ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Box:
    """A row of bordered cells: one across the page, or two side by side."""

    cells: tuple[Cell, ...]
    height: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", max(c.height for c in self.cells))

    def draw(self, pdf: FPDF, y: float) -> None:
        x = MARGIN
        for c in self.cells:
            _draw_cell(pdf, c, x, y, self.height)
            x += c.width

    def split(self, space: float) -> tuple[Box, Box] | None:
        """The part of a one-cell box that fits in `space` and the rest, labelled as
        continued; None when it is two cells, or when no value line fits or all do."""
        if len(self.cells) != 1:
            return None
        (c,) = self.cells
        fit = int((space - 2 * PAD) // VALUE_LH)
        if fit < 1 or fit >= len(c.value) or len(c.label) * LABEL_LH + 2 * PAD > space:
            return None
        head = Cell(c.label, c.value[:fit], c.label_w, c.value_w)
        # The rest says on the next page which box it goes on (once, however many pages).
        label = c.label
        if label and label[-1] != _CONTINUED:
            label = (*label, _CONTINUED)
        rest = Cell(label, c.value[fit:], c.label_w, c.value_w)
        return Box((head,)), Box((rest,))


def box(m: Measure, label: str, value: str) -> Box:
    """One box across the page."""
    return Box((cell(m, label, value, PAGE_W, _LABEL_W),))


def pair(m: Measure, left: tuple[str, str], right: tuple[str, str]) -> list[Box]:
    """Two short boxes side by side, as the model certificate sets them; two boxes across
    the page when either is long (a box side by side cannot go on over a page)."""
    half = PAGE_W / 2
    cells = (cell(m, *left, half, 30.0), cell(m, *right, half, 30.0))
    if max(c.height for c in cells) > 6 * VALUE_LH + 2 * PAD:
        return [box(m, *left), box(m, *right)]
    return [Box(cells)]


@dataclass(frozen=True, slots=True)
class Bar:
    """A section's title bar."""

    title: str
    height: float = _BAR_GAP + _BAR_H

    def draw(self, pdf: FPDF, y: float) -> None:
        with pdf.local_context(), bold(pdf, 255):
            pdf.set_fill_color(*_DARK)
            pdf.set_text_color(255)
            pdf.set_xy(MARGIN, y + _BAR_GAP)
            pdf.set_font(MAIN[2], "", 9)
            pdf.cell(PAGE_W, _BAR_H, f" {self.title}", fill=True)


@dataclass(frozen=True, slots=True)
class Heading:
    """Lines of a heading: (text, size, align, emboldened), each `size` * 0.5 mm tall."""

    rows: tuple[tuple[str, float, str, bool], ...]
    color: tuple[int, int, int] = (0, 0, 0)
    height: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", sum(size * 0.5 for _, size, _, _ in self.rows) + 1)

    def draw(self, pdf: FPDF, y: float) -> None:
        for text, size, align, strong in self.rows:
            with pdf.local_context():
                pdf.set_text_color(*self.color)
                pdf.set_xy(MARGIN, y)
                pdf.set_font(MAIN[2], "", size)
                if strong:
                    with bold(pdf, self.color):
                        pdf.cell(PAGE_W, size * 0.5, text, align=align)
                else:
                    pdf.cell(PAGE_W, size * 0.5, text, align=align)
            y += size * 0.5


@dataclass(frozen=True, slots=True)
class Closing:
    """Place of issue, officer and date beside the stamp and signature boxes, as the
    model certificate ends."""

    cells: tuple[Cell, ...]
    height: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "height", max(sum(c.height for c in self.cells), _STAMP_H))

    def draw(self, pdf: FPDF, y: float) -> None:
        rows_h = sum(c.height for c in self.cells)
        top = y
        for i, c in enumerate(self.cells):
            # The last row takes up what the stamp box is taller than the rows.
            h = c.height + (self.height - rows_h if i == len(self.cells) - 1 else 0)
            _draw_cell(pdf, c, MARGIN, y, h)
            y += h
        left = self.cells[0].width if self.cells else 0.0
        x = MARGIN + left
        half = (PAGE_W - left) / 2
        with pdf.local_context():
            pdf.set_line_width(0.2)
            pdf.set_text_color(60)
            for dx, caption in ((0.0, "(Stamp of organization)"), (half, "(Signature)")):
                pdf.rect(x + dx, top, half, self.height)
                pdf.set_xy(x + dx + PAD, top + self.height - LABEL_LH - PAD)
                pdf.set_font(MAIN[2], "", LABEL_PT)
                pdf.cell(half - 2 * PAD, LABEL_LH, caption, align="C")


def closing(m: Measure, rows: Sequence[tuple[str, str]]) -> list[Piece]:
    """The authorization rows beside stamp and signature; rows too long for that (they
    could not go on over a page there) are boxes across the page above them."""
    left = 0.55 * PAGE_W
    cells = tuple(cell(m, label, value, left, 36.0) for label, value in rows)
    if sum(c.height for c in cells) <= 3 * _STAMP_H:
        return [Closing(cells)]
    return [*(box(m, label, value) for label, value in rows), Closing(())]


# --- drawing ---------------------------------------------------------------------------


def bold(pdf: FPDF, stroke: int | tuple[int, int, int] = 0) -> AbstractContextManager[None]:
    """Embolden by stroking the glyph outlines (no bold instance of the variable font).

    A local context, because fpdf2 does not reset the PDF's text mode on its own when
    text_mode is set back to FILL: plain text after a heading would stay stroked.
    """
    color = stroke if isinstance(stroke, tuple) else (stroke, stroke, stroke)
    return pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=0.18, draw_color=color)


def text_line(pdf: FPDF, w: float, h: float, size: float, text: str, align: str = "L") -> None:
    """One line of text at the current position, in its own graphics state.

    fpdf2 2.8 switches to a fallback font (Arabic, CJK) inside the text object but keeps
    believing the main font is still selected on the page, so the next line would be
    drawn with the fallback font's metrics; a local context restores the font after it.
    """
    with pdf.local_context():
        pdf.set_font(MAIN[2], "", size)
        pdf.cell(w, h, text, align=align)


def _draw_cell(pdf: FPDF, c: Cell, x: float, y: float, h: float) -> None:
    with pdf.local_context():
        pdf.set_line_width(0.2)
        if c.label_w:
            pdf.set_fill_color(*_GREY)
            pdf.rect(x, y, c.label_w, h, style="DF")
            pdf.set_text_color(60)
            for i, line in enumerate(c.label):
                pdf.set_xy(x + PAD, y + PAD + i * LABEL_LH)
                text_line(pdf, c.label_w - 2 * PAD, LABEL_LH, LABEL_PT, line)
            pdf.set_text_color(0)
        pdf.rect(x + c.label_w, y, c.value_w, h)
        for i, line in enumerate(c.value):
            pdf.set_xy(x + c.label_w + PAD, y + PAD + i * VALUE_LH)
            text_line(pdf, c.value_w - 2 * PAD, VALUE_LH, VALUE_PT, line)
