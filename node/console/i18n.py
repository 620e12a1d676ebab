"""The console's six languages: English, French, Spanish, Arabic, Chinese and Russian.

Each language but English is a Babel catalogue (node/console/locale/LANG/LC_MESSAGES/
console.po), read and compiled in memory when the console starts, so that a release
ships only the .po files translators edit and no build step can leave a stale .mo
behind. The language of the request being answered is a context variable: aiohttp
answers each request in a task of its own, so two users in two languages never see each
other's words, while the templates' `_()` stays one function.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "console"


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    name: str  # in itself, as a menu of languages shows it
    rtl: bool = False


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English"),
    Language("fr", "Français"),
    Language("es", "Español"),
    Language("ar", "العربية", rtl=True),
    Language("zh", "中文"),
    Language("ru", "Русский"),
)
CODES = frozenset(lang.code for lang in LANGUAGES)
DEFAULT = "en"

_ENGLISH = gettext.NullTranslations()
_CURRENT: ContextVar[gettext.NullTranslations | None] = ContextVar(
    "console_translations", default=None
)


def load_catalogues() -> Mapping[str, gettext.NullTranslations]:
    """Every language's translations, compiled from the bundled .po files; English (and
    a language whose file is missing from a damaged install) translates to itself."""
    found: dict[str, gettext.NullTranslations] = {DEFAULT: gettext.NullTranslations()}
    base = resources.files("node.console") / "locale"
    for lang in LANGUAGES:
        if lang.code == DEFAULT:
            continue
        po = base / lang.code / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po.is_file():
            found[lang.code] = gettext.NullTranslations()
            continue
        catalog = read_po(io.BytesIO(po.read_bytes()), locale=lang.code, domain=DOMAIN)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        found[lang.code] = gettext.GNUTranslations(compiled)
    return found


def language(code: str | None) -> Language:
    """The language `code` names; English for anything else."""
    for lang in LANGUAGES:
        if lang.code == code:
            return lang
    return LANGUAGES[0]


def preferred(accept_language: str | None) -> str:
    """The first of the console's languages an Accept-Language header asks for (by its
    primary tag, in the order written, q-values of 0 skipped); English otherwise. Bounded
    work for any header: only its first 32 entries are read."""
    if not accept_language:
        return DEFAULT
    for entry in accept_language[:1024].split(",")[:32]:
        tag, _, params = entry.strip().partition(";")
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        primary = tag.strip().split("-")[0].lower()
        if primary in CODES:
            return primary
    return DEFAULT


def use(translations: gettext.NullTranslations) -> None:
    """Answer the current request in `translations`' language."""
    _CURRENT.set(translations)


def _(message: str) -> str:
    """`message` in the current request's language."""
    return (_CURRENT.get() or _ENGLISH).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return (_CURRENT.get() or _ENGLISH).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks `message` for the catalogues without translating it yet (Babel's keyword)."""
    return message
