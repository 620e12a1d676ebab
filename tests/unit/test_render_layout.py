"""Pagination of measured pieces, and which characters a shaped glyph cluster covers."""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF

from node.render.fonts import _cluster_text
from node.render.layout import PAD, TOP, VALUE_LH, Box, Cell, Group, paginate


@dataclass(frozen=True)
class Block:
    """A piece of a given height that draws nothing."""

    name: str
    height: float

    def draw(self, pdf: FPDF, y: float) -> None:
        raise AssertionError("pagination draws nothing")


def _names(pages: list[list[tuple[float, object]]]) -> list[list[str]]:
    return [[getattr(p, "name", type(p).__name__) for _, p in page] for page in pages]


def test_groups_that_fit_share_a_page() -> None:
    pages = paginate([Group((Block("a", 40),)), Group((Block("b", 50),))], body=100)
    assert _names(pages) == [["a", "b"]]
    assert [y for y, _ in pages[0]] == [TOP, TOP + 40]


def test_a_group_that_does_not_fit_starts_the_next_page_whole() -> None:
    groups = [
        Group((Block("a", 70),)),
        Group((Block("bar", 7), Block("first row", 30)), running=Block("continued", 5)),
    ]
    # The running heading marks a page the group moved to, above it.
    assert _names(paginate(groups, body=100)) == [["a"], ["continued", "bar", "first row"]]


def test_a_new_page_group_opens_with_its_own_heading_not_the_running_one() -> None:
    groups = [
        Group((Block("face", 20),)),
        Group(
            (Block("annex heading", 10), Block("item 1", 30)),
            new_page=True,
            running=Block("continued", 5),
        ),
        Group((Block("item 2", 30),), running=Block("continued", 5)),
        Group((Block("item 3", 35),), running=Block("continued", 5)),
    ]
    assert _names(paginate(groups, body=100)) == [
        ["face"],
        ["annex heading", "item 1", "item 2"],
        ["continued", "item 3"],
    ]


def test_a_piece_taller_than_a_page_is_placed_once_not_forever() -> None:
    pages = paginate(
        [Group((Block("a", 10),)), Group((Block("huge", 500),)), Group((Block("b", 10),))], body=100
    )
    assert _names(pages) == [["a"], ["huge"], ["b"]]


def test_a_box_taller_than_a_page_goes_on_over_pages_saying_so() -> None:
    value = tuple(f"line {n}" for n in range(60))
    box = Box((Cell(("Additional declaration",), value, 50.0, 130.0),))
    pages = paginate([Group((Block("a", 30),)), Group((box,))], body=100)
    pieces = [p for page in pages for _, p in page if isinstance(p, Box)]
    assert len(pages) >= 3
    values = [line for p in pieces for line in p.cells[0].value]
    assert values == list(value)  # every line once, in order
    assert pieces[0].cells[0].label == ("Additional declaration",)
    assert all(p.cells[0].label == ("Additional declaration", "(continued)") for p in pieces[1:])
    for page in pages:
        assert all(y + p.height <= TOP + 100 + 1e-9 for y, p in page)


def test_a_box_that_cannot_split_at_all_starts_a_page() -> None:
    # Two boxes side by side cannot split; nor a box whose label needs more room.
    pair = Box((Cell(("a",), ("x",) * 5, 30, 60), Cell(("b",), ("y",), 30, 60)))
    assert pair.split(50) is None
    tall_label = Box((Cell(("l",) * 10, ("v",) * 10, 50, 130),))
    assert tall_label.split(2 * PAD + 2 * VALUE_LH) is None
    assert _names(paginate([Group((Block("a", 90),)), Group((pair,))], body=100)) == [
        ["a"],
        ["Box"],
    ]


def test_cluster_text_gives_each_cluster_its_characters() -> None:
    # "وزارة" as HarfBuzz gives it, right to left: clusters 4, 4, 3, 2, 1, 1, 0 (a dot
    # mark and its base share a cluster).
    word = "وزارة"
    clusters = _cluster_text(word, [4, 4, 3, 2, 1, 1, 0])
    assert clusters == {i: (ord(ch),) for i, ch in enumerate(word)}
    # A ligature (lam and alef as one glyph): one cluster, both letters, in reading order.
    assert _cluster_text("سلام", [3, 1, 0]) == {
        0: (ord("س"),),
        1: (0x0644, 0x0627),  # lam, alef
        3: (ord("م"),),
    }
    assert _cluster_text("", []) == {}
