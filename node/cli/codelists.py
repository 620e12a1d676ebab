"""`ephyto codelists ...`: see and update the harmonised code lists."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.codelists.directory import load_directory
from node.codelists.lists import (
    CodeList,
    CodeLists,
    bundled,
    uncefact_codelist_from_xsd,
)
from node.errors import InputError


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
        help="install a newer list from an official UN/CEFACT code list XSD or a JSON list",
        description="Install a newer version of a list into DIR. FILE is a UN/CEFACT code "
        "list XSD (with --name, --version, --source) or a code list JSON file. Refused "
        "unless it is newer than the version in force.",
    )
    install.add_argument("file", type=Path, metavar="FILE")
    install.add_argument("--dir", type=Path, required=True, metavar="DIR")
    install.add_argument("--name", help="list name (for an XSD), e.g. units")
    install.add_argument("--version", help="list version (for an XSD), e.g. 2024")
    install.add_argument("--source", default="", help="where the list comes from (for an XSD)")
    install.set_defaults(func=_import)


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
    data = args.file.read_bytes()
    if args.file.suffix.lower() == ".json":
        new = CodeList.from_json_bytes(data)
    else:
        if not args.name or not args.version:
            raise InputError(f"{args.file}: importing an XSD needs --name and --version")
        new = uncefact_codelist_from_xsd(data, args.name, args.version, args.source)
    installed = _current(args.dir if args.dir.is_dir() else None)
    installed.updated_with(new)  # refuses an older or equal version, says which
    args.dir.mkdir(parents=True, exist_ok=True)
    target = args.dir / f"{new.name}.json"
    target.write_bytes(new.to_json_bytes())
    print(f"installed {new.name} version {new.version} ({len(new.codes)} codes) in {target}")
    return 0
