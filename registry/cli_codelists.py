"""`ephyto registry codelists ...` and `ephyto registry schemas ...`: what the registry
publishes besides the NPPOs: the harmonised code lists and the schema versions in force."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from node.certificate.versions import SCHEMA_VERSIONS
from node.codelists.lists import MAX_BYTES
from node.directory import SchemaVersion
from node.errors import InputError
from node.identity.enrolment import format_time, parse_time
from registry.cli_common import Command, actor, named_signer, read_at_most
from registry.codelists import import_code_lists, kept_lists
from registry.publish import RegistryError
from registry.schemas import retire_schema, schemas, set_schema
from registry.state import RegistryState


def add_parsers(sub: Any, command: Command) -> None:
    """Add `codelists` and `schemas` to `ephyto registry`; `command` makes a parser with --dir.

    Each action has its own --dir too (argparse lets a sub-action's default overwrite
    the parent's value, so theirs default to nothing and leave the parent's alone).
    """
    lists = command(
        sub,
        "codelists",
        _list_codelists,
        "list the code lists the registry publishes (name, version, SHA-256), or import a"
        " newer version of one (`codelists import FILE`)",
    )
    lists_sub = lists.add_subparsers(dest="codelists_action", metavar="ACTION")
    _action(lists_sub, "list", _list_codelists, "list the code lists the registry publishes")
    imp = _action(
        lists_sub,
        "import",
        _import_codelist,
        "keep newer versions of code lists (code list JSON files, as `ephyto codelists"
        " show` describes, or a folder of them such as `ephyto codelists sync` writes);"
        " published by the next publish; all or nothing: refused, keeping none, unless each"
        " is newer (a file kept already, byte for byte, is passed over)",
    )
    imp.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE|DIR",
        help="a code list JSON file, or a folder whose *.json files are code lists",
    )
    _maintainer(imp)

    schema = command(
        sub,
        "schemas",
        _list_schemas,
        "list the SPSCertificate schema versions the network accepts and their transition"
        " dates, or change them (`schemas set`, `schemas retire`)",
    )
    schema_sub = schema.add_subparsers(dest="schemas_action", metavar="ACTION")
    _action(schema_sub, "list", _list_schemas, "list the schema versions and their dates")
    put = _action(
        schema_sub,
        "set",
        _set_schema,
        "announce a schema version in force from DATE (until DATE, if given), or change the"
        " dates of a listed one; effective at the next publish",
    )
    put.add_argument("version", metavar="VERSION", help="e.g. D20B")
    put.add_argument("--from", dest="valid_from", required=True, metavar="DATE", help=_DATE)
    put.add_argument("--until", dest="valid_until", metavar="DATE", help=_DATE + " (optional)")
    _maintainer(put)
    retire = _action(
        schema_sub,
        "retire",
        _retire_schema,
        "retire a schema version at DATE; refused if no version would be left in force",
    )
    retire.add_argument("version", metavar="VERSION", help="e.g. D17A")
    retire.add_argument("--at", required=True, metavar="DATE", help=_DATE)
    _maintainer(retire)


_DATE = "2027-01-01 (midnight UTC) or 2027-01-01T12:00:00Z"


def _action(sub: Any, name: str, func: Any, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text + ".")
    parser.add_argument(
        "--dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        dest="directory",
        help="the registry directory (default: as given before the action, else ./ephyto-registry)",
    )
    parser.set_defaults(func=func)
    return parser


def _maintainer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--maintainer",
        metavar="NAME",
        help="the maintainer acting; signs with their key (default: the first held here)",
    )
    parser.add_argument(
        "--key", type=Path, metavar="FILE", help="that maintainer's private key (with --maintainer)"
    )


def _list_codelists(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    current = state.current()
    published = {} if current is None else current.code_list_versions()
    print(f"{'name':<24}{'version':<14}{'codes':>6}  sha256")
    for name, entry in sorted(kept_lists(state.root).items()):
        lst = entry.code_list
        note = "" if published.get(name) == lst.version else "  (not yet published)"
        print(f"{name:<24}{lst.version:<14}{len(lst.codes):>6}  {entry.sha256}{note}")
    return 0


def _import_codelist(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    files = [(str(path), read_at_most(path, MAX_BYTES)) for path in _json_files(args.files)]
    signer = named_signer(state, args)
    imported = import_code_lists(state, files, datetime.now(UTC), actor(), signer)
    for kept in imported.kept:
        lst = kept.code_list
        print(f"kept code list {lst.name} version {lst.version} ({len(lst.codes)} codes)")
        print(f"  sha256   {kept.sha256}")
        print(f"  length   {len(kept.data)} bytes")
    for same in imported.already:
        print(f"code list {same.name} version {same.version}: kept already, passed over")
    if imported.kept:
        print("run `ephyto registry publish`: nodes fetch them after their next directory refresh")
    return 0


def _json_files(paths: list[Path]) -> list[Path]:
    """The files named, a folder standing for its *.json files; InputError for a folder
    without any."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise InputError(f"{path}: no code list (*.json) in this folder")
            files += found
        else:
            files.append(path)
    return files


def _list_schemas(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    _print_schemas(schemas(state), datetime.now(UTC))
    return 0


def _set_schema(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    until = None if args.valid_until is None else _time(args.valid_until, "--until")
    now = datetime.now(UTC)
    change = set_schema(
        state, args.version, _time(args.valid_from, "--from"), until, now, actor(),
        named_signer(state, args),
    )  # fmt: skip
    print(f"recorded {args.version}; effective at the next publish")
    if args.version not in SCHEMA_VERSIONS:
        print(
            f"  note: nodes of this release speak {', '.join(SCHEMA_VERSIONS)} only; they"
            f" cannot send in {args.version} until they are upgraded"
        )
    _print_schemas(change, now)
    return 0


def _retire_schema(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    now = datetime.now(UTC)
    change = retire_schema(
        state, args.version, _time(args.at, "--at"), now, actor(), named_signer(state, args)
    )
    print(f"retired {args.version}; effective at the next publish")
    _print_schemas(change, now)
    return 0


def _print_schemas(items: tuple[SchemaVersion, ...], now: datetime) -> None:
    for s in items:
        until = (
            "no end announced" if s.valid_until is None else f"until {format_time(s.valid_until)}"
        )
        state = (
            "in force" if s.in_force(now) else ("retired" if s.valid_from <= now else "announced")
        )
        print(f"  {s.version:<8}from {format_time(s.valid_from)}  {until:<32}{state}")


def _time(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an RFC 3339 UTC time; RegistryError saying the forms."""
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        pass
    try:
        return parse_time(text, option)
    except InputError:
        raise RegistryError(f"{option} {text!r}: expected {_DATE}") from None
