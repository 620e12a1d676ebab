"""The console's six languages: English, French, Spanish, Arabic, Chinese and Russian.

Each language but English is a Babel catalogue (node/console/locale/LANG/LC_MESSAGES/
console.po), read and compiled in memory the first time a page is asked for in that
language, so that a release ships only the .po files translators edit and no build step
can leave a stale .mo behind. Compiling all five takes a few tenths of a second of CPU,
which a node paid at every start before (and an emulation's restarted nodes felt); most
nodes' consoles are used in one or two languages, so each is compiled on first use.

The language of the request being answered is a context variable: aiohttp answers each
request in a task of its own, so two users in two languages never see each
other's words, while the templates' `_()` stays one function.
"""

from __future__ import annotations

import gettext
import io
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources

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


class Catalogues(Mapping[str, gettext.NullTranslations]):
    """Every language's translations, each compiled from its bundled .po file when first
    asked for and kept; English (and a language whose file is missing from a damaged
    install) translates to itself. Safe to share between threads."""

    def __init__(self) -> None:
        self._compiled: dict[str, gettext.NullTranslations] = {DEFAULT: _ENGLISH}
        self._lock = threading.Lock()

    def __getitem__(self, code: str) -> gettext.NullTranslations:
        found = self._compiled.get(code)
        if found is not None:
            return found
        if code not in CODES:
            raise KeyError(code)
        with self._lock:
            found = self._compiled.get(code)
            if found is None:
                found = self._compiled[code] = _compile(code)
        return found

    def __iter__(self) -> Iterator[str]:
        return (lang.code for lang in LANGUAGES)

    def __len__(self) -> int:
        return len(LANGUAGES)


def load_catalogues() -> Catalogues:
    """The console's catalogues, each compiled on first use (Catalogues)."""
    return Catalogues()


def _compile(code: str) -> gettext.NullTranslations:
    # Babel only when a catalogue is compiled: a node whose console is not used never
    # imports it.
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = resources.files("node.console") / "locale" / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        return gettext.NullTranslations()
    catalog = read_po(io.BytesIO(po.read_bytes()), locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


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
