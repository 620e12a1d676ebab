"""The officer console's translations (node/console/locale/LANG/LC_MESSAGES/console.po):
every catalogue compiles as the console loads it, has no fuzzy or empty entry, and
translates every string a fresh Babel extraction finds in the console's code and
templates, run here in-process with node/console/babel.cfg, so a string added without
its translations fails with its text and where it is. A translation keeps its
`{placeholder}`s, survives the templates' newstyle gettext (which %-formats every
string and marks it safe HTML), and is written in its language's script;
node.console.vocabulary still names every value the templates translate as it comes.
"""

from __future__ import annotations

import string
import typing
import unicodedata
from collections import Counter
from pathlib import Path

import jinja2
import pytest
import yaml
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

import node.console
from node.console import i18n, vocabulary
from node.console.users import ROLE_NAMES, ROLES
from node.envelope.response import Decision
from node.store.links import Lifecycle

CONSOLE = Path(node.console.__file__).parent
LOCALE = CONSOLE / "locale"
OPENAPI = CONSOLE.parent / "api" / "openapi.yaml"
LANGS = [lang.code for lang in i18n.LANGUAGES if lang.code != i18n.DEFAULT]


@pytest.fixture(scope="module")
def extracted() -> dict[str, list[str]]:
    """Every msgid in the console now, with where it is, as `pybabel extract -F
    node/console/babel.cfg -k _ -k N_ node/console` finds it (the CLI adds -k to Babel's
    default keywords, which are these)."""
    with (CONSOLE / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        CONSOLE, method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def catalogues() -> dict[str, Catalog]:
    out: dict[str, Catalog] = {}
    for lang in LANGS:
        with (LOCALE / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as po:
            out[lang] = read_po(po, locale=lang, domain=i18n.DOMAIN)
    return out


def _fields(text: str) -> Counter[str]:
    """The `{name}` fields of a str.format string; ValueError for a stray brace."""
    return Counter(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


# --- the extraction itself: a broken babel.cfg must not make coverage pass vacuously --


def test_extraction_reads_python_templates_and_vocabulary(extracted: dict[str, list[str]]) -> None:
    where = {msgid: {loc.split(":")[0] for loc in locs} for msgid, locs in extracted.items()}
    assert "templates/login.html" in where["Sign in"]
    assert "auth.py" in where["Too many failed attempts: this name is locked until {time} UTC."]
    assert "export.py" in where["Issued and sent"]  # i18n.N_
    assert "form_spec.py" in where["Botanical name of plants"]  # form_spec's own N_
    assert "vocabulary.py" in where["officer"]
    # A .format() after _() in a template keeps its placeholder in the msgid.
    assert any("{country}" in msgid and "NPPO" in msgid for msgid in extracted)


def test_every_template_with_a_string_is_extracted(extracted: dict[str, list[str]]) -> None:
    files = {loc.split(":")[0] for locs in extracted.values() for loc in locs}
    templates = [
        f"templates/{t.name}"
        for t in sorted((CONSOLE / "templates").glob("*.html"))
        if '_("' in t.read_text(encoding="utf-8") or "_('" in t.read_text(encoding="utf-8")
    ]
    assert len(templates) > 5
    assert [t for t in templates if t not in files] == []


# --- the catalogues ---------------------------------------------------------------------


def test_catalogues_compile_each_language_once_on_first_use() -> None:
    loaded = i18n.load_catalogues()
    assert len(loaded) == len(i18n.LANGUAGES) and list(loaded) == [x.code for x in i18n.LANGUAGES]
    assert loaded["fr"] is loaded["fr"]  # compiled once, then kept
    assert loaded["en"].gettext("Sign in") == "Sign in"
    for hostile in ("xx", "", "../fr", "fr\x00", "FR"):
        with pytest.raises(KeyError):
            loaded[hostile]
    assert loaded.get("de") is None


def test_every_catalogue_compiles_as_the_console_loads_it() -> None:
    loaded = i18n.load_catalogues()
    assert set(loaded) == i18n.CODES
    for lang in LANGS:
        assert loaded[lang].gettext("Sign in") != "Sign in", lang
        # A string no catalogue has comes back as it is.
        assert loaded[lang].gettext("no such string \u202e\x00") == "no such string \u202e\x00"


@pytest.mark.parametrize("lang", LANGS)
def test_no_fuzzy_or_empty_entry(catalogues: dict[str, Catalog], lang: str) -> None:
    catalogue = catalogues[lang]
    assert not catalogue.fuzzy, f"{lang}: the header is marked fuzzy"
    assert catalogue.locale is not None and catalogue.locale.language == lang
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    empty = [m.id for m in catalogue if m.id and not str(m.string).strip()]
    assert fuzzy == [], f"{lang}: fuzzy entries to review"
    assert empty == [], f"{lang}: untranslated entries"


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_translates_every_extracted_string(
    extracted: dict[str, list[str]], catalogues: dict[str, Catalog], lang: str
) -> None:
    have = {m.id for m in catalogues[lang] if m.id and str(m.string).strip() and not m.fuzzy}
    missing = {msgid: extracted[msgid] for msgid in extracted if msgid not in have}
    assert missing == {}, (
        f"{lang}: strings without a translation; re-extract and update the catalogues "
        "(CONTRIBUTING.md, 'Translating the console')"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_every_placeholder(catalogues: dict[str, Catalog], lang: str) -> None:
    wrong = []
    for m in catalogues[lang]:
        if not m.id:
            continue
        try:
            kept = _fields(str(m.string)) == _fields(str(m.id))
        except ValueError:  # a stray brace: .format() would raise on the page
            kept = False
        if not kept:
            wrong.append((m.id, m.string))
    assert wrong == []


@pytest.mark.parametrize("lang", LANGS)
def test_translations_render_through_the_templates_gettext(
    catalogues: dict[str, Catalog], lang: str
) -> None:
    """The console installs newstyle gettext (node/console/app.py), which %-formats every
    string it translates, so a lone % in a translation would break its page, and marks
    the translation safe HTML, so markup characters would reach the page unescaped."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_gettext_translations(i18n.load_catalogues()[lang], newstyle=True)  # type: ignore[attr-defined]
    page = env.from_string("{{ _(m) }}")
    for m in catalogues[lang]:
        if not m.id:
            continue
        msgstr = str(m.string)
        try:
            rendered = page.render(m=m.id)
        except (ValueError, TypeError, KeyError) as error:
            pytest.fail(f"{lang}: {m.id!r} does not render ({error}): {msgstr!r}")
        assert rendered == msgstr, (lang, m.id)
        assert set(msgstr) & set("<>&") <= set(m.id), (lang, m.id, "markup in a translation")
        fields = _fields(msgstr)
        if fields:
            filled = msgstr.format(**{name: "«X»" for name in fields})
            assert "«X»" in filled and "{" not in filled, (lang, m.id)


# --- spot checks: the right words, in the right script ------------------------------------

# Page strings of words only (no code, number or Latin acronym in them).
_WORDS = (
    "Sign in",
    "Officer console",
    "Received certificates",
    "Export certificates",
    "Issued and sent",
    "Botanical name of plants",
    "Not signed by the NPPO",
    "The reason is too long (500 characters at most).",
)
_SCRIPTS = {"fr": "LATIN", "es": "LATIN", "ar": "ARABIC", "zh": "CJK", "ru": "CYRILLIC"}


@pytest.mark.parametrize("lang", LANGS)
def test_page_strings_are_in_the_languages_script(
    catalogues: dict[str, Catalog], lang: str
) -> None:
    script = _SCRIPTS[lang]
    for msgid in _WORDS:
        message = catalogues[lang].get(msgid)
        assert message is not None, (lang, msgid)
        letters = [c for c in str(message.string) if c.isalpha()]
        assert letters, (lang, msgid)
        assert all(unicodedata.name(c, "").startswith(script) for c in letters), (
            lang,
            msgid,
            message.string,
        )
        if script == "LATIN":
            assert message.string != msgid, (lang, msgid)


def test_official_phytosanitary_terms(catalogues: dict[str, Catalog]) -> None:
    def said(lang: str, msgid: str) -> str:
        message = catalogues[lang].get(msgid)
        assert message is not None, (lang, msgid)
        return str(message.string)

    assert said("fr", "Sign in") == "Se connecter"
    assert said("es", "Sign in") == "Iniciar sesión"
    original = "Number of the original phytosanitary certificate"
    assert "certificat phytosanitaire" in said("fr", original)
    assert "certificado fitosanitario" in said("es", original)
    assert "شهادة الصحة النباتية" in said("ar", original)
    assert "植物检疫证书" in said("zh", original)
    assert "фитосанитарного сертификата" in said("ru", original)
    nppo = "Not signed by the NPPO"
    assert "ONPV" in said("fr", nppo)
    assert "ONPF" in said("es", nppo)
    assert "المنظمة القطرية لوقاية النباتات" in said("ar", nppo)
    assert "国家植物保护机构" in said("zh", nppo)
    assert "НОКЗР" in said("ru", nppo)  # noqa: RUF001 (Cyrillic, as Russian writes it)


# --- node.console.vocabulary names what the templates translate as it comes ----------------


def test_vocabulary_names_every_role_and_what_it_does() -> None:
    assert vocabulary.ROLES == ROLE_NAMES
    assert tuple(role.description for role in ROLES) == vocabulary.ROLE_DESCRIPTIONS


def test_vocabulary_names_every_decision_and_standing() -> None:
    assert set(vocabulary.DECISIONS) == {d.value for d in Decision}
    status = typing.get_type_hints(Lifecycle)["status"]
    assert set(vocabulary.LIFECYCLE) == set(typing.get_args(status))


def test_vocabulary_names_every_message_state_and_route() -> None:
    schemas = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    states: set[str] = set()
    routes: set[str] = set()
    for schema in schemas.values():
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        states.update(properties.get("state", {}).get("enum", ()))
        routes.update(r for r in properties.get("route", {}).get("enum", ()) if r is not None)
    assert states and routes
    assert set(vocabulary.MESSAGE_STATES) == states
    assert set(vocabulary.ROUTES) == routes
