"""The bundled fonts of the PDF, loaded so that text copied out of it reads as written.

Noto Sans is the main font; Noto Sans Arabic and Noto Sans CJK are fallbacks, loaded only
when the text needs them (the CJK font is 16 MB). Text is shaped with HarfBuzz, which
joins Arabic letters and lays Arabic runs out right to left.
"""

from __future__ import annotations

import importlib.resources
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import TTFFont

from node.errors import ConfigError, InputError

# (font package, path inside it, family name in the PDF)
MAIN = ("fontpkg_noto_sans", "files/NotoSans[wdth,wght].ttf", "NotoSans")
ARABIC = ("fontpkg_noto_sans_arabic", "files/NotoSansArabic[wdth,wght].ttf", "NotoSansArabic")
CJK = ("cvttf_NotoSansCJK_Regular", "NotoSansCJKtc-Regular.otf", "NotoSansCJK")

# Unicode blocks the Arabic fallback covers; anything else the main font lacks goes to CJK.
_ARABIC_BLOCKS = (
    (0x0600, 0x06FF),
    (0x0750, 0x077F),
    (0x08A0, 0x08FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
)


def load_fonts(pdf: FPDF, texts: Iterable[str]) -> None:
    """The main font always; the Arabic and CJK fallbacks only when the text needs them.

    ConfigError when a font package is missing; InputError when no bundled font can show
    some character (fpdf2 would silently drop it). The variable fonts are used at their
    default instance (regular): instancing a bold weight takes seconds, so headings are
    emboldened by stroking instead.
    """
    _add(pdf, MAIN)
    main = _cmap(pdf, MAIN[2])
    missing = {
        ch
        for text in texts
        for ch in text
        if ord(ch) not in main and unicodedata.category(ch)[0] not in "CZ"
    }
    arabic = {ch for ch in missing if any(lo <= ord(ch) <= hi for lo, hi in _ARABIC_BLOCKS)}
    fallbacks = []
    if arabic:
        _add(pdf, ARABIC)
        fallbacks.append(ARABIC[2])
        missing -= {ch for ch in arabic if ord(ch) in _cmap(pdf, ARABIC[2])}
    if missing:
        _add(pdf, CJK)
        fallbacks.append(CJK[2])
        missing -= {ch for ch in missing if ord(ch) in _cmap(pdf, CJK[2])}
    if missing:
        # A certificate must not lose text unnoticed.
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in sorted(missing))
        raise InputError(f"no bundled font can show these characters: {shown}")
    if fallbacks:
        # exact_match=False lets the fallbacks (regular only) serve emboldened text too.
        pdf.set_fallback_fonts(fallbacks, exact_match=False)
    # Every box is a left-to-right paragraph of an English form: without a fixed base
    # direction fpdf2 takes it from the first letter, so "وزارة, United Arab Emirates"
    # became a right-to-left paragraph with its comma on the far side. The Unicode
    # bidirectional algorithm still lays each Arabic run out right to left inside it.
    pdf.set_text_shaping(True, direction="ltr")


def font_path(package: str, name: str) -> Path:
    """The font file inside its package; ConfigError naming what to install when absent."""
    try:
        path = Path(str(importlib.resources.files(package) / name))
    except ModuleNotFoundError:
        dist = package.replace("_", "-")
        raise ConfigError(f"font package {package} is missing: pip install {dist}") from None
    if not path.is_file():
        raise ConfigError(f"font file {name} is missing from package {package}: reinstall it")
    return path


def _add(pdf: FPDF, font: tuple[str, str, str]) -> None:
    package, name, family = font
    pdf.add_font(family, "", font_path(package, name))
    loaded = pdf.fonts[family.lower()]
    if isinstance(loaded, TTFFont):
        # fpdf2 builds the font object itself; the subclass only changes which glyph of a
        # cluster carries its text (slots are shared, so the swap is safe).
        loaded.__class__ = _ExtractableFont


def _cmap(pdf: FPDF, family: str) -> set[int]:
    """The code points a loaded font has glyphs for."""
    font = pdf.fonts[family.lower()]
    return set(font.cmap) if isinstance(font, TTFFont) else set()


class _ExtractableFont(TTFFont):
    """A TTFFont whose shaped text copies out of the PDF as the letters it shows.

    A PDF reader learns a glyph's text from the font's ToUnicode map, one entry per glyph
    as drawn. HarfBuzz gives a right-to-left run in visual order, so in a cluster such as
    "ز" (a dot mark over the glyph of "ر") the zero-width mark comes first, and fpdf2 2.8
    gave the cluster's text to that first glyph. Extraction then found zero-width letters
    beside unlabelled shapes and split words apart ("و ز ار ة"). Here the text goes to the
    cluster's widest glyph, its base; marks carry none. The rest is fpdf2's own shaping.
    """

    __slots__ = ()

    def shape_text(
        self,
        text: str,
        font_size_pt: float,
        text_shaping_params: dict[str, Any] | None,
    ) -> Sequence[dict[str, Any]]:
        if not text:
            return []
        infos, positions = self.perform_harfbuzz_shaping(text, font_size_pt, text_shaping_params)
        chars = _cluster_text(text, [int(info.cluster) for info in infos])
        base: dict[int, int] = {}
        for i, info in enumerate(infos):
            best = base.get(info.cluster)
            if best is None or positions[i].x_advance > positions[best].x_advance:
                base[info.cluster] = i
        shaped: list[dict[str, Any]] = []
        for i, (info, pos) in enumerate(zip(infos, positions, strict=True)):
            name = self.ttfont.getGlyphName(info.codepoint)
            width = round(self.scale * self.ttfont["hmtx"].metrics[name][0])
            glyph = self.subset.get_glyph(
                glyph=info.codepoint,
                unicode=chars.get(info.cluster, ()) if base[info.cluster] == i else (),
                glyph_name=name,
                glyph_width=width,
            )
            if glyph is None:
                continue
            shaped.append(
                {
                    "mapped_char": self.subset.pick_glyph(glyph),
                    "x_advance": pos.x_advance,
                    "y_advance": pos.y_advance,
                    "x_offset": pos.x_offset,
                    "y_offset": pos.y_offset,
                    "force_positioning": bool(
                        width != pos.x_advance or pos.x_offset or pos.y_offset or pos.y_advance
                    ),
                }
            )
        return shaped


def _cluster_text(text: str, clusters: list[int]) -> dict[int, tuple[int, ...]]:
    """Cluster start -> the code points of the text it covers (up to the next start)."""
    starts = sorted(set(clusters))
    out: dict[int, tuple[int, ...]] = {}
    for i, ch in enumerate(text):
        # The cluster a character belongs to: the last start at or before it.
        at = bisect_right(starts, i) - 1
        start = starts[max(at, 0)]
        out[start] = (*out.get(start, ()), ord(ch))
    return out
