"""The ISPM 12 reading of a certificate: the boxes of the model certificate, for people.

Pure functions only: `ispm12_view` turns the typed model into the boxes of the ISPM 12
model certificate (851, or 657 for re-export) as display strings, and `sections` lays
those boxes out as titled (label, value) rows that both `ephyto cert show` and the PDF use,
so the text and the PDF never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from node.certificate.model import (
    Address,
    Certificate,
    Country,
    Location,
    Measure,
    Note,
    Party,
    Text,
    TradeLineItem,
    Treatment,
)
from node.codelists.lists import CodeList, CodeLists, bundled

TITLE_PHYTO = "Phytosanitary Certificate"
TITLE_REEXPORT = "Phytosanitary Certificate for Re-export"

# ISPM 12 Annex 1, model phytosanitary certificate, certifying statement.
STATEMENT_851 = (
    "This is to certify that the plants, plant products or other regulated articles "
    "described herein have been inspected and/or tested according to appropriate official "
    "procedures and are considered to be free from the quarantine pests specified by the "
    "importing contracting party and to conform with the current phytosanitary requirements "
    "of the importing contracting party, including those for regulated non-quarantine pests."
)

# UN/ECE Rec 20 units seen on phytosanitary certificates; others are shown as their code.
_UNITS = {
    "KGM": "kg",
    "GRM": "g",
    "TNE": "t",
    "MTQ": "m³",
    "LTR": "l",
    "MLT": "ml",
    "HUR": "h",
    "MIN": "min",
    "SEC": "s",
    "DAY": "d",
    "CEL": "°C",
    "FAH": "°F",
    "GL": "g/l",
    "H87": "pieces",
}


# A language tag as languageID holds it ("zh", "pt-BR"); anything else is no language.
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,3}")
# A treatment value that is a code (CHT, PHT, FUM) rather than a description in words.
_CODE = re.compile(r"[A-Z0-9]{1,8}")


@dataclass(frozen=True, slots=True)
class Choice:
    """One tick box of the re-export statement and whether it is ticked."""

    label: str
    ticked: bool


@dataclass(frozen=True, slots=True)
class ReexportView:
    """The re-export boxes (RPC* notes) of one line item of a 657."""

    item: int
    country_of_origin: str
    original_certificate: str
    choices: tuple[Choice, ...]

    def ticked(self, label: str) -> bool:
        """Whether the box with this label is ticked (False when absent)."""
        return any(c.ticked for c in self.choices if c.label == label)


@dataclass(frozen=True, slots=True)
class ItemView:
    """The Section I boxes of one trade line item."""

    sequence: int
    produce: str
    quantity: str
    botanical_name: str
    packages: str
    distinguishing_marks: str
    place_of_origin: str


@dataclass(frozen=True, slots=True)
class TreatmentView:
    """Section III for one treatment of one line item."""

    item: int
    date: str
    treatment: str
    chemical: str
    duration_and_temperature: str
    concentration: str
    additional_information: str


@dataclass(frozen=True, slots=True)
class ReplacementView:
    """The replacement boxes (ADRP* notes): which certificate this one replaces and why."""

    replaced_certificate: str
    reason: str
    date: str


@dataclass(frozen=True, slots=True)
class Ispm12View:
    """The boxes of the ISPM 12 model certificate, as strings ready for people."""

    title: str
    number: str
    language: str
    status: str
    is_reexport: bool
    organization_name: str
    organization_of: str
    to_organizations_of: str
    exporter: str
    consignee: str
    items: tuple[ItemView, ...]
    distinguishing_marks: str
    means_of_conveyance: str
    point_of_entry: str
    certifying_statement: str
    reexport: tuple[ReexportView, ...]
    additional_declarations: tuple[str, ...]
    import_permit: str
    inspection_date: str
    additional_official_information: tuple[str, ...]
    treatments: tuple[TreatmentView, ...]
    place_of_issue: str
    authorized_officer: str
    date: str
    replacement: ReplacementView | None


def ispm12_view(cert: Certificate, lists: CodeLists | None = None) -> Ispm12View:
    """Read a certificate as the boxes of the ISPM 12 model certificate.

    Codes are named from the harmonised code lists (the bundled ones by default), in the
    certificate's language where a list has it (see `certificate_language`).
    """
    lists = lists or bundled()
    c = cert.consignment
    lang = certificate_language(cert)
    names = _country_names(cert, lists.get("countries"), lang)
    treatment_types = lists.get("treatment_types")
    signatory = cert.signatories[0] if cert.signatories else None
    reexport = (
        tuple(r for it in c.items if (r := _reexport(it, names)) is not None)
        if cert.is_reexport
        else ()
    )
    issued = signatory.actual_datetime if signatory and signatory.actual_datetime else None
    return Ispm12View(
        title=TITLE_REEXPORT if cert.is_reexport else TITLE_PHYTO,
        number=cert.number,
        language=lang,
        status=lists.get("status_codes").label(cert.status_code) or f"Status {cert.status_code}",
        is_reexport=cert.is_reexport,
        organization_name=_text(cert.issuer.name),
        # The model's box reads "Plant Protection Organization of <country>": country first.
        organization_of=_join([_country(c.export_country, names), _text(cert.issuer.name)], ", "),
        to_organizations_of=_country(c.import_country, names),
        exporter=_party(c.consignor, names),
        consignee=_party(c.consignee, names),
        items=tuple(_item(it, names, lists) for it in c.items),
        distinguishing_marks=_join([*_notes(cert.notes, "DMCL"), *_containers(cert)], "\n"),
        means_of_conveyance=_join(_conveyance(cert, lists.get("transport_modes")), "\n"),
        point_of_entry=_location(c.unloading_location),
        certifying_statement=_statement(cert, reexport, names),
        reexport=reexport,
        additional_declarations=tuple(
            [*_notes(cert.notes, "ADEDL"), *_item_notes(c.items, "ADTLIL")]
        ),
        import_permit=_join(
            [*_notes(cert.notes, "ADIPEDL"), *_item_notes(c.items, "ADIPTLIL")], "\n"
        ),
        inspection_date=_join(
            [
                *(_date_text(t) for t in _notes(cert.notes, "ADDIEDL")),
                *_item_notes(c.items, "ADDITLIL", _date_text),
            ],
            "\n",
        ),
        additional_official_information=tuple(
            [*_notes(cert.notes, "ADAOEDL"), *_item_notes(c.items, "ADAOTLIL")]
        ),
        treatments=tuple(
            _treatment(it.sequence, t, treatment_types, lang)
            for it in c.items
            for t in it.treatments
        ),
        place_of_issue=_location(signatory.issue_location) if signatory else "",
        authorized_officer=_text(signatory.officer_name) if signatory else "",
        date=_date(issued or cert.issue_datetime),
        replacement=_replacement(cert),
    )


def sections(
    view: Ispm12View, shown_items: int | None = None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The view as titled sections of (label, value) rows, in the model certificate's order.

    With `shown_items`, Section I's item boxes give only the first that many items and
    say that the others are continued in the annex (`item_rows` gives each of those).
    """
    header = [
        ("No.", view.number),
        ("Status", view.status),
        ("Plant Protection Organization of", view.organization_of),
        ("TO: Plant Protection Organization(s) of", view.to_organizations_of),
    ]
    if view.replacement is not None:
        r = view.replacement
        header += [
            ("Replaces certificate No.", r.replaced_certificate),
            ("Reason for replacement", r.reason),
            ("Date of replacement", r.date),
        ]
    n = len(view.items) if shown_items is None else max(0, min(shown_items, len(view.items)))

    def per_item(value: Callable[[ItemView], str]) -> str:
        return _per_item(view.items, n, value)

    consignment = [
        ("Name and address of exporter", view.exporter),
        ("Declared name and address of consignee", view.consignee),
        ("Number and description of packages", per_item(lambda i: i.packages)),
        (
            "Distinguishing marks",
            _join([per_item(lambda i: i.distinguishing_marks), view.distinguishing_marks], "\n"),
        ),
        ("Place of origin", per_item(lambda i: i.place_of_origin)),
        ("Declared means of conveyance", view.means_of_conveyance),
        ("Declared point of entry", view.point_of_entry),
        ("Name of produce and quantity declared", per_item(_produce)),
        ("Botanical name of plants", per_item(lambda i: i.botanical_name)),
    ]
    additional = [
        ("Additional declaration", "\n".join(view.additional_declarations)),
        ("Import permit", view.import_permit),
        ("Date of inspection", view.inspection_date),
        ("Additional official information", "\n".join(view.additional_official_information)),
    ]
    treatments: list[tuple[str, str]] = []
    for t in view.treatments:
        # Several treatments (or items) are told apart by the item they apply to.
        suffix = f" (item {t.item})" if len(view.items) > 1 else ""
        treatments += [
            (f"Date{suffix}", t.date),
            (f"Treatment{suffix}", t.treatment),
            (f"Chemical (active ingredient){suffix}", t.chemical),
            (f"Duration and temperature{suffix}", t.duration_and_temperature),
            (f"Concentration{suffix}", t.concentration),
            (f"Additional information{suffix}", t.additional_information),
        ]
    if not treatments:
        treatments = [("Treatment", "None declared")]
    authorization = [
        ("Place of issue", view.place_of_issue),
        ("Name of authorized officer", view.authorized_officer),
        ("Date", view.date),
    ]
    return [
        (view.title, header),
        ("I. Description of consignment", consignment),
        ("Certifying statement", [("", view.certifying_statement)]),
        ("II. Additional declaration", additional),
        ("III. Disinfestation and/or disinfection treatment", treatments),
        ("Authorization", authorization),
    ]


def item_rows(item: ItemView) -> list[tuple[str, str]]:
    """Section I's boxes for one line item, as an annex continues them."""
    return [
        ("Name of produce and quantity declared", _produce(item)),
        ("Botanical name of plants", item.botanical_name),
        ("Number and description of packages", item.packages),
        ("Distinguishing marks", item.distinguishing_marks),
        ("Place of origin", item.place_of_origin),
    ]


def certificate_language(cert: Certificate) -> str:
    """The certificate's language: the languageID of its name ("Phytosanitary Certificate"),
    the only language the ePhyto schema gives a whole document; English when it has none."""
    for name in cert.names:
        lang = (name.language or "").strip().lower()
        if _LANGUAGE_TAG.fullmatch(lang):
            return lang
    return "en"


def tick(choice: Choice) -> str:
    """A tick box as plain text, readable in a terminal and extractable from a PDF."""
    return f"[{'X' if choice.ticked else ' '}] {choice.label}"


# --- Section I -------------------------------------------------------------------------


def _item(item: TradeLineItem, names: dict[str, str], lists: CodeLists) -> ItemView:
    package_types = lists.get("package_types")
    common = _join([_text(t) for t in item.common_names], " / ")
    produce = _join([_join([_text(t) for t in item.descriptions], "; "), common], ", ")
    quantity = _join(
        [
            _measure(item.net_weight, "net weight"),
            _measure(item.gross_weight, "gross weight"),
            _measure(item.net_volume, "net volume"),
            _measure(item.gross_volume, "gross volume"),
            _join([*_notes(item.notes, "OQV"), *_notes(item.notes, "OQU")], " "),
        ],
        ", ",
    )
    packages = _join(_notes(item.notes, "OPTND"), "; ") or _join(
        [
            f"{_number(p.quantity)} x {package_types.label(p.type_code) or p.type_code}"
            for p in item.packages
        ],
        ", ",
    )
    marks = [*_notes(item.notes, "DMTLIL"), *(m for p in item.packages for m in p.marks)]
    origin = [_country(o, names) for o in item.origin_countries]
    origin += [_location(loc) for loc in item.origin_locations]
    return ItemView(
        sequence=item.sequence,
        produce=produce,
        quantity=quantity,
        botanical_name=_join([_text(t) for t in item.scientific_names], ", "),
        packages=packages,
        distinguishing_marks=_join(marks, "; "),
        place_of_origin=_join(origin, "; "),
    )


def _party(party: Party, names: dict[str, str]) -> str:
    lines = [_text(party.name), _text(party.person_name), _address(party.address, names)]
    return _join(lines, "\n")


def _address(address: Address | None, names: dict[str, str]) -> str:
    if address is None:
        return ""
    a = address
    free = [a.line_one, a.line_two, a.line_three, a.line_four, a.line_five]
    city = _join([a.postcode, a.city_name], " ")
    # Free lines often repeat the city already ("2161 BM Lisse"): do not say it twice.
    if city and any(a.city_name and a.city_name in (line or "") for line in free):
        city = ""
    country = a.country_name or (names.get(a.country_id, a.country_id) if a.country_id else "")
    return _join([_join(free, ", "), city, a.country_subdivision_name, country], ", ")


def _containers(cert: Certificate) -> list[str]:
    out = []
    for eq in cert.consignment.transport_equipment:
        seals = ", ".join(eq.seal_ids)
        out.append(
            _join(
                [f"Container {eq.id}" if eq.id else None, f"seal {seals}" if seals else None],
                ", ",
            )
        )
    return out


def _conveyance(cert: Certificate, modes: CodeList) -> list[str]:
    out = []
    for tm in cert.consignment.transport_movements:
        mode = modes.label(tm.mode_code) or f"Mode {tm.mode_code}"
        means = _join([_text(tm.means_name), f"({tm.id})" if tm.id else None], " ")
        out.append(_join([mode, means], ": "))
    return out


# --- Certifying statement --------------------------------------------------------------


def _reexport(item: TradeLineItem, names: dict[str, str]) -> ReexportView | None:
    flags = {n.subject for n in item.notes if n.subject and n.subject.startswith("RPC")}
    if not flags:
        return None
    origin = _notes(item.notes, "RPCCO")

    def choice(label: str, tag: str) -> Choice:
        return Choice(label, any(v.strip().lower() == "true" for v in _notes(item.notes, tag)))

    return ReexportView(
        item=item.sequence,
        country_of_origin=_join([names.get(o, o) for o in origin], ", "),
        original_certificate=_join(_notes(item.notes, "RPCRF"), ", "),
        choices=(
            choice("original", "RPCOR"),
            choice("certified true copy", "RPCTC"),
            choice("packed", "RPCPK"),
            choice("repacked", "RPCRP"),
            choice("original containers", "RPCOC"),
            choice("new containers", "RPCNC"),
            choice("original phytosanitary certificate", "RPCPC"),
            choice("additional inspection", "RPCAI"),
        ),
    )


def _statement(cert: Certificate, reexport: tuple[ReexportView, ...], names: dict[str, str]) -> str:
    if not cert.is_reexport:
        return STATEMENT_851
    here = _country(cert.consignment.export_country, names)
    origins = _join(_unique(r.country_of_origin for r in reexport), ", ") or "(not stated)"
    numbers = _unique(r.original_certificate for r in reexport)
    if not numbers:
        # No RPCRF note: fall back on the referenced original phytosanitary certificate.
        numbers = _unique(ref.id for ref in cert.references if ref.type_code == "851")
    number = _join(numbers, ", ") or "(not stated)"
    first = reexport[0] if reexport else ReexportView(0, "", "", ())

    def box(label: str) -> str:
        return tick(Choice(label, first.ticked(label)))

    return (
        "This is to certify that the plants, plant products or other regulated articles "
        f"described above were imported into {here} from {origins} covered by Phytosanitary "
        f"Certificate No. {number}, {box('original')} {box('certified true copy')} of which "
        f"is attached to this certificate; that they are {box('packed')} {box('repacked')} "
        f"in {box('original containers')} {box('new containers')}, that based on the "
        f"{box('original phytosanitary certificate')} and {box('additional inspection')}, "
        "they are considered to conform with the current phytosanitary requirements of the "
        f"importing contracting party, and that during storage in {here}, the consignment "
        "has not been subjected to the risk of infestation or infection."
    )


# --- Sections II and III ---------------------------------------------------------------


def _treatment(item: int, t: Treatment, types: CodeList, lang: str) -> TreatmentView:
    by_tag: dict[str, list[tuple[list[str], Measure | None]]] = {}
    for pc in t.characteristics:
        if pc.descriptions:
            rest = [_text(d) for d in pc.descriptions[1:]]
            by_tag.setdefault(pc.descriptions[0].value, []).append((rest, pc.value))

    def texts(tag: str) -> list[str]:
        return [s for rest, _ in by_tag.get(tag, []) for s in rest if s]

    def measures(tag: str) -> list[str]:
        return [_measure(v) for _, v in by_tag.get(tag, []) if v is not None]

    dates = _unique([_date(t.start) if t.start else "", _date(t.end) if t.end else ""])
    return TreatmentView(
        item=item,
        date=_join(dates, " to "),
        treatment=_join(
            [_treatment_name(v, types, lang) for v in [*texts("TTL1"), *texts("TTL2")]], " / "
        ),
        chemical=_join(texts("TTCH"), ", "),
        duration_and_temperature=_join([_measure(t.duration), *measures("TTTM")], ", "),
        concentration=_join(measures("TTCO"), ", "),
        additional_information=_join([*texts("TTAI"), *texts("TTFT")], "\n"),
    )


def _treatment_name(value: str, types: CodeList, lang: str) -> str:
    """A treatment type (TTL1/TTL2) by its name; a code no list names stays visible as a
    code, in brackets, and words that are no code are the name as given."""
    name = _label(types, value, lang) or types.label(value)
    if name:
        return name
    return f"({value})" if _CODE.fullmatch(value) else value


def _replacement(cert: Certificate) -> ReplacementView | None:
    if not any(n.subject in {"ADRP", "ADRPN", "ADRPR", "ADRD"} for n in cert.notes):
        return None
    return ReplacementView(
        replaced_certificate=_join(_notes(cert.notes, "ADRPN"), ", "),
        reason=_join(_notes(cert.notes, "ADRPR"), "\n"),
        date=_join([_date_text(d) for d in _notes(cert.notes, "ADRD")], ", "),
    )


# --- Small readers ---------------------------------------------------------------------


def _country_names(cert: Certificate, countries_list: CodeList, lang: str) -> dict[str, str]:
    """The name each country code prints as: the ISO 3166 short name in the certificate's
    language; where the list has none in that language, the certificate's own name in it;
    then the list's English short name; then whatever name the certificate gives.

    The list comes first because an inspector reads the same short name on every
    certificate ("Netherlands", not "The Kingdom of the Netherlands" one day and
    "Holland" the next); a name the certificate gives in another language than its
    own ("Россия" on an English certificate) is not what its reader reads.
    """
    c = cert.consignment
    countries: list[Country] = [c.export_country, c.import_country]
    countries += [*c.reexport_countries, *c.transit_countries]
    countries += [o for it in c.items for o in it.origin_countries]
    given: dict[str, list[Text]] = {}
    for country in countries:
        given.setdefault(country.id, []).extend(country.names)
    out: dict[str, str] = {}
    for code in countries_list.codes:
        out[code] = _label(countries_list, code, lang) or countries_list.codes[code]
    for code, names in given.items():
        if _label(countries_list, code, lang):
            continue
        own = [_text(n) for n in names if _same_language(n.language, lang) and _text(n)]
        if own:
            out[code] = own[0]
        elif code not in out and any(_text(n) for n in names):
            out[code] = _join([_text(n) for n in names], " / ")
    return out


def _label(code_list: CodeList, code: str, lang: str) -> str:
    """The list's name for a code in `lang` ("pt-br" falls back on "pt"); English is the
    list's own label; "" when the list has no name in that language."""
    if lang == "en" or lang.startswith("en-"):
        return code_list.codes.get(code, "")
    for tag in (lang, lang.split("-")[0]):
        name = code_list.translations.get(tag, {}).get(code)
        if name:
            return name
    return ""


def _same_language(language: str | None, lang: str) -> bool:
    """Whether a Text is in `lang`; a Text without languageID is in the certificate's."""
    if not language:
        return True
    return language.strip().lower().split("-")[0] == lang.split("-")[0]


def _country(country: Country, names: dict[str, str]) -> str:
    name = names.get(country.id)
    base = f"{name} ({country.id})" if name else country.id
    areas = _join([_text(s) for s in country.subdivisions], ", ")
    return f"{base}, {areas}" if areas else base


def _location(location: Location | None) -> str:
    if location is None:
        return ""
    name = _join([_text(n) for n in location.names], " / ")
    if location.id and name:
        return f"{name} ({location.id})"
    return name or location.id or ""


def _notes(notes: Iterable[Note], subject: str) -> list[str]:
    return [t.value for n in notes if n.subject == subject for t in n.contents if t.value]


def _item_notes(
    items: Iterable[TradeLineItem], subject: str, fmt: Callable[[str], str] = str
) -> list[str]:
    """Line-item notes, prefixed with their item where several items could be meant."""
    items = list(items)
    prefix = len(items) > 1
    return [
        f"Item {it.sequence}: {fmt(v)}" if prefix else fmt(v)
        for it in items
        for v in _notes(it.notes, subject)
    ]


def _measure(m: Measure | None, what: str = "") -> str:
    if m is None:
        return ""
    unit = _UNITS.get(m.unit, m.unit) if m.unit else ""
    return _join([_number(m.value), unit, what], " ")


def _number(value: Decimal) -> str:
    # "32.0000" reads as 32; format "f" keeps normalize() from writing 1E+3.
    return format(value.normalize(), "f")


def _date(value: datetime) -> str:
    return value.date().isoformat()


def _date_text(value: str) -> str:
    """A date-time note (ADDIEDL, ADRD) as a date; text that is not one stays as given."""
    try:
        return _date(datetime.fromisoformat(value.strip()))
    except ValueError:
        return value


def _text(t: Text | None) -> str:
    return t.value.strip() if t is not None else ""


def _unique(values: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out


def _join(parts: Iterable[str | None], sep: str) -> str:
    return sep.join(p for p in parts if p)


def _per_item(items: tuple[ItemView, ...], shown: int, value: Callable[[ItemView], str]) -> str:
    """One box's entries for the first `shown` line items, numbered when there are several,
    and a pointer to the annex for the rest."""
    entries = [(i.sequence, value(i)) for i in items[:shown]]
    entries = [(n, v) for n, v in entries if v]
    if len(items) == 1:
        return _join([v for _, v in entries], "\n")
    rest = items[shown:]
    pointer = []
    if rest:
        first, last = rest[0].sequence, rest[-1].sequence
        which = f"Item {first}" if first == last else f"Items {first} to {last}"
        pointer = [f"{which}: see the annex"]
    return "\n".join([*(f"{n}. {v}" for n, v in entries), *pointer])


def _produce(item: ItemView) -> str:
    return _join([item.produce, item.quantity], ": ")
