"""Country names and codes in trade files -> ISO 3166-1 alpha-2, or why not (pure).

The mapping is built from the bundled ISO 3166-1 list (its codes, alpha-3 and numeric
codes, English and official names, and their translations) plus a short, explicit table
of the names FAOSTAT uses that ISO does not. FAO's own numeric area codes are not mapped:
no public copy of FAOSTAT's area definitions with a licence that allows redistribution
was found, so a bare number is reported, never guessed (an FAO code and an M49 code can
be the same number for different areas). FAOSTAT files' "(M49)" code columns are used,
since M49 country codes are ISO 3166-1 numeric codes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Final

from node.codelists.lists import CodeList, bundled


class Unmappable(StrEnum):
    """Why a name or code names no single present-day country."""

    AGGREGATE = "not a country (a region or group)"
    HISTORICAL = "a former country with more than one successor"
    NUMERIC = "a numeric code (FAO area codes are not supported; use ISO codes or names)"
    UNKNOWN = "not a known country name or code"
    AMBIGUOUS = "names more than one country"


@dataclass(frozen=True)
class Resolved:
    """The alpha-2 code of a name, or the reason it has none (exactly one is set)."""

    alpha2: str | None
    reason: Unmappable | None = None
    text: str = ""  # what was looked up, for the report of what could not be mapped


# FAO names that no ISO 3166-1 name or official name gives, each with why it maps so.
FAO_NAMES: Final[dict[str, str]] = {
    # FAOSTAT splits China into mainland and the three areas ISO codes separately.
    "China, mainland": "CN",
    "China, Hong Kong SAR": "HK",
    "China, Macao SAR": "MO",
    "China, Taiwan Province of": "TW",
    # ISO's short name is "Wallis and Futuna"; FAOSTAT adds "Islands".
    "Wallis and Futuna Islands": "WF",
    # ISO's short name is "Palestine, State of"; FAOSTAT uses the bare name.
    "Palestine": "PS",
    # ISO's names are "Korea, Republic of" and "Korea, Democratic People's Republic of".
    "Republic of Korea": "KR",
    "Democratic People's Republic of Korea": "KP",
    # The bundled list carries ISO's common names "Laos" and "Syria" for these two.
    "Lao People's Democratic Republic": "LA",
    "Syrian Arab Republic": "SY",
    # ISO's name is "Holy See (Vatican City State)".
    "Holy See": "VA",
}

# Former areas FAOSTAT still carries in historical years. Each split into more than one
# present-day country (or, for Belgium-Luxembourg, was reported as one), so giving the
# trade to any one successor would misstate both: all are reported, none mapped.
HISTORICAL: Final[frozenset[str]] = frozenset(
    {
        "USSR",
        "Yugoslav SFR",
        "Czechoslovakia",
        "Serbia and Montenegro",
        "Belgium-Luxembourg",
        "Ethiopia PDR",
        "Sudan (former)",
        "Netherlands Antilles (former)",
        "Pacific Islands Trust Territory",
    }
)

# Regions and groups in FAOSTAT's area lists (M49 regions and FAO's own groups).
AGGREGATES: Final[frozenset[str]] = frozenset(
    {
        "World",
        "Africa",
        "Eastern Africa",
        "Middle Africa",
        "Northern Africa",
        "Southern Africa",
        "Western Africa",
        "Americas",
        "Northern America",
        "Central America",
        "Caribbean",
        "South America",
        "Asia",
        "Central Asia",
        "Eastern Asia",
        "Southern Asia",
        "South-eastern Asia",
        "Western Asia",
        "Europe",
        "Eastern Europe",
        "Northern Europe",
        "Southern Europe",
        "Western Europe",
        "Oceania",
        "Australia and New Zealand",
        "Melanesia",
        "Polynesia",
        "Channel Islands",
        "Least Developed Countries",
        "Land Locked Developing Countries",
        "Small Island Developing States",
        "Low Income Food Deficit Countries",
        "Net Food Importing Developing Countries",
        "Unspecified Area",
        "Areas not elsewhere specified",
    }
)
# Names that are a country in an analyst's edge list but an aggregate in FAOSTAT: FAO's
# "China" (area 351) is the sum of the four Chinese areas above, and "Micronesia" the
# Pacific region ("Micronesia (Federated States of)" is the country).
FAOSTAT_AGGREGATES: Final[frozenset[str]] = frozenset({"China", "Micronesia"})

# FAOSTAT area codes from 5000 up are its regions and groups (FAOSTAT's numbering).
FAO_FIRST_AGGREGATE_CODE: Final = 5000

_WORDS_RE: Final = re.compile(r"[^\w]+")
_INVERTED_RE: Final = re.compile(r"^(?P<name>.+?)\s*\((?P<title>[^()]+)\)$")


def normalise(name: str) -> str:
    """A name's comparison key: case, accents, punctuation and spacing do not count."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _WORDS_RE.sub(" ", bare).split()
    # "Congo, The Democratic Republic of the" turned round starts with a bare "the".
    return " ".join(words[1:] if words[:1] == ["the"] else words)


@dataclass(frozen=True)
class CountryIndex:
    """Lookup tables from the ISO 3166-1 list; build once with `country_index()`."""

    alpha2: frozenset[str]
    alpha3: dict[str, str]
    numeric: dict[str, str]
    names: dict[str, str | None]  # normalised name -> alpha-2, None when ambiguous

    def resolve(self, text: str, *, faostat: bool = False) -> Resolved:
        """The country `text` names (a code or a name), or why it names none."""
        stripped = text.strip()
        if stripped in HISTORICAL or "(former)" in stripped:
            return Resolved(None, Unmappable.HISTORICAL, stripped)
        if stripped in AGGREGATES or stripped.startswith("European Union"):
            return Resolved(None, Unmappable.AGGREGATE, stripped)
        if faostat and stripped in FAOSTAT_AGGREGATES:
            return Resolved(None, Unmappable.AGGREGATE, stripped)
        if stripped in FAO_NAMES:
            return Resolved(FAO_NAMES[stripped])
        upper = stripped.upper()
        if len(upper) == 2 and upper in self.alpha2:
            return Resolved(upper)
        if len(upper) == 3 and upper in self.alpha3:
            return Resolved(self.alpha3[upper])
        if stripped.isdigit():
            return Resolved(None, Unmappable.NUMERIC, stripped)
        for key in _name_keys(stripped):
            if key in self.names:
                found = self.names[key]
                return Resolved(found) if found else Resolved(None, Unmappable.AMBIGUOUS, stripped)
        return Resolved(None, Unmappable.UNKNOWN, stripped)

    def resolve_m49(self, code: str) -> Resolved:
        """The country of an M49 code (FAOSTAT writes them as '004, with the quote)."""
        digits = code.strip().lstrip("'")
        if not digits.isdigit():
            return Resolved(None, Unmappable.UNKNOWN, code.strip())
        found = self.numeric.get(digits.zfill(3))
        return Resolved(found) if found else Resolved(None, Unmappable.AGGREGATE, code.strip())


def _name_keys(name: str) -> list[str]:
    """The keys to look a name up by: itself, and FAO's "Bolivia (Plurinational State
    of)" turned round into ISO's official "Plurinational State of Bolivia"."""
    keys = [normalise(name)]
    inverted = _INVERTED_RE.match(name)
    if inverted:
        keys.append(normalise(f"{inverted['title']} {inverted['name']}"))
    return keys


def build_index(countries: CodeList) -> CountryIndex:
    """The lookup tables of an ISO 3166-1 code list (code -> English name, attributes
    alpha_3, numeric and official_name, translations)."""
    alpha3 = {a["alpha_3"]: c for c, a in countries.attributes.items() if "alpha_3" in a}
    numeric = {a["numeric"]: c for c, a in countries.attributes.items() if "numeric" in a}
    # English and official names first; a translation only fills a name not yet taken,
    # so "Congo" stays the Republic of the Congo whatever another language calls it.
    names: dict[str, str | None] = {}
    _add_names(names, _english_names(countries))
    for labels in countries.translations.values():
        _add_names(names, {c: [label] for c, label in labels.items()}, only_new=True)
    return CountryIndex(frozenset(countries.codes), alpha3, numeric, names)


def _english_names(countries: CodeList) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for code, label in countries.codes.items():
        official = countries.attributes.get(code, {}).get("official_name")
        result[code] = [label, *([official] if official else [])]
        if ", " in label:  # ISO's "Moldova, Republic of" -> "Republic of Moldova"
            head, _, tail = label.partition(", ")
            result[code].append(f"{tail} {head}")
    return result


def _add_names(
    names: dict[str, str | None], by_code: dict[str, list[str]], *, only_new: bool = False
) -> None:
    batch: dict[str, str | None] = {}
    for code, labels in by_code.items():
        for label in labels:
            key = normalise(label)
            if not key or (only_new and key in names):
                continue
            batch[key] = code if batch.get(key, code) == code else None
    for key, found in batch.items():
        names.setdefault(key, found)  # an earlier, better source of names keeps its own


@cache
def country_index() -> CountryIndex:
    """The index of the bundled ISO 3166-1 list (built once per process)."""
    return build_index(bundled().get("countries"))
