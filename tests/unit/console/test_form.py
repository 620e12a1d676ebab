"""The officer console's certificate form (node.console.form, node.console.form_spec):
the spec, form <-> JSON model round trips, findings beside the fields they concern,
rows, type-ahead, and what a hostile browser can post."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file

from node.certificate.mandatory import RULES
from node.certificate.validate import Validator
from node.codelists.lists import CodeLists, bundled
from node.console import form as f
from node.console import form_spec
from node.console.form import (
    RULE_SLOTS,
    SECTIONS,
    Checked,
    check,
    choices,
    count,
    form_from_model,
    lookup,
    model_from_form,
    model_with_row_removed,
    with_row_added,
    with_row_removed,
)

NVWA = "Netherlands Food and Consumer Product Safety Authority (NVWA)"
AT = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    text = (resources.files("node.samples") / f"{name}.json").read_text(encoding="utf-8")
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator.default()


@pytest.fixture
def nl() -> dict[str, Any]:
    return sample("phyto_nl_cn")


@pytest.fixture
def ae() -> dict[str, Any]:
    return sample("reexport_ae_ru")


def checked(
    form: dict[str, Any], validator: Validator, base: dict[str, Any] | None, exporter: str = "NL"
) -> Checked:
    return check(
        form,
        base=base,
        exporter=exporter,
        issuer_name=NVWA,
        issued_at=AT,
        validator=validator,
    )


def model(form: dict[str, Any], base: dict[str, Any] | None, exporter: str = "NL") -> Any:
    return model_from_form(form, base=base, exporter=exporter, issuer_name=NVWA, issued_at=AT)


def levels(found: Checked, key: str) -> list[str]:
    return [level for level, _ in found.findings.get(key, ())]


def messages(found: Checked, key: str) -> str:
    return " | ".join(message for _, message in found.findings.get(key, ()))


# --- The spec -------------------------------------------------------------------------


def test_sections_in_order_with_their_rows() -> None:
    keys = [s.key for s in SECTIONS]
    assert keys == [
        "header",
        "consignor",
        "consignee",
        "consignment",
        "item",
        "declaration",
        "reexport",
    ]
    item = form_spec.SECTION_BY_GROUP["item"]
    assert (item.min_count, item.max_count) == (1, 50)
    declaration = form_spec.SECTION_BY_GROUP["declaration"]
    assert (declaration.min_count, declaration.max_count) == (0, 20)
    assert item.form_key("botanical_name", 3) == "item-3-botanical_name"
    assert form_spec.SECTION_BY_KEY["header"].form_key("number") == "number"


def test_once_section_keys_are_unique_and_fields_well_formed() -> None:
    once = [f.name for s in SECTIONS if s.group is None for f in s.fields]
    assert len(once) == len(set(once))
    lists = bundled()
    for section in SECTIONS:
        names = {f.name for f in section.fields}
        for field in section.fields:
            assert field.kind in form_spec.MAX_CHARS
            if field.kind == "select":
                # Every select has options from the bundled lists.
                assert field.codelist is not None and choices(lists, field.codelist), field
            if field.unit_of is not None:
                assert field.unit_of in names
                assert section.field(field.unit_of).kind == "decimal"
    with pytest.raises(KeyError):
        SECTIONS[0].field("nothing")


def test_every_label_and_help_is_extracted_for_translation() -> None:
    extracted: set[str] = set()
    for module in (form_spec,):
        path = Path(module.__file__ or "")
        extracted |= {str(message) for _, message, _, _ in extract_from_file("python", path)}
    shown = {s.title for s in SECTIONS}
    shown |= {f.label for s in SECTIONS for f in s.fields}
    shown |= {f.help for s in SECTIONS for f in s.fields if f.help is not None}
    shown |= {label for options in form_spec.REEXPORT_CHOICES.values() for _, label in options}
    assert shown - extracted == set()


def test_rule_slots_name_real_rules() -> None:
    # A reworded mandatory rule would otherwise silently move its finding to "general".
    assert set(RULE_SLOTS) <= {rule.message for rule in RULES}


# --- Round trips ----------------------------------------------------------------------


def test_nl_sample_round_trips_exactly_with_its_base(nl: dict[str, Any]) -> None:
    issued = datetime.fromisoformat(nl["issue_datetime"])
    form = form_from_model(nl)
    again = model_from_form(form, base=nl, exporter="NL", issuer_name=NVWA, issued_at=issued)
    assert again == nl


def test_reexport_sample_keeps_everything_but_issuer_and_signing_time(ae: dict[str, Any]) -> None:
    again = model(form_from_model(ae), ae, exporter="AE")
    assert again["issuer"] == {"name": NVWA, "address": {"country_id": "AE"}}
    assert again["issue_datetime"] == "2026-11-20T09:15:00Z"
    assert again["signatories"][0].pop("actual_datetime") == "2026-11-20T09:15:00Z"
    for key in ("issuer", "issue_datetime"):
        del again[key], ae[key]
    assert again == ae


@pytest.mark.parametrize(("name", "exporter"), [("phyto_nl_cn", "NL"), ("reexport_ae_ru", "AE")])
@pytest.mark.parametrize("with_base", [True, False])
def test_samples_validate_after_the_round_trip(
    validator: Validator, name: str, exporter: str, with_base: bool
) -> None:
    base = sample(name)
    form = form_from_model(base)
    found = checked(form, validator, base if with_base else None, exporter)
    assert found.findings == {}
    assert found.valid
    assert found.xml is not None and validator.validate(found.xml).valid
    # Without a base the model holds what the form covers, and shows it again.
    assert form_from_model(found.model) == form


def test_form_fills_every_field_key(nl: dict[str, Any]) -> None:
    form = form_from_model(nl)
    assert form["place_of_issue"] == "NLRTM Rotterdam"
    assert form["consignee_name"] == "上海花卉进出口有限公司"
    assert form["containers"] == "MSKU 884120 7 / NL-NVWA-0099812"
    assert form["item-0-treatment_date"] == "2026-11-15"
    assert form["item-0-temperature"] == "20"
    assert form["item-2-quantity_unit"] == "MTQ"
    assert form["declaration-1-text"].startswith("The consignment was inspected")
    assert count(form, "item") == 3 and count(form, "declaration") == 2
    for section in SECTIONS:
        rows = range(count(form, section.group)) if section.group else [0]
        for n in rows:
            assert all(isinstance(form[section.form_key(x.name, n)], str) for x in section.fields)


def test_form_from_an_empty_or_odd_model_is_blank_not_an_error() -> None:
    assert set(form_from_model({}).values()) == {""}
    odd = {"consignment": {"items": "many", "consignor": ["x"]}, "notes": {"a": 1}}
    odd["signatories"] = [None, 3]
    assert set(form_from_model(odd).values()) == {""}
    numbers = {"consignment": {"items": [{"net_weight": {"value": 2.5, "unit": "KGM"}}]}}
    assert form_from_model(numbers)["item-0-quantity"] == "2.5"


def test_blank_fields_leave_the_model_field_absent(nl: dict[str, Any]) -> None:
    form = form_from_model(nl) | {
        "item-0-common_name": "",
        "item-0-hs_code": "  ",
        "consignor_address": "",
        "voyage_id": "",
        "marks": "",
    }
    made = model(form, nl)
    item = made["consignment"]["items"][0]
    assert "common_names" not in item
    assert [c["system_name"] for c in item["classifications"]] == ["IPPCPCVP", "IPPCPCC"]
    assert "line_one" not in made["consignment"]["consignor"]["address"]
    assert made["consignment"]["consignor"]["address"]["line_two"] == "2161 BM Lisse"  # kept
    assert "id" not in made["consignment"]["transport_movements"][0]
    assert not [n for n in made["notes"] if n["subject"] == "DMCL"]
    assert "" not in json.dumps(made, ensure_ascii=False).replace('""', "\x00").split("\x00")[1:]


def test_unchanged_fields_keep_the_base_exactly_changed_ones_drop_stale_parts(
    nl: dict[str, Any],
) -> None:
    form = form_from_model(nl) | {
        "item-0-common_name": "Tulpe",
        "entry_point": "CNSHA Shanghai port",
        "import_country": "HK",
        "item-0-treatment_date": "2026-11-16",
    }
    made = model(form, nl)
    item = made["consignment"]["items"][0]
    # Other languages' names were the old value's; the port keeps its code, so its names.
    assert item["common_names"] == ["Tulpe"]
    assert made["consignment"]["unloading_location"] == {
        "id": "CNSHA",
        "names": ["Shanghai port", {"value": "上海港", "language": "zh"}],
    }
    assert made["consignment"]["import_country"] == {"id": "HK"}
    assert item["treatments"][0]["start"] == "2026-11-16"
    assert "end" not in item["treatments"][0]
    # Unchanged: the consignee's name keeps its language.
    assert made["consignment"]["consignee"]["name"] == {
        "value": "上海花卉进出口有限公司",
        "language": "zh",
    }


def test_a_volume_unit_makes_a_volume(nl: dict[str, Any]) -> None:
    form = form_from_model(nl) | {"item-0-quantity_unit": "LTR", "item-2-quantity_unit": "KGM"}
    items = model(form, nl)["consignment"]["items"]
    assert "net_weight" not in items[0]
    assert items[0]["net_volume"] == {"value": "12000", "unit": "LTR"}
    assert items[0]["gross_weight"] == {"value": "12640", "unit": "KGM"}  # not in the form
    assert items[2]["net_weight"] == {"value": "14.5", "unit": "KGM"}
    assert "net_volume" not in items[2]


def test_a_new_certificate_from_the_form_alone(validator: Validator) -> None:
    form = {
        "type_code": "851",
        "number": "NL-2027-1",
        "import_country": "KE",
        "place_of_issue": "NLRTM",
        "officer_name": "J. de Vries",
        "consignor_name": "Exporter B.V.",
        "consignor_address": "Street 1",
        "consignee_name": "Importer Ltd",
        "entry_point": "KEMBA Mombasa",
        "transport_mode": "1",
        "place_of_inspection": "Lisse",
        "item-0-description": "Tulip bulbs",
        "item-0-botanical_name": "Tulipa",
        "item-0-quantity": "10",
        "item-0-quantity_unit": "KGM",
        "item-0-package_count": "2",
        "item-0-package_type": "CT",
        "item-0-origin_country": "NL",
        "item-0-treatment_type": "CHT",
        "item-0-temperature": "-1.5",
        "declaration-0-text": "Free from pests.\r\nSecond line.",
    }
    found = checked(form, validator, None)
    assert found.valid, found.findings
    made = found.model
    # The place of issue is named as UN/LOCODE names it: the schema requires a name.
    assert made["signatories"][0]["issue_location"] == {"id": "NLRTM", "names": ["Rotterdam"]}
    assert made["status_code"] == "70" and made["issue_datetime"] == "2026-11-20T09:15:00Z"
    assert made["consignment"]["export_country"] == {"id": "NL"}
    assert made["notes"] == [{"subject": "ADEDL", "contents": ["Free from pests.\nSecond line."]}]
    treatment = made["consignment"]["items"][0]["treatments"][0]
    assert treatment["type_code"] == "ZZZ"
    assert {"descriptions": ["TTTM"], "value": {"value": "-1.5", "unit": "CEL"}} in (
        treatment["characteristics"]
    )
    assert made["consignment"]["items"][0]["packages"] == [
        {"quantity": "2", "type_code": "CT", "level_code": "1"}
    ]


# --- Findings beside the fields -------------------------------------------------------


def test_missing_botanical_name_is_beside_its_field(
    nl: dict[str, Any], validator: Validator
) -> None:
    form = form_from_model(nl) | {"item-0-botanical_name": "", "item-2-botanical_name": " "}
    found = checked(form, validator, nl)
    assert not found.valid
    # The validation's words, not a bare "required" as well.
    missing = (("SEVERE", "botanical name of plants (ScientificName) is missing"),)
    assert found.findings["item-0-botanical_name"] == missing
    assert found.findings["item-2-botanical_name"] == missing
    assert "item-1-botanical_name" not in found.findings
    assert found.xml is not None  # the draft builds, it is just not valid


def test_bad_units_are_beside_the_unit_fields(nl: dict[str, Any], validator: Validator) -> None:
    form = form_from_model(nl) | {
        "item-1-quantity_unit": "XYZ",
        "item-0-duration_unit": "QQQ",
        "item-0-concentration_unit": "GLX",
    }
    found = checked(form, validator, nl)
    assert not found.valid
    for key, code in (
        ("item-1-quantity_unit", "XYZ"),
        ("item-0-duration_unit", "QQQ"),
        ("item-0-concentration_unit", "GLX"),
    ):
        assert levels(found, key) == ["SEVERE"]
        assert f"unknown unit code '{code}'" in messages(found, key)
    assert "item-1-quantity" not in found.findings


def test_codes_and_warnings_are_beside_their_fields(
    nl: dict[str, Any], validator: Validator
) -> None:
    form = form_from_model(nl) | {
        "item-2-origin_country": "XX",
        "import_country": "QQ",
        "item-1-hs_code": "12",
    }
    found = checked(form, validator, nl)
    assert "country code 'XX'" in messages(found, "item-2-origin_country")
    assert "country code 'QQ'" in messages(found, "import_country")
    assert levels(found, "item-1-hs_code") == ["WARNING"]
    # A means of conveyance without its mode does not make a model: said at the mode.
    found = checked(form_from_model(nl) | {"transport_mode": ""}, validator, nl)
    assert found.findings == {"transport_mode": (("SEVERE", "required"),)}
    warnings_only = form_from_model(nl) | {"item-1-hs_code": "12"}
    assert checked(warnings_only, validator, nl).valid


def test_mandatory_findings_at_an_aggregate_go_to_the_field_that_fills_it(
    nl: dict[str, Any], validator: Validator
) -> None:
    form = form_from_model(nl) | {
        "item-1-quantity": "",
        "item-1-quantity_unit": "",
        "item-1-package_count": "",
        "item-1-package_type": "",
        "consignor_address": "",
        "entry_point": "",
        "statement": "",
    }
    base = copy.deepcopy(nl)
    del base["consignment"]["consignor"]["address"]["line_two"]
    del base["consignment"]["consignor"]["address"]["city_name"]
    del base["consignment"]["consignor"]["address"]["country_id"]
    base["consignment"]["items"][1]["notes"] = []  # its OPTND says packages otherwise
    form |= {"consignor_city": "", "consignor_country": ""}
    found = checked(form, validator, base)
    assert "quantity declared is missing" in messages(found, "item-1-quantity")
    assert "packages is missing" in messages(found, "item-1-package_count")
    assert "address of exporter" in messages(found, "consignor_address")
    assert "point of entry" in messages(found, "entry_point")
    assert "certifying statement" in messages(found, "statement")


def test_model_errors_go_to_the_field(nl: dict[str, Any], validator: Validator) -> None:
    form = form_from_model(nl) | {"item-0-package_type": "", "item-0-quantity": ""}
    found = checked(form, validator, nl)
    assert found.xml is None and not found.valid
    # The first error the model meets, at its field; the unit without its number too.
    assert messages(found, "item-0-quantity") == "required"


def test_an_empty_form_says_what_is_required(validator: Validator) -> None:
    found = checked({}, validator, None)
    assert not found.valid and found.xml is None
    for key in (
        "type_code",
        "number",
        "import_country",
        "place_of_issue",
        "officer_name",
        "consignor_name",
        "consignee_name",
        "item-0-description",
        "item-0-botanical_name",
        "item-0-origin_country",
    ):
        assert found.findings[key] == (("SEVERE", "required"),), key


def test_a_number_without_its_unit_is_warned(nl: dict[str, Any], validator: Validator) -> None:
    found = checked(form_from_model(nl) | {"item-0-duration_unit": ""}, validator, nl)
    assert levels(found, "item-0-duration_unit") == ["WARNING"]
    assert found.valid


def test_an_unknown_port_code_alone_is_refused_beside_it(
    nl: dict[str, Any], validator: Validator
) -> None:
    found = checked(form_from_model(nl) | {"entry_point": "ZZQQQ"}, validator, nl)
    assert messages(found, "entry_point").startswith("ZZQQQ is no UN/LOCODE location")
    assert len(found.findings["entry_point"]) == 1  # not the schema's words as well
    assert not found.valid
    named = checked(form_from_model(nl) | {"entry_point": "ZZQQQ Somewhere"}, validator, nl)
    assert levels(named, "entry_point") == ["WARNING"]  # unknown to UN/LOCODE, but named
    assert named.valid


def test_general_findings_name_where_they_are(nl: dict[str, Any], validator: Validator) -> None:
    base = copy.deepcopy(nl)
    base["consignment"]["items"][0]["notes"].append({"subject": "NOPE", "contents": ["x"]})
    found = checked(form_from_model(base), validator, base)
    general = messages(found, "")
    assert "$.consignment.items[0].notes[2]" in general and "note subject" in general
    assert found.valid  # a warning


def test_reexport_findings_and_notes_on_every_item(
    ae: dict[str, Any], validator: Validator
) -> None:
    form = form_from_model(ae)
    assert form["original_country"] == "KE" and form["original_form"] == "RPCOR"
    assert form["basis"] == ""
    changed = form | {"original_country": "", "original_form": "", "packing": "RPCRP"}
    found = checked(changed, validator, ae, "AE")
    assert "RPCCO" in messages(found, "original_country")
    assert levels(found, "original_form") == ["WARNING"]
    notes = found.model["consignment"]["items"][0]["notes"]
    ticks = {n["subject"]: n["contents"] for n in notes if n["subject"] in ("RPCPK", "RPCRP")}
    assert ticks == {"RPCPK": ["false"], "RPCRP": ["true"]}
    assert {"subject": "RPCAI", "contents": ["false"]} in notes  # unchanged: kept
    # A new item carries the re-export boxes too.
    added = with_row_added(form, "item") | {
        "item-1-description": "Roses",
        "item-1-botanical_name": "Rosa",
        "item-1-origin_country": "KE",
        "item-1-quantity": "3",
        "item-1-quantity_unit": "KGM",
        "item-1-package_count": "1",
        "item-1-package_type": "BX",
        "basis": "RPCPC+RPCAI",
    }
    found = checked(added, validator, ae, "AE")
    assert found.valid, found.findings
    second = {
        n["subject"]: n["contents"][0] for n in found.model["consignment"]["items"][1]["notes"]
    }
    assert second["RPCCO"] == "KE" and second["RPCOR"] == "true" and second["RPCTC"] == "false"
    assert second["RPCPC"] == "true" and second["RPCAI"] == "true"


def test_reexport_boxes_on_a_phytosanitary_certificate_are_left_out(
    nl: dict[str, Any], validator: Validator
) -> None:
    found = checked(form_from_model(nl) | {"original_number": "KE-1"}, validator, nl)
    assert levels(found, "original_number") == ["WARNING"]
    assert found.valid
    assert "RPCRF" not in json.dumps(found.model)


# --- Rows -----------------------------------------------------------------------------


def test_count_and_rows_added_up_to_the_limit() -> None:
    assert count({}, "item") == 1 and count({}, "declaration") == 0
    assert count({"item-4-hs_code": "x", "item-4-nothing": "y"}, "item") == 5
    form: dict[str, str] = {}
    for _ in range(25):
        form = with_row_added(form, "declaration")
    assert count(form, "declaration") == 20
    assert form["declaration-19-text"] == ""
    with pytest.raises(KeyError):
        count({}, "consignor")


def test_row_removed_renumbers_the_rows_after_it() -> None:
    form = {
        "number": "1",
        "declaration-0-text": "a",
        "declaration-1-text": "b",
        "declaration-2-text": "c",
        "declaration-999999999-text": "absurd",
    }
    removed = with_row_removed(form, "declaration", 1)
    assert removed == {"number": "1", "declaration-0-text": "a", "declaration-1-text": "c"}
    assert form["declaration-1-text"] == "b"  # the input is not changed
    assert with_row_removed(form, "declaration", -1) == form
    assert with_row_removed(removed, "declaration", 7) == removed


def test_removing_an_item_from_form_and_base_keeps_extras_aligned(nl: dict[str, Any]) -> None:
    form = with_row_removed(form_from_model(nl), "item", 0)
    base = model_with_row_removed(nl, "item", 0)
    items = model(form, base)["consignment"]["items"]
    assert [i["descriptions"][0] for i in items] == ["Seed potatoes", "Cut flowers of roses"]
    assert [i["sequence"] for i in items] == [1, 2]
    assert items[0]["notes"] == nl["consignment"]["items"][1]["notes"]
    assert nl["consignment"]["items"][0]["sequence"] == 1  # the base is not changed
    declarations = model_with_row_removed(nl, "declaration", 0)["notes"]
    assert [n["subject"] for n in declarations].count("ADEDL") == 1


def test_blank_rows_make_nothing(nl: dict[str, Any]) -> None:
    form = with_row_added(with_row_added(form_from_model(nl), "item"), "declaration")
    made = model(form, nl)
    assert len(made["consignment"]["items"]) == 3
    assert [n["subject"] for n in made["notes"]].count("ADEDL") == 2


def test_items_the_form_does_not_show_are_kept(nl: dict[str, Any], validator: Validator) -> None:
    base = copy.deepcopy(nl)
    first = base["consignment"]["items"][1]
    base["consignment"]["items"] = [dict(first, sequence=n + 1) for n in range(53)]
    form = form_from_model(base)
    assert count(form, "item") == 50
    found = checked(form, validator, base)
    assert len(found.model["consignment"]["items"]) == 53
    assert [i["sequence"] for i in found.model["consignment"]["items"]][-3:] == [51, 52, 53]
    assert levels(found, "") == ["INFO"]
    assert "items 51 to 53" in messages(found, "")


# --- Hostile input --------------------------------------------------------------------


def test_absurd_row_indexes_allocate_nothing_and_are_reported(
    nl: dict[str, Any], validator: Validator
) -> None:
    form = form_from_model(nl) | {
        "item-999999999-x": "1",
        "item-99999999999999999999999999999999999999999-description": "y" * 100_000,
        "item-50-description": "one past the limit",
        "item-07-description": "leading zero: not a row key",
        "item-٣-description": "an Arabic-Indic digit: not a row key",
    }
    assert count(form, "item") == 3
    found = checked(form, validator, nl)
    assert levels(found, "") == ["WARNING"]
    assert "past the 50" in messages(found, "")
    assert len(found.model["consignment"]["items"]) == 3
    assert "past the 20" in messages(checked({"declaration-20-text": "x"}, validator, None), "")


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("number", "N" * 1001, "longer than 1000"),
        ("declaration-0-text", "d" * 5001, "longer than 5000"),
        ("type_code", "8" * 65, "longer than 64"),
        ("consignor_name", "Exporter\x00B.V.", "U+0000"),
        ("consignor_name", "bell\x07", "U+0007"),
        ("consignor_name", "c1\x85control", "U+0085"),
        ("consignor_name", "lone \ud800 surrogate", "U+D800"),
        ("consignor_name", "\ufffe", "U+FFFE"),
        ("consignor_name", b"bytes", "not text"),
        ("consignor_name", 42, "not text"),
        ("item-0-quantity", "2,5", "not a number"),
        ("item-0-quantity", "1e5", "not a number"),
        ("item-0-quantity", "NaN", "not a number"),
        ("item-0-quantity", "Infinity", "not a number"),
        ("item-0-quantity", "1" * 65, "not a number"),
        ("item-0-quantity", "١٢", "not a number"),
        ("item-0-treatment_date", "2026-02-30", "not a date"),
        ("item-0-treatment_date", "2026-1-1", "not a date"),
        ("item-0-treatment_date", "2026-11-15T10:00:00", "not a date"),
        ("original_form", "RPCXX", "not one of the choices"),
    ],
)
def test_refused_values_keep_the_base_and_say_why(
    nl: dict[str, Any], validator: Validator, key: str, value: Any, why: str
) -> None:
    form: dict[str, Any] = form_from_model(nl) | {key: value}
    found = checked(form, validator, nl)
    assert len(found.findings[key]) == 1, found.findings[key]
    assert levels(found, key) == ["SEVERE"] and why in messages(found, key)
    assert not found.valid
    # Nothing of the refused value reaches the model: the base's value stays.
    assert found.model == model(form_from_model(nl), nl)


def test_missing_and_unknown_keys(nl: dict[str, Any], validator: Validator) -> None:
    form = form_from_model(nl)
    noisy = form | {"csrf": "x", "Number": "y", "item-0-Description": "z", "": "", "op": "save"}
    assert model(noisy, nl) == model(form, nl)
    del form["officer_name"]
    found = checked(form, validator, nl)
    assert "authorized officer" in messages(found, "officer_name")
    assert "officer_name" not in found.model["signatories"][0]


def test_a_malformed_base_raises_nothing(validator: Validator) -> None:
    base: dict[str, Any] = {
        "consignment": {"items": "not a list", "consignor": "nobody", "transport_movements": 3},
        "signatories": ["not an object"],
        "notes": [None, {"subject": 5}],
        "issuer": [],
    }
    form = form_from_model(sample("phyto_nl_cn"))
    found = checked(form, validator, base)
    # What the form covers replaces the junk; what it does not is the model's to refuse.
    assert found.findings == {"": (("SEVERE", "$.notes[0]: expected an object, got null"),)}
    junk = {"consignment": {"items": [{"descriptions": "x", "treatments": [7]}]}}
    assert checked(form, validator, junk).valid
    assert checked({}, validator, junk).findings["item-0-description"] == (("SEVERE", "required"),)


# --- Choices and type-ahead -----------------------------------------------------------


def test_choices() -> None:
    lists = bundled()
    assert [code for code, _ in choices(lists, "certificate_types")] == ["657", "851"]
    modes = choices(lists, "transport_modes")
    assert [code for code, _ in modes][:3] == ["0", "1", "2"]
    countries = choices(lists, "countries")
    assert ("NL", "Netherlands") in countries
    assert [label.casefold() for _, label in countries] == sorted(
        label.casefold() for _, label in countries
    )
    assert ("NL", "Pays-Bas") in choices(lists, "countries", "fr")
    assert choices(lists, "locations") == []
    assert [c for c, _ in choices(lists, "reexport_basis")] == ["RPCPC", "RPCAI", "RPCPC+RPCAI"]
    # Offered only where the code lists know the re-export note subjects.
    without = CodeLists.of([lists.get("countries")])
    assert choices(without, "reexport_packing") == []


def test_lookup_ports_and_countries() -> None:
    lists = bundled()
    ports = lookup(lists, "locations", "rotter")
    assert "NLRTM" in [code for code, _ in ports]
    assert ("NLRTM", "Rotterdam (ZH, NL)") in ports
    assert lookup(lists, "locations", "nlrtm")[0][0] == "NLRTM"
    assert lookup(lists, "countries", "nether") == [("NL", "Netherlands")]
    assert lookup(lists, "countries", "nl")[0] == ("NL", "Netherlands")
    assert lookup(lists, "countries", "pays-bas", lang="fr") == [("NL", "Pays-Bas")]
    # Case and diacritics aside: as `ephyto codelists ports` searches.
    assert lookup(lists, "countries", "CÔTE") == [("CI", "Côte d'Ivoire")]
    assert lookup(lists, "countries", "ÑETHER") == [("NL", "Netherlands")]
    assert ("KGM", "kilogram") in lookup(lists, "units", "kilogram")
    assert lookup(lists, "reexport_packing", "repack") == [("RPCRP", "repacked")]
    assert len(lookup(lists, "units", "e", limit=5)) == 5


@pytest.mark.parametrize(
    ("name", "query", "limit"),
    [
        ("locations", "", 20),
        ("locations", " \t ", 20),
        ("locations", "-" * 10, 20),
        ("countries", "x" * 1_000_000, 20),
        ("locations", "r" * 1_000_000, 20),
        ("countries", "ne", 0),
        ("countries", "ne", -5),
        ("no_such_list", "ne", 20),
        ("countries", "\x00\ud800", 20),
    ],
)
def test_lookup_refuses_nothing_and_finds_little(name: str, query: str, limit: int) -> None:
    assert lookup(bundled(), name, query, limit) == []


def test_lookup_limit_is_bounded() -> None:
    assert len(lookup(bundled(), "units", "e", limit=10**9)) == form_spec.MAX_LOOKUP


def test_checked_findings_are_level_message_pairs(nl: dict[str, Any], validator: Validator) -> None:
    found = checked(form_from_model(nl) | {"item-0-botanical_name": ""}, validator, nl)
    for key, values in found.findings.items():
        assert isinstance(key, str)
        for level, message in values:
            assert level in ("SEVERE", "WARNING", "INFO") and message
    assert found.findings["item-0-botanical_name"][0].level == "SEVERE"
    assert f.GENERAL == ""
