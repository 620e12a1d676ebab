"""Certificates built with the model for the PDF and ISPM 12 view tests, and the code lists
they are named from (short ISO 3166 names with translations, as the bundled list has them)."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from node.certificate import model as m
from node.codelists.lists import CodeList, CodeLists, bundled

ISSUED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
TREATED = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

COUNTRIES = CodeList(
    "countries",
    "2024",
    "test: short names as the ISO 3166-1 list gives them",
    {
        "AE": "United Arab Emirates",
        "CL": "Chile",
        "CN": "China",
        "GR": "Greece",
        "NL": "Netherlands",
        "RU": "Russia",
    },
    translations={
        "es": {"CL": "Chile", "CN": "China", "NL": "Países Bajos"},
        "ar": {"AE": "الإمارات العربية المتحدة", "NL": "هولندا"},
        "zh": {"CN": "中国", "CL": "智利"},
    },
)
TREATMENT_TYPES = CodeList(
    "treatment_types",
    "2024",
    "test: IPPC treatment types",
    {"PHT": "Physical treatment", "CHT": "Chemical treatment", "CT": "Cold treatment"},
    translations={"es": {"PHT": "Tratamiento físico", "CT": "Tratamiento en frío"}},
)


def lists() -> CodeLists:
    """The bundled lists with the test's countries and treatment types."""
    return CodeLists(
        {**bundled().lists, "countries": COUNTRIES, "treatment_types": TREATMENT_TYPES}
    )


def item(
    n: int, produce: str = "Fresh apples", botanical: str = "Malus domestica"
) -> m.TradeLineItem:
    """Line item `n`: fruit in cartons, cold-treated."""
    return m.TradeLineItem(
        sequence=n,
        descriptions=(m.Text(f"{produce} lot {n}"),),
        common_names=(m.Text("Apple"),),
        scientific_names=(m.Text(botanical),),
        net_weight=m.Measure(Decimal(18000 + n), "KGM"),
        packages=(m.Package("1", "CT", Decimal(1200 + n), marks=(f"CL-LOT-{n:03}",)),),
        origin_countries=(m.Country("CL", subdivisions=(m.Text("Región del Maule"),)),),
        treatments=(
            m.Treatment(
                type_code="ZZZ",
                start=TREATED,
                duration=m.Measure(Decimal(14), "DAY"),
                characteristics=(
                    m.ProcessCharacteristic((m.Text("TTL1"), m.Text("CT"))),
                    m.ProcessCharacteristic((m.Text("TTTM"),), m.Measure(Decimal("0.5"), "CEL")),
                ),
            ),
        ),
    )


def certificate(
    n_items: int = 1,
    *,
    language: str | None = None,
    exporter: str = "Frutícola del Maule S.A.",
    consignee: str = "Beijing Fresh Fruit Import Co., Ltd.",
    consignee_language: str | None = None,
    officer: str = "María José Pérez",
    issuer: str = "Servicio Agrícola y Ganadero (SAG)",
    export_country: m.Country | None = None,
    import_country: m.Country | None = None,
    place: str = "Valparaíso",
) -> m.Certificate:
    """A Chile-to-China apples certificate with `n_items` line items."""
    return m.Certificate(
        number="CL-2026-000451",
        type_code=m.PHYTOSANITARY,
        status_code="70",
        issue_datetime=ISSUED,
        names=(m.Text("Phytosanitary Certificate", language),),
        issuer=m.Party(name=m.Text(issuer)),
        signatories=(
            m.Authentication(
                issue_location=m.Location("CLVAP", (m.Text(place),)),
                officer_name=m.Text(officer),
                actual_datetime=ISSUED,
            ),
        ),
        notes=(m.Note("ADEDL", (m.Text("The fruit was found free from Cydia pomonella."),)),),
        consignment=m.Consignment(
            consignor=m.Party(
                name=m.Text(exporter),
                address=m.Address(
                    line_one="Camino a Talca 1200", city_name="Curicó", country_id="CL"
                ),
            ),
            consignee=m.Party(
                name=m.Text(consignee, consignee_language),
                address=m.Address(
                    line_one="Chaoyang District", city_name="Beijing", country_id="CN"
                ),
            ),
            export_country=export_country or m.Country("CL"),
            import_country=import_country or m.Country("CN"),
            examination_location=m.Location(names=(m.Text("Curicó"),)),
            unloading_location=m.Location("CNTXG", (m.Text("Tianjin"),)),
            transport_movements=(m.TransportMovement("1", "MSCU-4471", m.Text("MSC Aurora")),),
            items=tuple(item(n) for n in range(1, n_items + 1)),
        ),
    )


def with_items(cert: m.Certificate, items: tuple[m.TradeLineItem, ...]) -> m.Certificate:
    """The certificate with other line items."""
    return replace(cert, consignment=replace(cert.consignment, items=items))


def tool(name: str) -> str:
    """A poppler-utils program, or skip saying why."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} (poppler-utils) is not installed: apt-get install poppler-utils")
    return path


def pdftotext(pdf: bytes, tmp_path: Path, *args: str) -> str:
    """What pdftotext extracts from the PDF (UTF-8), with `args` such as -f 2 -l 2."""
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        [tool("pdftotext"), "-enc", "UTF-8", *args, str(path), "-"],
        capture_output=True,
        check=True,
    )
    return out.stdout.decode("utf-8")


def pages(pdf: bytes, tmp_path: Path) -> list[str]:
    """The text of each page, extracted one page at a time (-f n -l n)."""
    count = pdftotext(pdf, tmp_path).count("\f")
    return [pdftotext(pdf, tmp_path, "-f", str(n), "-l", str(n)) for n in range(1, count + 1)]


def words(text: str) -> set[str]:
    """The whitespace-separated words of extracted text, without the bidi controls
    (category Cf) pdftotext puts around right-to-left runs."""
    plain = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return set(plain.split())
