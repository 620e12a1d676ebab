"""What the officer console's certificate form holds: its sections, its fields, and the
choices and suggestions the code lists give them.

The templates iterate SECTIONS generically, so everything a page needs to draw a field
is here: its label and help text (marked with `N_` for Babel's extractor, translated by
the template), its kind, the code list behind it, whether it is required. A field's form
key is its name in a section that appears once (names are unique across those), and
`item-0-botanical_name` in a repeated one (rows numbered from 0): `section.form_key`.

Pure: `choices` and `lookup` read the code lists they are given; node.console.form
turns the fields into the JSON model and back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from node.codelists.lists import CodeList, CodeLists
from node.codelists.locations import MAX_RESULTS, Location, fold
from node.errors import InputError

Kind = Literal["text", "textarea", "select", "date", "decimal"]

# Longest value a field accepts, by kind: a posted value beyond it is refused with a
# finding. Names and addresses are lines; declarations and container lists run longer;
# a code (the value of a select) is at most what a code list allows.
MAX_CHARS: Final[dict[str, int]] = {
    "text": 1000,
    "textarea": 5000,
    "select": 64,
    "date": 32,
    "decimal": 80,
}
# A type-ahead query is a few characters; longer ones are cut, so the work is bounded.
MAX_QUERY_CHARS: Final = 64
MAX_LOOKUP: Final = 100
LOCATIONS: Final = "locations"


def N_(message: str) -> str:
    """Mark a string for translation without translating it (the template does)."""
    return message


@dataclass(frozen=True, slots=True)
class Field:
    """One field of the form. `codelist` gives a select its options and a text field its
    type-ahead suggestions ("locations": UN/LOCODE ports); `unit_of` names the decimal
    field a unit field belongs to."""

    name: str
    label: str
    kind: Kind = "text"
    codelist: str | None = None
    required: bool = False
    help: str | None = None
    unit_of: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A section of the form: once (`group` None) or repeated min_count..max_count times."""

    key: str
    title: str
    fields: tuple[Field, ...]
    group: str | None = None
    min_count: int = 1
    max_count: int = 1

    def form_key(self, name: str, n: int = 0) -> str:
        """The form key of field `name` (of row `n` in a repeated section)."""
        return name if self.group is None else f"{self.group}-{n}-{name}"

    def field(self, name: str) -> Field:
        """The field of that name; KeyError when the section has none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


_LOCATION_HELP = N_("A UN/LOCODE (NLRTM), a UN/LOCODE and the name (NLRTM Rotterdam), or a name")

SECTIONS: tuple[Section, ...] = (
    Section(
        "header",
        N_("Certificate"),
        (
            Field(
                "type_code",
                N_("Type of certificate"),
                "select",
                "certificate_types",
                required=True,
                help=N_("851 for a phytosanitary certificate, 657 for re-export"),
            ),
            Field("number", N_("Certificate number"), required=True),
            Field(
                "import_country",
                N_("Importing country"),
                "select",
                "countries",
                required=True,
                help=N_("To the plant protection organization of this country"),
            ),
            Field(
                "place_of_issue",
                N_("Place of issue"),
                codelist=LOCATIONS,
                required=True,
                help=_LOCATION_HELP,
            ),
            Field("officer_name", N_("Name of authorized officer"), required=True),
            Field("statement", N_("Certifying statement"), "select", "certifying_statements"),
        ),
    ),
    Section(
        "consignor",
        N_("Exporter"),
        (
            Field("consignor_name", N_("Name of exporter"), required=True),
            Field("consignor_address", N_("Address")),
            Field("consignor_city", N_("City")),
            Field("consignor_country", N_("Country"), "select", "countries"),
        ),
    ),
    Section(
        "consignee",
        N_("Consignee"),
        (
            Field("consignee_name", N_("Declared name of consignee"), required=True),
            Field("consignee_address", N_("Address")),
            Field("consignee_city", N_("City")),
            Field("consignee_country", N_("Country"), "select", "countries"),
        ),
    ),
    Section(
        "consignment",
        N_("Consignment"),
        (
            Field("loading_point", N_("Point of loading"), codelist=LOCATIONS, help=_LOCATION_HELP),
            Field(
                "entry_point",
                N_("Declared point of entry"),
                codelist=LOCATIONS,
                help=_LOCATION_HELP,
            ),
            Field("transport_mode", N_("Means of conveyance"), "select", "transport_modes"),
            Field("conveyance_name", N_("Vessel, airline or vehicle")),
            Field("voyage_id", N_("Voyage or flight number")),
            Field(
                "containers",
                N_("Containers and seals"),
                "textarea",
                help=N_("One container a line: its number, then / and its seal numbers"),
            ),
            Field("marks", N_("Distinguishing marks"), "textarea"),
            Field(
                "place_of_inspection",
                N_("Place of inspection"),
                codelist=LOCATIONS,
                help=_LOCATION_HELP,
            ),
        ),
    ),
    Section(
        "item",
        N_("Commodity"),
        (
            Field("description", N_("Name of produce"), required=True),
            Field("botanical_name", N_("Botanical name of plants"), required=True),
            Field("common_name", N_("Common name")),
            Field("intended_use", N_("Intended use"), codelist="intended_uses"),
            Field(
                "quantity",
                N_("Quantity declared"),
                "decimal",
                help=N_("A weight goes in as net weight, a volume as net volume"),
            ),
            Field("quantity_unit", N_("Unit"), codelist="units", unit_of="quantity"),
            Field("package_count", N_("Number of packages"), "decimal"),
            Field(
                "package_type",
                N_("Type of package"),
                codelist="package_types",
                unit_of="package_count",
            ),
            Field("origin_country", N_("Place of origin"), "select", "countries", required=True),
            Field("origin_region", N_("Region of origin")),
            Field("hs_code", N_("HS code"), help=N_("4 to 10 digits")),
            Field("treatment_type", N_("Treatment"), codelist="treatment_types"),
            Field("chemical", N_("Chemical (active ingredient)")),
            Field("duration", N_("Duration"), "decimal"),
            Field("duration_unit", N_("Unit"), codelist="units", unit_of="duration"),
            Field("temperature", N_("Temperature (°C)"), "decimal"),
            Field("concentration", N_("Concentration"), "decimal"),
            Field("concentration_unit", N_("Unit"), codelist="units", unit_of="concentration"),
            Field("treatment_date", N_("Date of treatment"), "date"),
        ),
        group="item",
        min_count=1,
        max_count=50,
    ),
    Section(
        "declaration",
        N_("Additional declarations"),
        (Field("text", N_("Additional declaration"), "textarea"),),
        group="declaration",
        min_count=0,
        max_count=20,
    ),
    Section(
        "reexport",
        N_("Re-export (657 only)"),
        (
            Field("original_number", N_("Number of the original phytosanitary certificate")),
            Field(
                "original_country",
                N_("Country of origin (issuer of the original certificate)"),
                "select",
                "countries",
            ),
            Field("original_form", N_("Attached as"), "select", "reexport_original"),
            Field("packing", N_("Packing"), "select", "reexport_packing"),
            Field("containers_used", N_("Containers"), "select", "reexport_containers"),
            Field("basis", N_("Certified on the basis of"), "select", "reexport_basis"),
        ),
    ),
)

SECTION_BY_KEY: Final = {s.key: s for s in SECTIONS}
SECTION_BY_GROUP: Final = {s.group: s for s in SECTIONS if s.group is not None}

# The certificate types a console drafts: the two ePhyto certificates of ISPM 12.
CERTIFICATE_TYPES: Final = ("851", "657")
# The re-export boxes of ISPM 12's model 657 as choices: each a pair of the item-level
# note subjects the note_subjects list names (RPCPC and RPCAI may both be ticked).
REEXPORT_CHOICES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "reexport_original": (
        ("RPCOR", N_("the original phytosanitary certificate")),
        ("RPCTC", N_("a certified true copy")),
    ),
    "reexport_packing": (("RPCPK", N_("packed")), ("RPCRP", N_("repacked"))),
    "reexport_containers": (
        ("RPCOC", N_("original containers")),
        ("RPCNC", N_("new containers")),
    ),
    "reexport_basis": (
        ("RPCPC", N_("the original phytosanitary certificate")),
        ("RPCAI", N_("additional inspection")),
        ("RPCPC+RPCAI", N_("the original certificate and additional inspection")),
    ),
}


def choices(codelists: CodeLists, name: str, lang: str | None = None) -> list[tuple[str, str]]:
    """(code, label) of a select's options or a text field's suggestions, labels in
    `lang` where the list has them. Locations are too many for a list: use `lookup`.

    The re-export choices are offered only where the note_subjects list has their
    subjects; their labels are N_-marked English, for the template to translate."""
    if name == LOCATIONS:
        return []
    if name in REEXPORT_CHOICES:
        subjects = codelists.get("note_subjects") if "note_subjects" in codelists else None
        return [
            (code, label)
            for code, label in REEXPORT_CHOICES[name]
            if subjects is not None and all(s in subjects for s in code.split("+"))
        ]
    code_list = codelists.get(name)
    codes: Iterable[str] = code_list.codes
    if name == "certificate_types":
        codes = [c for c in CERTIFICATE_TYPES if c in code_list]
    options = [(code, code_list.label(code, lang) or code) for code in codes]
    if all(code.isdigit() for code, _ in options):
        return sorted(options, key=lambda o: int(o[0]))
    return sorted(options, key=lambda o: (o[1].casefold(), o[0]))


def lookup(
    codelists: CodeLists,
    name: str,
    query: str,
    limit: int = 20,
    lang: str | None = None,
) -> list[tuple[str, str]]:
    """Type-ahead: the (code, label) pairs of list `name` matching `query`, best first.

    Ports (name "locations") are searched among UN/LOCODE by code, code prefix or name;
    other lists by code prefix or a part of a label in any language, ignoring case and
    diacritics. The query is cut to MAX_QUERY_CHARS and the limit to MAX_LOOKUP, so
    the work is bounded whatever is typed; a blank query or an unknown list finds
    nothing."""
    text = query[:MAX_QUERY_CHARS].strip() if isinstance(query, str) else ""
    limit = min(limit, MAX_LOOKUP, MAX_RESULTS)
    if not text or limit < 1:
        return []
    if name == LOCATIONS:
        source = codelists.locations
        if source is None:
            return []
        try:
            found = source.get().search(text, limit=limit)
        except InputError:  # a query of blanks or separators only
            return []
        return [(location.code, _port_label(location)) for location in found]
    if name in REEXPORT_CHOICES or name == "certificate_types":
        options = choices(codelists, name, lang)
        return _ranked(text, options, {code: (label,) for code, label in options}, limit)
    if name not in codelists:  # a name from a URL: nothing to suggest, not an error
        return []
    code_list = codelists.get(name)
    options = [(code, code_list.label(code, lang) or code) for code in code_list.codes]
    return _ranked(text, options, _names(code_list), limit)


def _port_label(location: Location) -> str:
    where = (
        f"{location.subdivision}, {location.country}" if location.subdivision else location.country
    )
    return f"{location.name} ({where})"


def _names(code_list: CodeList) -> dict[str, tuple[str, ...]]:
    """Every label of every code: the list's own and its translations."""
    names: dict[str, list[str]] = {code: [label] for code, label in code_list.codes.items()}
    for labels in code_list.translations.values():
        for code, label in labels.items():
            names[code].append(label)
    return {code: tuple(labels) for code, labels in names.items()}


def _ranked(
    text: str,
    options: list[tuple[str, str]],
    names: dict[str, tuple[str, ...]],
    limit: int,
) -> list[tuple[str, str]]:
    code_query, wanted = text.upper(), fold(text)
    ranked: list[tuple[int, str, str, str]] = []
    for code, label in options:
        keys = [fold(n) for n in names.get(code, (label,))]
        if code.upper() == code_query:
            rank = 0
        elif code.upper().startswith(code_query):
            rank = 1
        elif any(k.startswith(wanted) for k in keys):
            rank = 2
        elif any(wanted in k for k in keys):
            rank = 3
        else:
            continue
        ranked.append((rank, label.casefold(), code, label))
    ranked.sort()
    return [(code, label) for _, _, code, label in ranked[:limit]]
