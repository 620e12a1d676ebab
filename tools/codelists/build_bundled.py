"""Build the bundled public code lists and the UN/LOCODE asset from their upstream copies.

    python tools/codelists/build_bundled.py --pycountry-wheel pycountry-26.2.16-py3-none-any.whl
    python tools/codelists/build_bundled.py --check ...   # exit 1 if the package differs

Reads the copies in ../shared/conformance/codelists (their origins and licences are in
its SOURCES.md) and the pycountry 26.2.16 wheel (for the country names' translations:
`pip download pycountry==26.2.16 --no-deps -d /tmp/x`), and writes node/codelists/data/
{units,package_types,transport_modes,transport_means,countries}.json and
locations.tsv.gz. Every input is pinned by its SHA-256: a changed input stops the build
rather than change the lists unnoticed; a new edition is a change to this recipe
(docs/maintainers.md, "Publishing a new code list version"). The output is
deterministic: the same inputs give the same bytes.

Versions are "<year the copy was taken>.<edition>" (units 2026.17 is Recommendation 20
Revision 17 as taken in 2026): newer than the best-effort lists they replace, which
nodes and the registry require, and ordered for the editions to come.
"""

from __future__ import annotations

import argparse
import gettext
import gzip
import hashlib
import io
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from node.codelists.lists import CodeList, Retired
from node.codelists.locations import ASSET_NAME, Locations
from node.codelists.upstream import UNECE_NOTICE, Edition, parse_code_list, parse_locations
from node.errors import InputError

REPO: Final = Path(__file__).resolve().parents[2]
SHARED: Final = REPO.parent / "shared" / "conformance"
OUT: Final = REPO / "node" / "codelists" / "data"

# Path under ../shared/conformance -> SHA-256 of the copy this recipe was written for.
INPUTS: Final = {
    "codelists/unece_rec20_rev17_2021_units.csv": (
        "3210c9d87d7304adcc4945c616c9e616a6b96323bb44a6a3c2e0c153f51e519a"
    ),
    "codelists/unece_rec21_rev12_2021_package_types.csv": (
        "5b25e0ac93a44af0040b1cb890d4ab7a428cc7c776fe8552d83590edf6415a06"
    ),
    "codelists/unece_rec21_package_type_2006_from_D17A_xsd.csv": (
        "88e94842723f873eb47664499cdcd1331edae256d958b0b1994c409c59bcb0ba"
    ),
    "codelists/unece_rec19_transport_mode_v2_from_D17A_xsd.csv": (
        "f823e245a60ad308d951366e4fedf35226e636e5527c996b48fac81efa069546"
    ),
    "codelists/unece_rec28_transport_means_type_2007_from_D17A_xsd.csv": (
        "aca4660b48c768c0d980c8d2fe593bdd33fdb30f80504f4e98bcf9d216fb7931"
    ),
    "codelists/iso3166-1_pycountry-26.2.16.csv": (
        "673b7f18a9b6b1dcf5c2e1615e055c235aea84ffce38ba6a0823774222f95093"
    ),
    "codelists/unlocode_geoapify_all_codes.csv.gz": (
        "2924bef7a8d345e7372b1429a86c2e652c9bf80bc91e62e6758d98fdcdd82b5a"
    ),
    # The schema modules the Rec 19 and Rec 28 copies come from: their notice goes along.
    "xsd/uncefact-D17A/codelist/standard/UNECE_TransportModeCode_2.xsd": (
        "4c15579947e26080d8aee6bb8aa0e3db072ea1c75f2c8d096cd54bf0e07145db"
    ),
    "xsd/uncefact-D17A/codelist/standard/UNECE_TransportMeansTypeCode_2007.xsd": (
        "3e0bc129b7a4a87a2040b07c4be772ab0087fbdbbc37783fb4005bdd9b3b2350"
    ),
}
PYCOUNTRY_WHEEL: Final = "pycountry-26.2.16-py3-none-any.whl"
PYCOUNTRY_WHEEL_SHA256: Final = "115c4baf7cceaa30f59a4694d79483c9167dbce7a9de4d3d571c5f3ea77c305a"
# Languages of the country names: the UN's six, and those of many ePhyto partners.
# Key -> pycountry's locale folder ("zh" is Simplified Chinese, zh_CN).
LANGUAGES: Final = {
    "ar": "ar",
    "de": "de",
    "el": "el",
    "es": "es",
    "fr": "fr",
    "it": "it",
    "ja": "ja",
    "ko": "ko",
    "nl": "nl",
    "pt": "pt",
    "ru": "ru",
    "zh": "zh_CN",
}

D17A: Final = "matsubo/uncefact@ecd5aa36 (tag 2017_17a, UN/CEFACT D17A)"
TAKEN: Final = "taken 2026-12-07 into ../shared/conformance/codelists"

Read = Callable[[str], bytes]


def build(read: Read, wheel: bytes | None) -> dict[str, bytes]:
    """File name -> bytes of every file this recipe writes. `read` gives an input by its
    path under ../shared/conformance (checked against INPUTS). Without the wheel the
    countries carry no translations: the tests compare the rest where it is absent."""

    def pinned(path: str) -> bytes:
        data = read(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != INPUTS[path]:
            raise InputError(f"{path} is not the copy this recipe was written for ({digest})")
        return data

    lists = [
        _units(pinned),
        _package_types(pinned),
        _transport_modes(pinned),
        _transport_means(pinned),
        _countries(pinned, wheel),
    ]
    files = {f"{code_list.name}.json": code_list.to_json_bytes() for code_list in lists}
    files[ASSET_NAME] = _locations(pinned).to_asset_bytes()
    return files


def _units(pinned: Read) -> CodeList:
    path = "codelists/unece_rec20_rev17_2021_units.csv"
    return parse_code_list(
        pinned(path),
        "rec20",
        Edition(
            version="2026.17",
            source="UN/ECE Recommendation 20, Codes for Units of Measure Used in International "
            "Trade, Revision 17 (2021), Annexes II and III, complete: the spreadsheet "
            "rec20_Rev17e-2021.xlsx of quadient/unece-units@3a1b6098 "
            "(python/src/unece_excel_parser/files/rec20_Rev17e-2021.xlsx), as CSV, "
            f"{TAKEN}/unece_rec20_rev17_2021_units.csv",
            notice=f"{UNECE_NOTICE}\n"
            "The spreadsheet comes from quadient/unece-units (repository MIT licence, "
            "Copyright (c) 2023 Quadient); the list itself is UNECE's, unchanged but for "
            "blanks. Codes the revision marks X are under 'deleted', those it marks D "
            "under 'deprecated'; it does not say which revision deleted or deprecated "
            "each, hence 'Revision 17 (2021) or before'. The symbol of each unit is its "
            "attribute 'symbol'.",
            edition="Revision 17 (2021)",
        ),
    )


def _package_types(pinned: Read) -> CodeList:
    path = "codelists/unece_rec21_rev12_2021_package_types.csv"
    rev12 = parse_code_list(
        pinned(path),
        "rec21",
        Edition(
            version="2026.12",
            source="UN/ECE Recommendation 21, Codes for Passengers, Types of Cargo, Packages "
            "and Packaging Materials, Revision 12 (2021), Annexes V and VI: the spreadsheet "
            "rec21_Rev12e_Annex-V-VI_2021.xls of quadient/unece-units@3a1b6098 "
            "(python/src/unece_excel_parser/files/rec21_Rev12e_Annex-V-VI_2021.xls), as "
            f"CSV, {TAKEN}/unece_rec21_rev12_2021_package_types.csv",
            notice="",
            edition="Revision 12 (2021)",
        ),
    )
    # The D17A schema pins the 2006 list: a code of it that Revision 12 lacks is one a
    # revision since deleted, and a certificate from an old system may still carry it.
    path_2006 = "codelists/unece_rec21_package_type_2006_from_D17A_xsd.csv"
    list_2006 = _two_column(pinned(path_2006), "package_types_2006")
    since_2006 = "a revision between the 2006 list (the one the D17A schema pins) and Revision 12"
    gone = {
        code: Retired(label, since_2006)
        for code, label in list_2006.codes.items()
        if code not in rev12.codes and code not in rev12.deleted
    }
    newer = sorted(set(rev12.codes) - set(list_2006.codes))
    notice = (
        f"{UNECE_NOTICE}\n"
        "The spreadsheet comes from quadient/unece-units (repository MIT licence, Copyright "
        "(c) 2023 Quadient); the list itself is UNECE's, unchanged but for blanks. Codes "
        "the revision marks X are under 'deleted'. Against the 2006 list the D17A schema "
        f"pins ({D17A}: codelist/standard/UNECE_PackageTypeCode_2006.xsd, "
        f"{len(list_2006.codes)} codes): {len(gone)} of its codes are missing from "
        f"Revision 12 (under 'deleted'); {len(newer)} current codes of Revision 12 are newer "
        "than it, so the official D17A schema refuses them: "
        f"{' '.join(newer)}."
    )
    return CodeList(
        rev12.name,
        rev12.version,
        rev12.source,
        rev12.codes,
        notice=notice,
        deprecated=rev12.deprecated,
        deleted={**rev12.deleted, **gone},
        attributes=rev12.attributes,
    )


def _two_column(data: bytes, name: str) -> CodeList:
    return parse_code_list(data, "rec19", Edition("1", "a two-column copy"), name=name)


def _cefact_notice(xsd: bytes) -> str:
    """The UN/CEFACT copyright notice of a code list schema module, which its terms
    require on every copy and derivative work."""
    text = xsd.decode("utf-8")
    found = re.search(r"Copyright \(C\) UN/CEFACT.*?FITNESS FOR A PARTICULAR PURPOSE\.", text, re.S)
    if found is None:
        raise InputError("the schema module has no UN/CEFACT copyright notice")
    return found.group()


def _transport_modes(pinned: Read) -> CodeList:
    xsd = "xsd/uncefact-D17A/codelist/standard/UNECE_TransportModeCode_2.xsd"
    return parse_code_list(
        pinned("codelists/unece_rec19_transport_mode_v2_from_D17A_xsd.csv"),
        "rec19",
        Edition(
            version="2026.2",
            source="UN/ECE Recommendation 19, Codes for Modes of Transport, code list "
            f"version 2, as the D17A schema holds it: {D17A}: "
            "codelist/standard/UNECE_TransportModeCode_2.xsd, as CSV, "
            f"{TAKEN}/unece_rec19_transport_mode_v2_from_D17A_xsd.csv",
            notice=f"{_cefact_notice(pinned(xsd))}\n{UNECE_NOTICE}",
        ),
    )


def _transport_means(pinned: Read) -> CodeList:
    xsd = "xsd/uncefact-D17A/codelist/standard/UNECE_TransportMeansTypeCode_2007.xsd"
    return parse_code_list(
        pinned("codelists/unece_rec28_transport_means_type_2007_from_D17A_xsd.csv"),
        "rec28",
        Edition(
            version="2026.2007",
            source="UN/ECE Recommendation 28, Codes for Types of Means of Transport, code "
            f"list version 2007, as the D17A schema holds it: {D17A}: "
            "codelist/standard/UNECE_TransportMeansTypeCode_2007.xsd, as CSV, "
            f"{TAKEN}/unece_rec28_transport_means_type_2007_from_D17A_xsd.csv",
            notice=f"{_cefact_notice(pinned(xsd))}\n{UNECE_NOTICE}",
        ),
    )


def _countries(pinned: Read, wheel: bytes | None) -> CodeList:
    base = parse_code_list(
        pinned("codelists/iso3166-1_pycountry-26.2.16.csv"),
        "iso3166",
        Edition(
            version="2026.2.16",
            source="ISO 3166-1 (ISO 3166 Maintenance Agency) as PyPI pycountry 26.2.16 ships "
            "it (pycountry/databases/iso3166-1.json, from Debian's iso-codes), as CSV, "
            f"{TAKEN}/iso3166-1_pycountry-26.2.16.csv; labels in other languages from the "
            f"same wheel ({PYCOUNTRY_WHEEL}, sha256 {PYCOUNTRY_WHEEL_SHA256[:16]}...: "
            "pycountry/locales/<language>/LC_MESSAGES/iso3166-1.mo)",
            notice="ISO 3166-1 codes: ISO 3166 Maintenance Agency. Names and their "
            "translations: Debian's iso-codes project, as packaged in pycountry 26.2.16 "
            "(Copyright (c) 2008-2023 pycountry; iso-codes' translators), licensed under the "
            "GNU Lesser General Public License, version 2.1 or (at your option) any later "
            "version (https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html). This file is "
            "that data, converted; replace it with any newer list through an override "
            "directory (docs/operations.md, 'Code lists'). The label is the short name an "
            "inspector reads: pycountry's common name where it has one, ISO's short name "
            "otherwise (that one is then the attribute 'iso_name'). The translations are "
            "from the wheel's iso3166-1.mo catalogues, not from Debian's installed ones "
            "(iso-codes 4.15 here, whose translations differ from the wheel's); 'zh' is "
            "Simplified Chinese (zh_CN).",
        ),
    )
    translations = _translations(base, wheel) if wheel is not None else {}
    return CodeList(
        base.name,
        base.version,
        base.source,
        base.codes,
        notice=base.notice,
        attributes=base.attributes,
        translations=translations,
    )


def _translations(countries: CodeList, wheel: bytes) -> dict[str, dict[str, str]]:
    digest = hashlib.sha256(wheel).hexdigest()
    if digest != PYCOUNTRY_WHEEL_SHA256:
        raise InputError(f"the wheel is not {PYCOUNTRY_WHEEL} ({digest})")
    result: dict[str, dict[str, str]] = {}
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        for lang, folder in LANGUAGES.items():
            catalogue = archive.read(f"pycountry/locales/{folder}/LC_MESSAGES/iso3166-1.mo")
            messages = gettext.GNUTranslations(io.BytesIO(catalogue))
            known = _catalogue_keys(messages)
            labels: dict[str, str] = {}
            for code, label in countries.codes.items():
                # The catalogue is keyed by the English names; a common name it lacks may
                # still be there under ISO's short name.
                iso_name = countries.attributes.get(code, {}).get("iso_name", label)
                for english in (label, iso_name):
                    translated = messages.gettext(english)
                    if translated != english or english in known:
                        labels[code] = translated
                        break
            result[lang] = labels
    return result


def _catalogue_keys(messages: gettext.GNUTranslations) -> frozenset[str]:
    # A name the language writes as English does ("Canada" in French) is a translation
    # too, but gettext() cannot tell it from a missing one: only the catalogue can (which
    # GNUTranslations keeps in `_catalog`, with no public accessor).
    catalog: dict[str, str] = getattr(messages, "_catalog", {})
    return frozenset(k for k, v in catalog.items() if isinstance(k, str) and v)


def _locations(pinned: Read) -> Locations:
    path = "codelists/unlocode_geoapify_all_codes.csv.gz"
    data = gzip.decompress(pinned(path))
    return parse_locations(
        [data],
        Edition(
            version="2024.10.30",
            source="UN/LOCODE (about the 2024 edition), from geoapify/un-locode@2d18b092 "
            "(src/data/*.csv, one file per country, concatenated, latitude and longitude "
            "dropped; commit of 2024-10-30), "
            f"{TAKEN}/unlocode_geoapify_all_codes.csv.gz; only the locations with a "
            "transport function (1, 2, 3, 4, 6, 7, 8 or B)",
            notice="UN/LOCODE: a UNECE publication, (c) United Nations, published free of "
            "charge by UNECE (https://unece.org/trade/uncefact/unlocode). The copy is "
            "geoapify/un-locode's (repository MIT licence, Copyright (c) 2024 Geoapify). "
            "Its name column lost every diacritic to U+FFFD in a conversion, so the names "
            "here are its nameWoDiacritics column: 'Sao Paulo', not 'São Paulo' (search "
            "finds either). Its conversion also split the 1,040 names that hold a comma "
            "('Altenau, Muhlberg') into two columns, dropping their status and IATA code: "
            "those names are joined again here, without status or IATA code.",
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="../shared/conformance")
    parser.add_argument("--pycountry-wheel", type=Path, help=f"the {PYCOUNTRY_WHEEL} file")
    parser.add_argument("--out", type=Path, default=OUT, help="node/codelists/data")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if --out differs"
    )
    args = parser.parse_args(argv)
    if args.pycountry_wheel is None:
        parser.error("--pycountry-wheel is needed (pip download pycountry==26.2.16 --no-deps)")
    try:
        files = build(lambda p: (args.shared / p).read_bytes(), args.pycountry_wheel.read_bytes())
    except (InputError, OSError) as exc:
        print(f"build_bundled: {exc}", file=sys.stderr)
        return 2
    differ = [name for name, data in files.items() if not _same(args.out / name, data)]
    if args.check:
        for name in differ:
            print(f"{args.out / name} differs from what the recipe builds")
        return 1 if differ else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in differ:
        (args.out / name).write_bytes(files[name])
        print(f"wrote {args.out / name}")
    return 0


def _same(path: Path, data: bytes) -> bool:
    if not path.is_file():
        return False
    if path.suffix == ".gz":
        # Another zlib may pack the same text into other bytes: the text is what counts.
        return gzip.decompress(path.read_bytes()) == gzip.decompress(data)
    return path.read_bytes() == data


if __name__ == "__main__":
    sys.exit(main())
