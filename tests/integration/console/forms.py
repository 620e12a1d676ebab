"""A valid export certificate's form values, as a clerk fills the console's form (the
fields of node/console/form_spec.py): for the HTTP tests and the browser tests alike."""

from __future__ import annotations

FORM: dict[str, str] = {
    "type_code": "851",
    "import_country": "KE",
    "place_of_issue": "NLRTM",
    "officer_name": "Johanna de Vries",
    "statement": "1",
    "consignor_name": "Bloembollen Export B.V.",
    "consignor_address": "Heereweg 120",
    "consignor_city": "Lisse",
    "consignor_country": "NL",
    "consignee_name": "Nairobi Flowers Ltd",
    "consignee_address": "Mombasa Road 12",
    "consignee_city": "Nairobi",
    "consignee_country": "KE",
    "loading_point": "NLRTM",
    "entry_point": "KEMBA",
    "transport_mode": "1",
    "place_of_inspection": "Lisse",
    "item-0-description": "Tulip bulbs for planting",
    "item-0-botanical_name": "Tulipa gesneriana",
    "item-0-quantity": "1200",
    "item-0-quantity_unit": "KGM",
    "item-0-package_count": "80",
    "item-0-package_type": "CT",
    "item-0-origin_country": "NL",
}
