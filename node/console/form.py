"""The officer console's certificate form: form values to the JSON model and back, and
validation findings beside the fields they concern (issue 15, "Export").

The form (node.console.form_spec) shows part of a certificate; the JSON model
(docs/certificate-json.md) holds all of it. `model_from_form` therefore works on a base
model (an imported certificate, a copy, the draft so far): each field the form covers is
replaced by the form's value, and everything else is kept, so that importing an ePhyto
then editing it loses nothing the form does not show. A field whose value is unchanged
from what the base shows keeps the base's value exactly (a name with its language, a
port with its names in other languages, a treatment date with its time of day).

`check` builds the model, its XML, validates it in all four layers and files every
finding under the form key of the field it concerns: the JSON path of a finding
(node.certificate.json_paths) is looked up among the paths each field wrote while the
model was built. A form value that cannot be used (too long, characters a certificate
cannot carry, not a number, not a date) is refused with a finding and changes nothing.

Pure: no clock (the issue time is passed in) and no I/O of its own; naming a port
given by its UN/LOCODE alone reads the code lists' locations, which load on first use
as validation loads them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NamedTuple

from node.certificate import model as m
from node.certificate.findings import Area, Finding, Level
from node.certificate.json_paths import json_path
from node.certificate.jsonmodel import MAX_DECIMAL_DIGITS, JsonModelError, from_plain
from node.certificate.validate import Validator
from node.certificate.xml_build import format_datetime, format_decimal, to_xml_bytes
from node.codelists.lists import CodeLists
from node.console.form_spec import (
    MAX_CHARS,
    REEXPORT_CHOICES,
    SECTION_BY_GROUP,
    SECTION_BY_KEY,
    SECTIONS,
    Field,
    Section,
    choices,
    lookup,
)

__all__ = [
    "SECTIONS",
    "Checked",
    "Field",
    "FieldFinding",
    "Section",
    "check",
    "choices",
    "count",
    "form_from_model",
    "lookup",
    "model_from_form",
    "model_with_row_removed",
    "with_row_added",
    "with_row_removed",
]

Json = dict[str, Any]
GENERAL: Final = ""  # the findings key of what concerns no one field
ISSUED: Final = "70"
# The declared quantity, in the order the form shows the first one present.
MEASURES: Final = ("net_weight", "net_volume", "gross_weight", "gross_volume")
# UN/ECE Rec 20 units of volume: a quantity in one of them is a volume, any other a weight.
VOLUME_UNITS: Final = frozenset(
    {"MTQ", "DMQ", "CMQ", "MMQ", "LTR", "MLT", "CLT", "DLT", "HLT", "MAL"}
    | {"FTQ", "INQ", "YDQ", "GLL", "GLI", "BLL", "QT", "QTI", "PT", "PTI", "BUA", "BUI"}
)
# A new treatment's TypeCode: the model requires one and the IPPC reads the type from
# the TTL1 characteristic, so "mutually defined", as the bundled sample has it.
TREATMENT_TYPE_CODE: Final = "ZZZ"
PACKAGE_LEVEL: Final = "1"  # the packages as shipped, as the bundled samples have them

# Characters a certificate cannot carry (XML 1.0's refusals) or should not (C1 controls
# are mojibake, never text an officer means).
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# "NLRTM Rotterdam", also "NLRTM - Rotterdam" (hyphen, en or em dash) or "NLRTM: ...".
_LOCODE_FIRST = re.compile(r"([A-Z]{2}[A-Z0-9]{3})(?:\s+[-\u2013\u2014:]?\s*(.*))?", re.DOTALL)
_ROW_KEY = re.compile(r"([0-9]+)-([a-z_]+)")
_ERROR_PATH = re.compile(r"(\$[^\s:]*): (.*)", re.DOTALL)
_MISSING = re.compile(r"missing field '([a-z_]+)'")

# Mandatory-layer findings located at the aggregate that lacks something, by message:
# the slot (registered by the field that fills it) they concern.
RULE_SLOTS: Final[dict[str, str]] = {
    "name of authorized officer is missing": "officer",
    "no certifying statement (IncludedSPSClause)": "statement",
    "address of exporter (consignor) is missing": "address",
    "declared point of entry (UnloadingBaseportSPSLocation) is missing": "entry",
    "declared means of conveyance (MainCarriageSPSTransportMovement) is missing": "conveyance",
    "consignment lists no commodity": "items",
    "botanical name of plants (ScientificName) is missing": "botanical",
    "quantity declared is missing (a weight, a volume, or OQV/OQU)": "quantity",
    "number and description of packages is missing": "packages",
    "place of origin (OriginSPSCountry) is missing": "origin",
    "re-export certificate without RPCCO (country of origin of the re-exported goods)": "RPCCO",
    "re-export certificate without RPCRF (reference of the original phytosanitary "
    "certificate)": "RPCRF",
    "re-export box 'original certificate or certified true copy': tick exactly one of "
    "RPCOR, RPCTC": "original_form",
    "re-export box 'packed or repacked': tick exactly one of RPCPK, RPCRP": "packing",
    "re-export box 'original or new containers': tick exactly one of RPCOC, RPCNC": (
        "containers_used"
    ),
}
# The re-export fields and the item-level notes each writes: one note holding the
# value, or a pair of true/false boxes of which the value names the ticked one(s).
REEXPORT_NOTES: Final[dict[str, tuple[str, ...]]] = {
    "original_number": ("RPCRF",),
    "original_country": ("RPCCO",),
    "original_form": ("RPCOR", "RPCTC"),
    "packing": ("RPCPK", "RPCRP"),
    "containers_used": ("RPCOC", "RPCNC"),
    "basis": ("RPCPC", "RPCAI"),
}
# Treatment fields written as a TT* characteristic, by the tag the characteristic has.
_CHARACTERISTIC_FIELDS: Final = {
    "TTL1": "treatment_type",
    "TTCH": "chemical",
    "TTTM": "temperature",
    "TTCO": "concentration",
}
_TREATMENT_FIELDS: Final = (
    "treatment_type",
    "chemical",
    "duration",
    "duration_unit",
    "temperature",
    "concentration",
    "concentration_unit",
    "treatment_date",
)


class FieldFinding(NamedTuple):
    """A finding beside a field: its level ("SEVERE", "WARNING" or "INFO", as
    node.certificate.findings.Level) and what it says (English)."""

    level: str
    message: str


@dataclass(frozen=True, slots=True)
class Checked:
    """What `check` made of a form: the model, its XML (None when the model does not
    build), the findings by form key ("" for general ones), and whether it may issue."""

    model: Json
    xml: bytes | None
    findings: dict[str, tuple[FieldFinding, ...]]
    valid: bool


# --- Rows of the repeated sections ----------------------------------------------------


def count(form: Mapping[str, str], group: str) -> int:
    """How many rows of a repeated section the form holds: the highest index present
    plus one, at least min_count; an index past max_count is not a row."""
    return _scan(form, SECTION_BY_GROUP[group])[0]


def with_row_added(form: Mapping[str, str], group: str) -> dict[str, str]:
    """The form with one more (blank) row in `group`; unchanged at max_count."""
    section = SECTION_BY_GROUP[group]
    new = dict(form)
    n = count(form, group)
    if n < section.max_count:
        new.update({section.form_key(f.name, n): "" for f in section.fields})
    return new


def with_row_removed(form: Mapping[str, str], group: str, n: int) -> dict[str, str]:
    """The form without row `n` of `group`, the rows after it moved up by one.

    The base model's rows are matched to the form's by index: remove the same row
    from the base with `model_with_row_removed`, or another row's extras (notes,
    classifications the form does not show) would move to the row that replaced it."""
    section = SECTION_BY_GROUP[group]
    if n < 0:
        return dict(form)
    new: dict[str, str] = {}
    for key, value in form.items():
        row = _row_of(key, section)
        if row is None:
            new[key] = value
        elif row[0] >= 0 and row[0] != n:  # a row (the absurd ones, -1, are dropped)
            index = row[0] if row[0] < n else row[0] - 1
            new[section.form_key(row[1], index)] = value
    return new


def model_with_row_removed(model: Json, group: str, n: int) -> Json:
    """The model without the item (group "item") or additional declaration (group
    "declaration") that row `n` of the form shows; items renumbered."""
    SECTION_BY_GROUP[group]  # a KeyError for a group the form does not have
    new = copy.deepcopy(model)
    if group == "item":
        consignment = _obj(new.get("consignment"))
        items = _list(consignment.get("items"))
        if 0 <= n < len(items):
            del items[n]
            for sequence, item in enumerate(items, start=1):
                if isinstance(item, dict):
                    item["sequence"] = sequence
    else:
        notes = _list(new.get("notes"))
        positions = [i for i, note in enumerate(notes) if _subject(note) == "ADEDL"]
        if 0 <= n < len(positions):
            del notes[positions[n]]
    return new


def _scan(form: Mapping[str, str], section: Section) -> tuple[int, str | None]:
    """The rows of `section` in the form, and the first key whose index is absurd."""
    highest, absurd = -1, None
    names = {f.name for f in section.fields}
    for key in form:
        row = _row_of(key, section)
        if row is None:
            continue
        if row[0] < 0:
            absurd = absurd or key
        elif row[1] in names:
            highest = max(highest, row[0])
    return max(highest + 1, section.min_count), absurd


def _row_of(key: object, section: Section) -> tuple[int, str] | None:
    """(index, field name) of a row key of `section`, index -1 for one at or past
    max_count; None for any other key (a leading zero makes an unknown key)."""
    prefix = f"{section.group}-"
    if not isinstance(key, str) or not key.startswith(prefix):
        return None
    match = _ROW_KEY.fullmatch(key, len(prefix))
    if match is None:
        return None
    digits, name = match.groups()
    if len(digits) > 1 and digits.startswith("0"):
        return None
    # Compared as text first: int() of a 5,000-digit index would raise, not just cost.
    if len(digits) > 9 or int(digits) >= section.max_count:
        return -1, name
    return int(digits), name


# --- Reading the form -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Input:
    values: dict[str, str]  # usable, non-blank values by form key
    refused: frozenset[str]  # keys whose value was refused: the base's value stays
    rows: dict[str, int]  # rows of each repeated section
    findings: tuple[tuple[str, FieldFinding], ...]


def _read_form(form: Mapping[str, str]) -> _Input:
    values: dict[str, str] = {}
    refused: set[str] = set()
    findings: list[tuple[str, FieldFinding]] = []
    rows: dict[str, int] = {}
    for section in SECTIONS:
        indexes = [0]
        if section.group is not None:
            rows[section.group], absurd = _scan(form, section)
            indexes = list(range(rows[section.group]))
            if absurd is not None:
                message = (
                    f"{_shown(absurd)} and any other row past the {section.max_count} a "
                    "certificate may have were ignored"
                )
                findings.append((GENERAL, FieldFinding(Level.WARNING.value, message)))
        for n in indexes:
            for field in section.fields:
                key = section.form_key(field.name, n)
                value, problem = _clean(field, form.get(key))
                if problem is not None:
                    refused.add(key)
                    findings.append((key, FieldFinding(Level.SEVERE.value, problem)))
                elif value is not None:
                    values[key] = value
    return _Input(values, frozenset(refused), rows, tuple(findings))


def _clean(field: Field, raw: object) -> tuple[str | None, str | None]:
    """(value, None) for a usable value (None when blank), or (None, why not)."""
    if raw is None:
        return None, None
    if not isinstance(raw, str):
        return None, "not text"
    limit = MAX_CHARS[field.kind]
    if len(raw) > limit:  # before anything reads it all
        return None, f"longer than {limit} characters"
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    bad = _BAD_CHAR.search(text)
    if bad is not None:
        return None, f"character U+{ord(bad[0]):04X} cannot appear in a certificate"
    if not text:
        return None, None
    if field.kind == "decimal" and (
        not _DECIMAL.fullmatch(text) or sum(c.isdigit() for c in text) > MAX_DECIMAL_DIGITS
    ):
        return (
            None,
            f"not a number: write digits and a point for decimals (12.5), not {_shown(text)}",
        )
    if field.kind == "date" and not _is_date(text):
        return None, f"not a date: write it as YYYY-MM-DD, not {_shown(text)}"
    if field.codelist in REEXPORT_CHOICES and text not in dict(REEXPORT_CHOICES[field.codelist]):
        return None, f"not one of the choices: {_shown(text)}"
    return text, None


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _shown(value: str) -> str:
    """A value as a message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- Form to model --------------------------------------------------------------------


def model_from_form(
    form: Mapping[str, str],
    *,
    base: Json | None,
    exporter: str,
    issuer_name: str,
    issued_at: datetime,
    codelists: CodeLists | None = None,
) -> Json:
    """The JSON model the form describes: `base` with every field the form covers
    replaced by the form's value (absent where the form's is blank), the rest kept.

    The exporter (the node's country) is the exporting country and the issuer's; the
    status is issued (70), issued at `issued_at`. Refused form values leave the base's.
    With `codelists`, a port given by its UN/LOCODE alone gets its name from UN/LOCODE
    (the schema requires a location's name)."""
    read = _read_form(form)
    return _build(read, base, exporter, issuer_name, issued_at, codelists).model


class _Build:
    """The form's values, the base's as the form shows them, and where each field wrote."""

    __slots__ = ("codelists", "input", "model", "nameless", "origins", "shown")

    def __init__(
        self, model: Json, read: _Input, shown: dict[str, str], codelists: CodeLists | None
    ) -> None:
        self.model = model
        self.input = read
        self.shown = shown
        self.codelists = codelists
        self.origins: dict[str, str] = {}  # JSON path (or path#slot) -> form key
        self.nameless: dict[str, str] = {}  # form key -> a UN/LOCODE no location has

    def port_name(self, code: str) -> str | None:
        """The name UN/LOCODE gives a location, when the code lists have it."""
        source = None if self.codelists is None else self.codelists.locations
        location = None if source is None else source.get().get(code)
        return None if location is None else location.name

    def value(self, key: str) -> str | None:
        if key in self.input.refused:
            return self.shown.get(key) or None
        return self.input.values.get(key)

    def same(self, key: str) -> bool:
        """The field shows what the base has: the base's value stays as it is."""
        return key in self.input.refused or self.input.values.get(key, "") == self.shown.get(
            key, ""
        )

    def own(self, path: str, key: str) -> None:
        self.origins[path] = key


def _build(
    read: _Input,
    base: Json | None,
    exporter: str,
    issuer_name: str,
    issued_at: datetime,
    codelists: CodeLists | None,
) -> _Build:
    model: Json = copy.deepcopy(base) if isinstance(base, dict) else {}
    b = _Build(model, read, form_from_model(model) if model else {}, codelists)
    consignment = _child(model, "consignment")
    _header(b, model, consignment, exporter, issuer_name, issued_at)
    for role in ("consignor", "consignee"):
        _party(b, role, _child(consignment, role))
    _route(b, consignment)
    built = _items(b, consignment)
    _document_notes(b, model)
    if model.get("type_code") == m.REEXPORT:
        _reexport(b, _list(consignment.get("items"))[:built])
    return b


def _header(
    b: _Build,
    model: Json,
    consignment: Json,
    exporter: str,
    issuer_name: str,
    issued_at: datetime,
) -> None:
    key = SECTION_BY_KEY["header"].form_key
    for name in ("type_code", "number"):
        _plain(b, model, name, key(name), f"$.{name}")
    model["status_code"] = ISSUED
    model["issue_datetime"] = format_datetime(issued_at)
    issuer = _child(model, "issuer")
    if not issuer_name.strip():
        issuer.pop("name", None)
    elif _text(issuer.get("name")) != issuer_name:
        issuer["name"] = issuer_name
    address = _child(issuer, "address")
    if address.get("country_id") != exporter:
        address["country_id"] = exporter
        address.pop("country_name", None)
    if _obj(consignment.get("export_country")).get("id") != exporter:
        consignment["export_country"] = {"id": exporter}
    _country(b, consignment, "import_country", key("import_country"), "$.consignment")
    signatories = _list(model.get("signatories"))
    if not signatories or not isinstance(signatories[0], dict):
        signatories[:1] = [{}]
    model["signatories"] = signatories
    signatory: Json = signatories[0]
    path = "$.signatories[0]"
    _location(b, signatory, "issue_location", key("place_of_issue"), path, required=True)
    _plain(b, signatory, "officer_name", key("officer_name"), f"{path}.officer_name")
    b.own(f"{path}#officer", key("officer_name"))
    statement = key("statement")
    b.own(f"{path}.clauses", statement)
    b.own(f"{path}#statement", statement)
    if not b.same(statement):
        clauses = _list(signatory.get("clauses"))
        value = b.value(statement)
        clauses[:1] = [] if value is None else [{"id": value}]
        _put(signatory, "clauses", clauses or None)
    signatory["actual_datetime"] = format_datetime(issued_at)


def _party(b: _Build, role: str, party: Json) -> None:
    """The consignor's or consignee's name and the address's first line, city, country."""
    path = f"$.consignment.{role}"
    b.own(path, f"{role}_name")
    _plain(b, party, "name", f"{role}_name", f"{path}.name")
    address = _obj(party.get("address"))
    for name, attr in (("address", "line_one"), ("city", "city_name"), ("country", "country_id")):
        key = f"{role}_{name}"
        b.own(f"{path}.address.{attr}", key)
        if not b.same(key):
            _put(address, attr, b.value(key))
            if attr == "country_id":
                address.pop("country_name", None)  # the old country's name
    b.own(f"{path}.address", f"{role}_address")
    b.own(f"{path}#address", f"{role}_address")
    _put(party, "address", address or None)


def _route(b: _Build, consignment: Json) -> None:
    key, path = SECTION_BY_KEY["consignment"].form_key, "$.consignment"
    _location(b, consignment, "loading_location", key("loading_point"), path, required=False)
    _location(b, consignment, "unloading_location", key("entry_point"), path, required=False)
    b.own(f"{path}#entry", key("entry_point"))
    _location(
        b, consignment, "examination_location", key("place_of_inspection"), path, required=True
    )
    movements = _list(consignment.get("transport_movements"))
    fields = (
        ("transport_mode", "mode_code"),
        ("conveyance_name", "means_name"),
        ("voyage_id", "id"),
    )
    if not all(b.same(key(name)) for name, _ in fields):
        movement = _obj(movements[0]) if movements else {}
        for name, attr in fields:
            if not b.same(key(name)):
                _put(movement, attr, b.value(key(name)))
        movements[:1] = [movement] if movement else []
        _put(consignment, "transport_movements", movements or None)
    b.own(f"{path}.transport_movements", key("transport_mode"))
    b.own(f"{path}#conveyance", key("transport_mode"))
    for name, attr in fields:
        b.own(f"{path}.transport_movements[0].{attr}", key(name))
    containers = key("containers")
    b.own(f"{path}.transport_equipment", containers)
    if not b.same(containers):
        _put(consignment, "transport_equipment", _containers(b.value(containers)) or None)


def _items(b: _Build, consignment: Json) -> int:
    """Write the form's item rows over the base's items; how many items they made.

    A row with nothing in it makes no item. Base items past max_count, which the form
    does not show, follow unchanged."""
    section = SECTION_BY_GROUP["item"]
    base_items = _list(consignment.get("items"))
    items: list[Any] = []
    b.own("$.consignment#items", section.form_key("description", 0))
    for n in range(b.input.rows["item"]):
        keys = {f.name: section.form_key(f.name, n) for f in section.fields}
        if all(b.value(k) is None for k in keys.values()):
            continue
        item = _obj(base_items[n]) if n < len(base_items) else {}
        _item(b, item, keys, f"$.consignment.items[{len(items)}]")
        item["sequence"] = len(items) + 1
        items.append(item)
    built = len(items)
    for extra in base_items[section.max_count :]:
        if isinstance(extra, dict):
            extra["sequence"] = len(items) + 1
        b.own(f"$.consignment.items[{len(items)}]", GENERAL)
        items.append(extra)
    consignment["items"] = items
    return built


def _item(b: _Build, item: Json, keys: dict[str, str], path: str) -> None:
    b.own(path, keys["description"])
    for name in ("notes", "classifications", "treatments"):
        b.own(f"{path}.{name}", GENERAL)  # what the form does not show, but for parts
    texts = (
        ("description", "descriptions"),
        ("botanical_name", "scientific_names"),
        ("common_name", "common_names"),
        ("intended_use", "intended_uses"),
    )
    for name, attr in texts:
        b.own(f"{path}.{attr}", keys[name])
        if not b.same(keys[name]):
            value = b.value(keys[name])
            # Other languages' names were the old value's: they go with it.
            _put(item, attr, None if value is None else [value])
    b.own(f"{path}#botanical", keys["botanical_name"])
    _quantity(b, item, keys, path)
    _package(b, item, keys, path)
    _origin(b, item, keys, path)
    hs_code = keys["hs_code"]
    classes = _list(item.get("classifications"))
    at = next((i for i, c in enumerate(classes) if _obj(c).get("system_name") == "HS"), None)
    if not b.same(hs_code):
        value = b.value(hs_code)
        if at is not None:
            del classes[at]
        at = None if value is None else (at if at is not None else len(classes))
        if at is not None:
            classes.insert(at, {"system_name": "HS", "class_code": value})
        _put(item, "classifications", classes or None)
    if at is not None:
        b.own(f"{path}.classifications[{at}]", hs_code)
    _treatment(b, item, keys, path)


def _quantity(b: _Build, item: Json, keys: dict[str, str], path: str) -> None:
    amount, unit_key = keys["quantity"], keys["quantity_unit"]
    shown = next((name for name in MEASURES if isinstance(item.get(name), dict)), None)
    target = shown or MEASURES[0]
    if not (b.same(amount) and b.same(unit_key)):
        unit = b.value(unit_key)
        if unit is not None:
            kind = "volume" if unit in VOLUME_UNITS else "weight"
            target = shown if shown is not None and shown.endswith(kind) else f"net_{kind}"
        if shown is not None:
            del item[shown]
        _put(item, target, _measure(b.value(amount), unit))
    for name in MEASURES:
        b.own(f"{path}.{name}", amount)
    b.own(f"{path}.{target}.unit", unit_key)
    b.own(f"{path}#quantity", amount)


def _package(b: _Build, item: Json, keys: dict[str, str], path: str) -> None:
    number, kind = keys["package_count"], keys["package_type"]
    if not (b.same(number) and b.same(kind)):
        packages = _list(item.get("packages"))
        package = _obj(packages[0]) if packages else {}
        _put(package, "quantity", b.value(number))
        _put(package, "type_code", b.value(kind))
        if "quantity" in package or "type_code" in package:
            package.setdefault("level_code", PACKAGE_LEVEL)
            packages[:1] = [package]
        else:
            packages[:1] = []
        _put(item, "packages", packages or None)
    b.own(f"{path}.packages", number)
    b.own(f"{path}.packages[0].type_code", kind)
    b.own(f"{path}#packages", number)


def _origin(b: _Build, item: Json, keys: dict[str, str], path: str) -> None:
    country, region = keys["origin_country"], keys["origin_region"]
    if not (b.same(country) and b.same(region)):
        countries = _list(item.get("origin_countries"))
        first = _obj(countries[0]) if countries else {}
        if not b.same(country):
            code = b.value(country)
            if code is None:
                first.pop("id", None)
            elif first.get("id") != code:
                # The old country's names go; its region is the region field's to say.
                first = {"id": code, **{k: v for k, v in first.items() if k == "subdivisions"}}
        if not b.same(region):
            value = b.value(region)
            _put(first, "subdivisions", None if value is None else [value])
        countries[:1] = [first] if first else []
        _put(item, "origin_countries", countries or None)
    b.own(f"{path}.origin_countries", country)
    b.own(f"{path}.origin_countries[0].subdivisions", region)
    b.own(f"{path}#origin", country)


def _treatment(b: _Build, item: Json, keys: dict[str, str], path: str) -> None:
    """The first treatment: its TT* characteristics, duration and date."""
    treatments = _list(item.get("treatments"))
    if not all(b.same(keys[name]) for name in _TREATMENT_FIELDS):
        treatment = _obj(treatments[0]) if treatments else {}
        chars = _list(treatment.get("characteristics"))
        _characteristic(b, chars, "TTL1", keys["treatment_type"], _described("TTL1"))
        _characteristic(b, chars, "TTCH", keys["chemical"], _described("TTCH"))
        _characteristic(b, chars, "TTTM", keys["temperature"], _celsius)
        concentration, unit = keys["concentration"], keys["concentration_unit"]
        if not (b.same(concentration) and b.same(unit)):
            value = _measure(b.value(concentration), b.value(unit))
            at = _tagged(chars, "TTCO")
            if at is not None:
                del chars[at]
            if value is not None:
                chars.insert(
                    len(chars) if at is None else at, {"descriptions": ["TTCO"], "value": value}
                )
        _put(treatment, "characteristics", chars or None)
        duration, duration_unit = keys["duration"], keys["duration_unit"]
        if not (b.same(duration) and b.same(duration_unit)):
            _put(treatment, "duration", _measure(b.value(duration), b.value(duration_unit)))
        if not b.same(keys["treatment_date"]):
            _put(treatment, "start", b.value(keys["treatment_date"]))
            treatment.pop("end", None)  # the old date's end
        if all(b.value(keys[name]) is None for name in _TREATMENT_FIELDS):
            treatments[:1] = []
        else:
            treatment.setdefault("type_code", TREATMENT_TYPE_CODE)
            treatments[:1] = [treatment]
        _put(item, "treatments", treatments or None)
    if treatments and isinstance(treatments[0], dict):
        here = f"{path}.treatments[0]"
        b.own(here, keys["treatment_type"])
        b.own(f"{here}.type_code", keys["treatment_type"])
        b.own(f"{here}.duration", keys["duration"])
        b.own(f"{here}.duration.unit", keys["duration_unit"])
        b.own(f"{here}.start", keys["treatment_date"])
        b.own(f"{here}.end", keys["treatment_date"])
        for i, char in enumerate(_list(treatments[0].get("characteristics"))):
            tag = _tag(char)
            field = "treatment_type" if tag == "TTL2" else _CHARACTERISTIC_FIELDS.get(tag)
            if field is not None:
                b.own(f"{here}.characteristics[{i}]", keys[field])
            if tag == "TTCO":
                b.own(f"{here}.characteristics[{i}].value.unit", keys["concentration_unit"])


def _characteristic(
    b: _Build, chars: list[Any], tag: str, key: str, make: Callable[[str], Json]
) -> None:
    """The characteristic tagged `tag` made from the field's value, in its place."""
    if b.same(key):
        return
    at, value = _tagged(chars, tag), b.value(key)
    if at is not None:
        del chars[at]
    if value is not None:
        chars.insert(len(chars) if at is None else at, make(value))


def _described(tag: str) -> Callable[[str], Json]:
    """A characteristic whose value is its second description (TTL1, TTCH)."""
    return lambda value: {"descriptions": [tag, value]}


def _celsius(value: str) -> Json:
    return {"descriptions": ["TTTM"], "value": {"value": value, "unit": "CEL"}}


def _document_notes(b: _Build, model: Json) -> None:
    """Distinguishing marks (the first DMCL note) and the additional declarations (the
    ADEDL notes, in the place of the first); other notes stay where they are."""
    notes = _list(model.get("notes"))
    owners: dict[int, str] = {}  # id() of a note -> its form key
    marks = SECTION_BY_KEY["consignment"].form_key("marks")
    at = next((i for i, note in enumerate(notes) if _subject(note) == "DMCL"), None)
    if not b.same(marks):
        value = b.value(marks)
        if at is not None:
            del notes[at]
        if value is None:
            at = None
        else:
            at = len(notes) if at is None else at
            notes.insert(at, {"subject": "DMCL", "contents": [value]})
    if at is not None:
        owners[id(notes[at])] = marks
    section = SECTION_BY_GROUP["declaration"]
    positions = [i for i, note in enumerate(notes) if _subject(note) == "ADEDL"]
    declarations = [notes[i] for i in positions]
    written: list[Any] = []
    for n in range(b.input.rows["declaration"]):
        key = section.form_key("text", n)
        value = b.value(key)
        if b.same(key) and n < len(declarations):
            written.append(declarations[n])
        elif value is not None:
            written.append({"subject": "ADEDL", "contents": [value]})
        else:
            continue
        owners[id(written[-1])] = key
    written += declarations[section.max_count :]  # not shown, kept
    declared = set(positions)
    others = [note for i, note in enumerate(notes) if i not in declared]
    where = positions[0] if positions else len(others)
    notes = [*others[:where], *written, *others[where:]]
    _put(model, "notes", notes or None)
    for i, note in enumerate(notes):
        b.own(f"$.notes[{i}]", owners.get(id(note), GENERAL))


def _reexport(b: _Build, items: list[Any]) -> None:
    """The re-export section, written as notes on every item (where a 657 has them)."""
    section = SECTION_BY_KEY["reexport"]
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        notes = _list(item.get("notes"))
        path = f"$.consignment.items[{k}]"
        for name, subjects in REEXPORT_NOTES.items():
            key = section.form_key(name)
            b.own(f"{path}#{subjects[0] if len(subjects) == 1 else name}", key)
            if b.same(key) and any(_subject(note) in subjects for note in notes):
                continue
            notes = [note for note in notes if _subject(note) not in subjects]
            value = b.value(key)
            if value is None:
                continue
            if len(subjects) == 1:
                notes.append({"subject": subjects[0], "contents": [value]})
            else:
                ticked = set(value.split("+"))
                notes += [
                    {"subject": s, "contents": ["true" if s in ticked else "false"]}
                    for s in subjects
                ]
        _put(item, "notes", notes or None)
        by_subject = {s: section.form_key(name) for name, ss in REEXPORT_NOTES.items() for s in ss}
        for i, note in enumerate(notes):
            if _subject(note) in by_subject:
                b.own(f"{path}.notes[{i}]", by_subject[_subject(note)])


def _plain(b: _Build, obj: Json, name: str, key: str, path: str) -> None:
    """A field holding the form's value as it is (a code, a number, a Text)."""
    b.own(path, key)
    if not b.same(key):
        _put(obj, name, b.value(key))


def _country(b: _Build, parent: Json, name: str, key: str, path: str) -> None:
    b.own(f"{path}.{name}", key)
    if not b.same(key):
        code = b.value(key)
        _put(parent, name, None if code is None else {"id": code})


def _location(b: _Build, parent: Json, name: str, key: str, path: str, *, required: bool) -> None:
    """A port or place from "NLRTM Rotterdam", "Rotterdam" or "NLRTM" (named as
    UN/LOCODE names it). Its names in other languages stay while its UN/LOCODE does."""
    b.own(f"{path}.{name}", key)
    value = b.value(key)
    if not b.same(key):
        location: Json | None = None
        if value is not None:
            code, place = _split_location(value)
            if code is not None and place is None:
                place = b.port_name(code)
                if place is None:
                    b.nameless[key] = code
            old = _obj(parent.get(name))
            rest = _list(old.get("names"))[1:] if code is not None and old.get("id") == code else []
            location = {} if code is None else {"id": code}
            if place is not None:
                location["names"] = [place, *rest]
        _put(parent, name, location)
    if required and name not in parent:
        parent[name] = {}  # the model requires the aggregate; what it lacks is found


def _split_location(value: str) -> tuple[str | None, str | None]:
    match = _LOCODE_FIRST.fullmatch(value)
    if match is None:
        return None, value
    return match[1], (match[2] or "").strip() or None


def _containers(text: str | None) -> list[Json]:
    """Containers from lines "MSKU 884120 7 / SEAL1, SEAL2" (or separated by ';')."""
    found: list[Json] = []
    for line in re.split(r"[\n;]", text or ""):
        number, _, seals = line.partition("/")
        container: Json = {}
        if number.strip():
            container["id"] = number.strip()
        seal_ids = [s.strip() for s in seals.split(",") if s.strip()]
        if seal_ids:
            container["seal_ids"] = seal_ids
        if container:
            found.append(container)
    return found


def _measure(value: str | None, unit: str | None) -> Json | None:
    measure = {k: v for k, v in (("value", value), ("unit", unit)) if v is not None}
    return measure or None


# --- Model to form --------------------------------------------------------------------


def form_from_model(model: Json) -> dict[str, str]:
    """The form values a JSON model fills: every field's key, "" where the model has
    nothing the field shows; a row for each item and additional declaration (up to
    max_count)."""
    root = _obj(model)
    consignment = _obj(root.get("consignment"))
    signatory = _obj(_first(root.get("signatories")))
    form: dict[str, str] = {}
    header = SECTION_BY_KEY["header"].form_key
    form[header("type_code")] = _code(root.get("type_code"))
    form[header("number")] = _code(root.get("number"))
    form[header("import_country")] = _code(_obj(consignment.get("import_country")).get("id"))
    form[header("place_of_issue")] = _location_text(signatory.get("issue_location"))
    form[header("officer_name")] = _text(signatory.get("officer_name"))
    form[header("statement")] = _code(_obj(_first(signatory.get("clauses"))).get("id"))
    for role in ("consignor", "consignee"):
        party = _obj(consignment.get(role))
        address = _obj(party.get("address"))
        form[f"{role}_name"] = _text(party.get("name"))
        form[f"{role}_address"] = _code(address.get("line_one"))
        form[f"{role}_city"] = _code(address.get("city_name"))
        form[f"{role}_country"] = _code(address.get("country_id"))
    key = SECTION_BY_KEY["consignment"].form_key
    movement = _obj(_first(consignment.get("transport_movements")))
    notes = _list(root.get("notes"))
    form[key("loading_point")] = _location_text(consignment.get("loading_location"))
    form[key("entry_point")] = _location_text(consignment.get("unloading_location"))
    form[key("transport_mode")] = _code(movement.get("mode_code"))
    form[key("conveyance_name")] = _text(movement.get("means_name"))
    form[key("voyage_id")] = _code(movement.get("id"))
    form[key("containers")] = _containers_text(consignment.get("transport_equipment"))
    form[key("marks")] = _note_text(n for n in notes if _subject(n) == "DMCL")
    form[key("place_of_inspection")] = _location_text(consignment.get("examination_location"))
    items = [_obj(item) for item in _list(consignment.get("items"))]
    section = SECTION_BY_GROUP["item"]
    for n, item in enumerate(items[: section.max_count] or [{}]):
        form.update(_item_form(item, section, n))
    section = SECTION_BY_GROUP["declaration"]
    declarations = [note for note in notes if _subject(note) == "ADEDL"]
    for n, note in enumerate(declarations[: section.max_count]):
        form[section.form_key("text", n)] = _note_text([note])
    key = SECTION_BY_KEY["reexport"].form_key
    first_notes = _list(items[0].get("notes")) if items else []
    for name, subjects in REEXPORT_NOTES.items():
        if len(subjects) == 1:
            form[key(name)] = _note_text(n for n in first_notes if _subject(n) == subjects[0])
        else:
            ticked = [
                s
                for s in subjects
                if _note_text(n for n in first_notes if _subject(n) == s) == "true"
            ]
            form[key(name)] = "+".join(ticked)
    return form


def _item_form(item: Json, section: Section, n: int) -> dict[str, str]:
    values: dict[str, str] = {
        "description": _text(_first(item.get("descriptions"))),
        "botanical_name": _text(_first(item.get("scientific_names"))),
        "common_name": _text(_first(item.get("common_names"))),
        "intended_use": _text(_first(item.get("intended_uses"))),
    }
    shown: Json = next((item[name] for name in MEASURES if isinstance(item.get(name), dict)), {})
    values["quantity"] = _decimal_text(shown.get("value"))
    values["quantity_unit"] = _code(shown.get("unit"))
    package = _obj(_first(item.get("packages")))
    values["package_count"] = _decimal_text(package.get("quantity"))
    values["package_type"] = _code(package.get("type_code"))
    origin = _obj(_first(item.get("origin_countries")))
    values["origin_country"] = _code(origin.get("id"))
    values["origin_region"] = _text(_first(origin.get("subdivisions")))
    classes = [_obj(c) for c in _list(item.get("classifications"))]
    hs = next((c for c in classes if c.get("system_name") == "HS"), {})
    values["hs_code"] = _code(hs.get("class_code"))
    treatment = _obj(_first(item.get("treatments")))
    chars = [_obj(c) for c in _list(treatment.get("characteristics"))]

    def tagged(tag: str) -> Json:
        return next((c for c in chars if _tag(c) == tag), {})

    values["treatment_type"] = _text(_second(tagged("TTL1").get("descriptions")))
    values["chemical"] = _text(_second(tagged("TTCH").get("descriptions")))
    duration = _obj(treatment.get("duration"))
    values["duration"] = _decimal_text(duration.get("value"))
    values["duration_unit"] = _code(duration.get("unit"))
    # A temperature in another unit than °C is not shown (the field is in °C): kept.
    temperature = _obj(tagged("TTTM").get("value"))
    celsius = temperature.get("unit") in (None, "CEL")
    values["temperature"] = _decimal_text(temperature.get("value")) if celsius else ""
    concentration = _obj(tagged("TTCO").get("value"))
    values["concentration"] = _decimal_text(concentration.get("value"))
    values["concentration_unit"] = _code(concentration.get("unit"))
    start = _code(treatment.get("start"))
    values["treatment_date"] = start[:10] if _DATE.match(start) else start
    return {section.form_key(name, n): value for name, value in values.items()}


def _location_text(value: object) -> str:
    location = _obj(value)
    parts = (_code(location.get("id")), _text(_first(location.get("names"))))
    return " ".join(p for p in parts if p)


def _containers_text(value: object) -> str:
    lines = []
    for container in (_obj(c) for c in _list(value)):
        seals = ", ".join(_code(s) for s in _list(container.get("seal_ids")) if _code(s))
        number = _code(container.get("id"))
        lines.append(f"{number} / {seals}".strip() if seals else number)
    return "\n".join(line for line in lines if line)


def _note_text(notes: Iterable[object]) -> str:
    note = _obj(next(iter(notes), None))
    return _text(_first(note.get("contents")))


def _decimal_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return format_decimal(Decimal(str(value)))
        except InvalidOperation:
            return ""
    return ""


# --- Checking -------------------------------------------------------------------------


def check(
    form: Mapping[str, str],
    *,
    base: Json | None,
    exporter: str,
    issuer_name: str,
    issued_at: datetime,
    validator: Validator,
) -> Checked:
    """The model the form makes (as model_from_form with the validator's code lists),
    its XML, and every finding on it beside the field it concerns: the form's own
    (refused values, a row past the limit), the model's, and the four validation layers'.
    A field whose value was refused shows that refusal only: it is what to fix."""
    read = _read_form(form)
    built = _build(read, base, exporter, issuer_name, issued_at, validator.codelists)
    model, origins = built.model, built.origins
    found: dict[str, list[FieldFinding]] = {}
    for key, refusal in read.findings:
        found.setdefault(key, []).append(refusal)
    for key, code in built.nameless.items():
        message = f"{code} is no UN/LOCODE location: write the place's name after the code"
        found.setdefault(key, []).append(FieldFinding(Level.SEVERE.value, message))
    explained = {key for key in found if key}

    def add(key: str, level: str, message: str) -> None:
        finding = FieldFinding(level, message)
        if key not in explained and finding not in found.setdefault(key, []):
            found[key].append(finding)

    _form_notes(read, base, model, add)
    xml: bytes | None = None
    valid = False
    try:
        certificate = from_plain(m.Certificate, model, "$")
    except JsonModelError as e:
        path, message = _error_path(str(e))
        key = _key_for(path, origins)
        add(key, Level.SEVERE.value, message if key else str(e))
    else:
        try:
            xml = to_xml_bytes(certificate)
        except ValueError as e:  # the model refuses what XML cannot carry; a bug if not
            add(GENERAL, Level.SEVERE.value, f"the XML could not be built: {e}")
        else:
            report = validator.validate(xml)
            valid = report.valid
            for finding in report.findings:
                path, key = _finding_key(finding, origins)
                where = f"{path}: " if not key and path != "$" else ""
                add(key, finding.level.value, where + finding.message)
    _blanks(read, found, add)
    valid = valid and all(f.level != Level.SEVERE.value for fs in found.values() for f in fs)
    return Checked(model, xml, {k: tuple(v) for k, v in found.items() if v}, valid)


def _form_notes(
    read: _Input, base: Json | None, model: Json, add: Callable[[str, str, str], None]
) -> None:
    """Findings on the form as such: re-export boxes on a certificate that is not a
    re-export one, items the form does not show."""
    type_code = model.get("type_code")
    if type_code is not None and type_code != m.REEXPORT:
        section = SECTION_BY_KEY["reexport"]
        for field in section.fields:
            key = section.form_key(field.name)
            if key in read.values:
                message = "only a re-export certificate (657) has this: it was left out"
                add(key, Level.WARNING.value, message)
    section = SECTION_BY_GROUP["item"]
    hidden = len(_list(_obj(_obj(base).get("consignment")).get("items"))) - section.max_count
    if hidden > 0:
        message = (
            f"items {section.max_count + 1} to {section.max_count + hidden} are not shown in "
            "the form: they are kept as they are"
        )
        add(GENERAL, Level.INFO.value, message)


def _blanks(
    read: _Input,
    found: dict[str, list[FieldFinding]],
    add: Callable[[str, str, str], None],
) -> None:
    """What is blank and should not be, where nothing else was said about it: a
    required field, a number's unit."""
    for section in SECTIONS:
        for n in range(read.rows.get(section.group or "", 1)):
            for field in section.fields:
                key = section.form_key(field.name, n)
                if key in read.values or found.get(key):
                    continue
                if field.required:
                    add(key, Level.SEVERE.value, "required")
                elif (
                    field.unit_of is not None and section.form_key(field.unit_of, n) in read.values
                ):
                    add(key, Level.WARNING.value, "give the unit of the number beside it")


def _error_path(message: str) -> tuple[str, str]:
    """The JSON path a JsonModelError names (a missing field's own), and what it says."""
    match = _ERROR_PATH.fullmatch(message)
    if match is None:
        return "$", message
    path, text = match.groups()
    missing = _MISSING.fullmatch(text)
    if missing is not None:
        return f"{path}.{missing[1]}", "required"
    return path, text


def _finding_key(finding: Finding, origins: dict[str, str]) -> tuple[str, str]:
    """(JSON path, form key) of a validation finding."""
    path = json_path(finding.xpath)
    slot = RULE_SLOTS.get(finding.message)
    if slot is not None and f"{path}#{slot}" in origins:
        return path, origins[f"{path}#{slot}"]
    if finding.area is Area.MAPPING and "unit code" in finding.message:
        # A measure's unit is checked at the measure's element: the unit's field.
        return path, _key_for(f"{path}.unit", origins)
    return path, _key_for(path, origins)


def _key_for(path: str, origins: dict[str, str]) -> str:
    """The form key of the longest path some field wrote that holds `path`."""
    while path:
        if path in origins:
            return origins[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return GENERAL


# --- JSON helpers ---------------------------------------------------------------------


def _obj(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _child(parent: Json, name: str) -> Json:
    """parent[name], made an object if it is none."""
    if not isinstance(parent.get(name), dict):
        parent[name] = {}
    child: Json = parent[name]
    return child


def _first(value: object) -> object:
    items = _list(value)
    return items[0] if items else None


def _second(value: object) -> object:
    items = _list(value)
    return items[1] if len(items) > 1 else None


def _put(obj: Json, name: str, value: object) -> None:
    if value is None:
        obj.pop(name, None)
    else:
        obj[name] = value


def _text(value: object) -> str:
    """A Text's value: a string, or {"value", "language"}."""
    if isinstance(value, dict):
        value = value.get("value")
    return value.strip() if isinstance(value, str) else ""


def _code(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _subject(note: object) -> str:
    return _code(_obj(note).get("subject"))


def _tag(characteristic: object) -> str:
    return _text(_first(_obj(characteristic).get("descriptions")))


def _tagged(chars: list[Any], tag: str) -> int | None:
    return next((i for i, c in enumerate(chars) if _tag(c) == tag), None)
