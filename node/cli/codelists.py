"""`ephyto codelists ...`: see and update the harmonised code lists."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from node.cli import codelists_sync
from node.codelists.directory import load_directory
from node.codelists.lists import (
    MAX_BYTES,
    CodeList,
    CodeLists,
    bundled,
    uncefact_codelist_from_xsd,
    version_key,
)
from node.codelists.locations import ASSET_NAME, FUNCTION_CODES, MAX_RESULTS
from node.codelists.upstream import (
    ENCODINGS,
    FORMATS,
    MAX_LOCODE_BYTES,
    TITLES,
    Edition,
    detect_format,
    parse_code_list,
    parse_locations,
)
from node.errors import ConfigError, InputError
from node.fileio import write_atomic

IMPORT_FORMATS: Final = (*FORMATS, "xsd", "json")
# --function of `ports`: a word -> the UN/LOCODE function classifiers it takes.
PORT_FUNCTIONS: Final = {
    **{word: frozenset(code) for word, code in FUNCTION_CODES.items()},
    # Any port: UN/LOCODE marks sea ports 1, and river and lake ports 1 or (newer) 8.
    "port": frozenset("18"),
    "any": frozenset(),
}


def add_parser(commands: Any) -> None:
    lists = commands.add_parser(
        "codelists",
        help="list, show and update the harmonised code lists",
        description="The harmonised code lists used by validation: bundled, versioned data, "
        "updated by dropping newer versions into a directory (--dir) that validation reads "
        "with --codelists-dir.",
    )
    sub = lists.add_subparsers(dest="codelists_command", metavar="ACTION", required=True)

    show_all = sub.add_parser("list", help="list the code lists and their versions")
    show_all.add_argument(
        "--dir", type=Path, metavar="DIR", help="include the newer lists installed in DIR"
    )
    show_all.set_defaults(func=_list)

    show = sub.add_parser("show", help="print the codes of one list")
    show.add_argument("name", metavar="NAME")
    show.add_argument(
        "--dir", type=Path, metavar="DIR", help="include the newer lists installed in DIR"
    )
    show.set_defaults(func=_show)

    install = sub.add_parser(
        "import",
        help="install a newer list from its upstream file (UNECE CSV, ISO, UN/LOCODE, XSD, JSON)",
        description="Install a newer version of a list into DIR. FILE is an upstream file: "
        "UN/ECE Rec 20 units or Rec 21 package types (CSV of the UNECE spreadsheet), "
        "Rec 19 or Rec 28 (code,name CSV), ISO 3166-1 (pycountry's CSV), UN/LOCODE (the "
        "UNECE CodeListPart1/2/3.csv files, all at once, or a code-list.csv; replaces the "
        "locations), a UN/CEFACT code list XSD, or a code list JSON file. The format is "
        "told from the file's first line where it can be, else give --format. Refused "
        "unless it is newer than the version in force (docs/operations.md, 'Code lists').",
    )
    install.add_argument("file", type=Path, nargs="+", metavar="FILE")
    install.add_argument("--dir", type=Path, required=True, metavar="DIR")
    install.add_argument("--format", choices=IMPORT_FORMATS, help="the file's format")
    install.add_argument(
        "--name", help="list name (for an XSD, or another than the format's), e.g. units"
    )
    install.add_argument(
        "--version", help="version to install it as (for all but JSON), e.g. 2027.18"
    )
    install.add_argument("--source", default="", help="where the list comes from")
    install.add_argument(
        "--edition",
        default="",
        help="how messages name the edition whose deleted and deprecated marks the file "
        "carries, e.g. 'Revision 18 (2023)' (default: 'version V')",
    )
    install.add_argument(
        "--encoding",
        choices=ENCODINGS,
        help="the file's encoding (default UTF-8; UNECE's UN/LOCODE files: found out)",
    )
    install.set_defaults(func=_import)

    ports = sub.add_parser(
        "ports",
        help="find UN/LOCODE locations (ports, airports, border crossings) by name or code",
        description="Search the UN/LOCODE locations that have a transport function, by "
        "code, code prefix or name (with or without diacritics, any case); best matches "
        "first: exact code, exact name, prefix, part of a name.",
    )
    ports.add_argument("query", metavar="QUERY")
    ports.add_argument("--country", metavar="XX", help="only in this country (ISO alpha-2)")
    ports.add_argument(
        "--function",
        choices=sorted(PORT_FUNCTIONS),
        default="any",
        help="only locations with this function (port: sea or inland; default any)",
    )
    ports.add_argument("--limit", type=int, default=20, help="at most N results (default 20)")
    ports.add_argument("--json", action="store_true", help="print JSON (for a picker)")
    ports.add_argument(
        "--dir", type=Path, metavar="DIR", help="include newer locations installed in DIR"
    )
    ports.set_defaults(func=_ports)
    codelists_sync.add_parser(sub)


def _current(directory: Path | None) -> CodeLists:
    lists = bundled()
    return lists if directory is None else load_directory(directory, lists)


def _list(args: argparse.Namespace) -> int:
    lists = _current(args.dir)
    for name, version in sorted(lists.versions().items()):
        codes = lists.get(name)
        print(
            f"{name:<24}{version:<14}{len(codes.codes):>6} codes  {_quality(codes)}{codes.source}"
        )
    if lists.locations is not None:
        header = lists.locations.header  # the first line: the rest loads only for a search
        print(f"{'locations':<24}{header.version:<14}{header.count:>6} places {header.source}")
    return 0


def _quality(codes: CodeList) -> str:
    """A warning in front of a list's source when some of its codes are ours, not official."""
    if not codes.placeholders:
        return ""
    if codes.is_placeholder:
        return "[PLACEHOLDER] "
    return f"[{len(codes.placeholders)} PLACEHOLDER] "


def _show(args: argparse.Namespace) -> int:
    codes = _current(args.dir).get(args.name)
    print(f"# {codes.name} version {codes.version}: {codes.source}")
    if codes.notice:
        for line in codes.notice.splitlines():
            print(f"# {line}".rstrip())
    if codes.placeholders:
        print(
            "# entries marked PLACEHOLDER are not from an official list: import or sync the "
            "official one (docs/operations.md, code lists)"
        )
    for code, label in sorted(codes.codes.items()):
        marks = []
        if code in codes.placeholders:
            marks.append("PLACEHOLDER")
        if code in codes.deprecated:
            marks.append(f"deprecated in {codes.deprecated[code]}")
        suffix = f"\t[{'; '.join(marks)}]" if marks else ""
        print(f"{code}\t{label}{suffix}")
    for code, retired in sorted(codes.deleted.items()):
        print(f"{code}\t{retired.label}\t[deleted in {retired.edition}]")
    return 0


def _import(args: argparse.Namespace) -> int:
    files: list[Path] = args.file
    fmt = args.format or _format_of(files[0])
    if fmt == "unlocode":
        return _import_locations(args, files)
    if len(files) > 1:
        raise InputError("give one FILE: only UN/LOCODE comes in several (--format unlocode)")
    file = files[0]
    data = _read(file, MAX_BYTES)
    if fmt == "json":
        new = CodeList.from_json_bytes(data)
    elif fmt == "xsd":
        if not args.name or not args.version:
            raise InputError(f"{file}: importing an XSD needs --name and --version")
        new = uncefact_codelist_from_xsd(data, args.name, args.version, args.source)
    else:
        edition = _edition(args, fmt, file)
        new = parse_code_list(data, fmt, edition, name=args.name, encoding=args.encoding)
    installed = _current(args.dir if args.dir.is_dir() else None)
    installed.updated_with(new)  # refuses an older or equal version, says which
    args.dir.mkdir(parents=True, exist_ok=True)
    target = args.dir / f"{new.name}.json"
    target.write_bytes(new.to_json_bytes())
    retired = f", {len(new.deleted)} deleted" if new.deleted else ""
    print(
        f"installed {new.name} version {new.version} ({len(new.codes)} codes{retired}) in {target}"
    )
    return 0


def _format_of(file: Path) -> str:
    suffix = file.suffix.lower()
    if suffix in (".json", ".xsd"):
        return suffix[1:]
    with file.open("rb") as stream:
        first = stream.read(4096)
    fmt = detect_format(first)
    if fmt is None:
        raise InputError(
            f"{file}: its first line does not say which list it is: give --format "
            f"({', '.join(IMPORT_FORMATS)})"
        )
    return fmt


def _edition(args: argparse.Namespace, fmt: str, file: Path) -> Edition:
    if not args.version:
        raise InputError(
            f"{file}: give --version (the file does not say its edition), newer than the "
            "one in force: `ephyto codelists list`"
        )
    source = args.source or f"{TITLES[fmt]}, imported from {file.name}"
    return Edition(args.version, source, edition=args.edition)


def _read(file: Path, cap: int) -> bytes:
    # Refused before reading: a file many times the cap must not be read into memory.
    if file.stat().st_size > cap:
        raise InputError(f"{file} is larger than {cap} bytes")
    return file.read_bytes()


def _import_locations(args: argparse.Namespace, files: list[Path]) -> int:
    if args.name:
        raise InputError("--name does not apply to UN/LOCODE: it replaces the locations")
    edition = _edition(args, "unlocode", files[0])
    if not args.source:
        names = ", ".join(f.name for f in files)
        edition = Edition(edition.version, f"{TITLES['unlocode']}, imported from {names}")
    total = sum(f.stat().st_size for f in files)
    if total > MAX_LOCODE_BYTES:
        raise InputError(f"the UN/LOCODE files are larger than {MAX_LOCODE_BYTES} bytes")
    new = parse_locations([f.read_bytes() for f in files], edition, encoding=args.encoding)
    installed = _current(args.dir if args.dir.is_dir() else None).locations
    if installed is not None and version_key(new.version) <= version_key(installed.version):
        raise InputError(
            f"locations version {new.version} is not newer than the installed version "
            f"{installed.version}"
        )
    args.dir.mkdir(parents=True, exist_ok=True)
    target = args.dir / ASSET_NAME
    write_atomic(target, new.to_asset_bytes(), 0o644)
    print(
        f"installed UN/LOCODE locations version {new.version} ({len(new)} with a transport "
        f"function) in {target}"
    )
    return 0


def _ports(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_RESULTS:
        raise InputError(f"--limit must be 1 to {MAX_RESULTS}")
    source = _current(args.dir).locations
    if source is None:
        raise ConfigError("no UN/LOCODE locations are installed")
    country = args.country.upper() if args.country else None
    found = source.get().search(
        args.query, country=country, functions=PORT_FUNCTIONS[args.function], limit=args.limit
    )
    if args.json:
        print(json.dumps([location.to_json() for location in found], ensure_ascii=False))
    else:
        for location in found:
            # Tab-separated, for a script; other names (without diacritics, aliases) last.
            also = "; ".join(location.names()[1:])
            fields = (location.code, location.name, location.subdivision)
            functions = ", ".join(location.functions)
            line = "\t".join((*fields, functions, location.status))
            print(f"{line}\t({also})" if also else line)
    if not found:
        print(f"no location matches {args.query!r}", file=sys.stderr)
        return 1
    return 0
