"""`ephyto registry propose | sign | keygen | maintainers` and `publish --signed`.

Maintainers sign a directory version in turn, each on their own machine: the registry
proposes a file, it travels from maintainer to maintainer (`sign` needs only the file
and one key, no registry), and comes back to be published. The maintainer set changes
the same way, as TUF rotates root. docs/maintainers.md has the procedures; ADR 0007 why.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.directory import Directory, DirectoryError, MaintainerSet, add_signatures
from node.directory.signing import DEFAULT_MAX_BYTES, parse_signed, require_threshold
from node.fileio import write_atomic, write_exclusive
from node.identity.keys import load_signing_key, private_key_pem
from registry.cli_common import Command, actor, named_signer, read_at_most
from registry.maintainer_set import (
    PUBLIC_SUFFIX,
    add_key,
    describe_change,
    describe_set,
    parse_public_entry,
    public_entry,
    read_pending,
    remove_key,
    retired_sets,
    with_threshold,
    write_pending,
)
from registry.proposal import (
    Proposal,
    SignatureCount,
    count_signatures,
    propose,
    publish_signed,
    signer_entry,
    summary_lines,
)
from registry.publish import RegistryError, parse_duration
from registry.state import RegistryState

MAINTAINER_ACTIONS = ("show", "add", "remove", "threshold", "cancel")


def add_parsers(sub: Any, command: Command) -> None:
    """Add the commands to `ephyto registry`; `command` makes a parser with --dir."""
    prop = command(
        sub,
        "propose",
        _propose,
        "build the next directory version as publish would, sign it with the maintainer"
        " keys held here (if any) and write it to proposed/<version>.json for the"
        " maintainers to sign in turn",
    )
    prop.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="how long nodes may use this version: 90d, 36h, 90m (default: the registry's"
        " setting, `registry settings`), counted from now: propose, sign and publish well"
        " within it",
    )

    sign = sub.add_parser(
        "sign",
        help="add your maintainer signature to a proposed directory version (no registry"
        " needed: the file and your key)",
        description="Show what a proposed directory version says, then sign it with your"
        " maintainer key and write it back (atomically). Needs no registry directory.",
    )
    sign.add_argument("file", type=Path, metavar="FILE", help="the proposed <version>.json")
    sign.add_argument(
        "--key", type=Path, required=True, metavar="KEYFILE", help="your maintainer private key"
    )
    sign.add_argument(
        "--out", type=Path, metavar="FILE", help="write the signed file here (default: FILE)"
    )
    sign.add_argument(
        "--previous",
        type=Path,
        metavar="FILE",
        help="the current trust anchor (maintainers.json) or directory.json: shows the"
        " changes and, when the version changes the maintainer set, lets a maintainer of"
        " the current set sign",
    )
    sign.add_argument("--yes", action="store_true", help="sign without asking")
    sign.set_defaults(func=_sign)

    keygen = sub.add_parser(
        "keygen",
        help="make a new maintainer key on your own machine, and the public entry to send"
        " to the registry",
        description="Make a new maintainer Ed25519 key (<key id>.key, mode 0600) and its"
        " public entry (<key id>.pub.json) in DIR; nothing is ever overwritten. Send the"
        " public entry to the registry (`ephyto registry maintainers add`).",
    )
    keygen.add_argument("--name", required=True, metavar="NAME", help="your maintainer name")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    keygen.set_defaults(func=_keygen)

    maintainers = command(
        sub,
        "maintainers",
        _maintainers,
        "show the maintainer set and a pending change, or record a change (add PUBLIC.json,"
        " remove NAME, threshold N, cancel) that the next published version carries",
    )
    maintainers.add_argument(
        "action", nargs="?", default="show", choices=MAINTAINER_ACTIONS, metavar="ACTION",
        help="show (default), add PUBLIC.json, remove NAME, threshold N, or cancel",
    )  # fmt: skip
    maintainers.add_argument("value", nargs="?", metavar="ARG", help="the file, name or number")
    maintainers.add_argument(
        "--maintainer", metavar="NAME", help="the maintainer recording it (signs the audit line)"
    )
    maintainers.add_argument("--key", type=Path, metavar="FILE", help="that maintainer's key")


def publish_signed_command(args: argparse.Namespace) -> int:
    """`publish --signed FILE [--signed FILE ...]`."""
    state = RegistryState(args.directory)
    documents = [_read_document(path) for path in args.signed]
    directory, _ = publish_signed(state, documents, datetime.now(UTC), actor())
    print(f"published directory version {directory.version} (signed in turn)")
    _print_published(state, directory)
    return 0


def _propose(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    proposal = propose(
        state,
        datetime.now(UTC),
        actor(),
        validity=None if args.expires_in is None else parse_duration(args.expires_in),
    )
    print(f"proposed directory version {proposal.doc.directory.version}: {proposal.path}")
    for line in summary_lines(
        proposal.doc, previous=proposal.previous, previous_set=proposal.current_set
    ):
        print(f"  {line}")
    if all(c.enough for c in _counts(proposal)):
        print(f"enough signatures: `ephyto registry publish --signed {proposal.path}`")
        return 0
    print(
        "next: send the file to the maintainers; each signs it on their own machine,"
        f" `ephyto registry sign {proposal.path.name} --key KEYFILE`, and passes it on;"
        f" then `ephyto registry publish --signed FILE` here"
    )
    return 0


def _counts(proposal: Proposal) -> list[SignatureCount]:
    own = proposal.doc.directory.maintainers
    sets = [own] if own == proposal.current_set else [proposal.current_set, own]
    return [count_signatures(proposal.doc, s) for s in sets]


def _sign(args: argparse.Namespace) -> int:
    data = _read_document(args.file)
    try:
        doc = parse_signed(data)
    except DirectoryError as exc:
        raise RegistryError(f"{args.file} is not a directory document: {exc}") from None
    key = load_signing_key(args.key.read_bytes(), str(args.key))
    kid = key_id(key.public_key().public_bytes_raw())
    previous, previous_set = _read_previous(args.previous)
    if previous is not None and doc.directory.version != previous.version + 1:
        raise RegistryError(
            f"{args.file} holds version {doc.directory.version}, not the version after"
            f" {previous.version} in {args.previous}: nothing signed"
        )
    entry = signer_entry(doc, kid, previous_set)
    for line in summary_lines(doc, previous=previous, previous_set=previous_set):
        print(line)
    own = doc.directory.maintainers
    print(f"you sign as {entry.name} ({kid})")
    if own.key(kid) is None:
        print(
            "  your key is in the current maintainer set, not in the new one: you sign to"
            " approve the change (a threshold of the current set must)"
        )
    elif previous_set is None:
        print(
            "  your key is in this version's own maintainer set. If it changes the set, a"
            " threshold of the current set must sign too (pass --previous to see them)"
        )
    if not args.yes and not _confirm(f"sign directory version {doc.directory.version}?"):
        raise RegistryError("not signed: nothing changed (answer y, or pass --yes)")
    signed = add_signatures(data, [key])
    out: Path = args.out or args.file
    write_atomic(out, signed, 0o644)
    after = parse_signed(signed)
    print(f"signed: {out}")
    if previous_set is not None and previous_set != own:
        print(f"  current set {count_signatures(after, previous_set).line()}")
        print(f"  new set     {count_signatures(after, own).line()}")
    else:
        print(f"  signatures  {count_signatures(after, own).line()}")
    print(
        "pass the file to the next maintainer, or back to the registry:"
        f" `ephyto registry publish --signed {out.name}`"
    )
    return 0


def _keygen(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in out.glob(f"*{PUBLIC_SUFFIX}"):
        try:
            existing = parse_public_entry(path.read_bytes(), str(path))
        except RegistryError:
            continue
        if existing.name == args.name:
            raise RegistryError(
                f"{path} already holds a key of {args.name} ({existing.key_id}): nothing"
                " written (choose another --out to make a second one)"
            )
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    entry = public_entry(args.name, public)  # refuses a name the directory would refuse
    kid = key_id(public)
    key_path, public_path = out / f"{kid}.key", out / f"{kid}{PUBLIC_SUFFIX}"
    write_exclusive(key_path, private_key_pem(key), 0o600)
    write_exclusive(public_path, entry, 0o644)
    print(f"made maintainer key {kid} for {args.name}")
    print(f"  private key  {key_path} (mode 0600: keep it on this machine)")
    print(f"  public entry {public_path}: send it to the registry, and read the key id to")
    print("               the other maintainers by another channel (phone) to confirm it")
    print(entry.decode("utf-8"), end="")
    return 0


def _maintainers(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    folder = state.root / "maintainers"
    current = state.maintainers
    pending = read_pending(folder)
    if args.action == "show":
        if args.value is not None:
            raise RegistryError("`maintainers` shows the sets: it takes no argument")
        _show_sets(current, pending, len(retired_sets(folder)))
        return 0
    if args.action == "cancel":
        if pending is None:
            raise RegistryError("no maintainer-set change is pending: nothing to cancel")
        write_pending(folder, None)
        state.audit(
            "maintainers-cancel",
            actor(),
            datetime.now(UTC),
            {"dropped": describe_change(current, pending)},
            named_signer(state, args),
        )
        print("the pending maintainer-set change is dropped; the set stays as it is")
        return 0
    if args.value is None:
        what = {"add": "PUBLIC.json", "remove": "NAME", "threshold": "N"}[args.action]
        raise RegistryError(f"`maintainers {args.action}` needs {what}")
    base = pending or current
    if args.action == "add":
        path = Path(args.value)
        with path.open("rb") as f:
            key = parse_public_entry(f.read(64 * 1024), str(path))
        new = add_key(base, key)
    elif args.action == "remove":
        new = remove_key(base, args.value)
    else:
        if not args.value.strip().isdigit():
            raise RegistryError(f"threshold {args.value!r}: expected a whole number")
        new = with_threshold(base, int(args.value))
    details: dict[str, Any] = {"action": args.action, "argument": args.value}
    if new == current:
        write_pending(folder, None)
        details["pending"] = None
        print("this undoes the pending change: no maintainer-set change is pending now")
    else:
        write_pending(folder, new)
        details["pending"] = describe_change(current, new)
        details["threshold"] = new.threshold
        details["maintainers"] = [k.key_id for k in new.keys]
    state.audit(
        "maintainers-change", actor(), datetime.now(UTC), details, named_signer(state, args)
    )
    _show_sets(current, None if new == current else new, len(retired_sets(folder)))
    return 0


def _show_sets(current: MaintainerSet, pending: MaintainerSet | None, retired: int) -> None:
    print(f"current maintainer set: {describe_set(current)}")
    if retired:
        print(f"  ({retired} earlier sets kept as maintainers/maintainers.<n>.json)")
    if pending is None:
        print("pending change: none")
        return
    print(f"pending maintainer set (from the next published version): {describe_set(pending)}")
    for line in describe_change(current, pending):
        print(f"  {line}")
    print(
        f"the next version needs {current.threshold} signatures of the current set AND"
        f" {pending.threshold} of the new one: `ephyto registry propose`, each maintainer"
        " `ephyto registry sign`, then `ephyto registry publish --signed FILE`"
    )


def _read_previous(path: Path | None) -> tuple[Directory | None, MaintainerSet | None]:
    """--previous: a signed directory (checked against its own set) or a maintainers.json."""
    if path is None:
        return None, None
    data = _read_document(path)
    if data.startswith(b'{"signatures":'):
        try:
            doc = parse_signed(data)
            require_threshold(doc, doc.directory.maintainers, "its own maintainers")
        except DirectoryError as exc:
            raise RegistryError(f"--previous {path}: {exc}") from None
        return doc.directory, doc.directory.maintainers
    try:
        return None, MaintainerSet.from_plain(json.loads(data))
    except (ValueError, DirectoryError) as exc:
        raise RegistryError(
            f"--previous {path}: neither a directory nor a maintainers.json ({exc})"
        ) from None


def _read_document(path: Path) -> bytes:
    return read_at_most(path, DEFAULT_MAX_BYTES)


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _print_published(state: RegistryState, directory: Directory) -> None:
    countries = ", ".join(
        n.country if n.status == "active" else f"{n.country} ({n.status})" for n in directory.nppos
    )
    print(f"  NPPOs        {countries or 'none'}")
    print(f"  maintainers  {describe_set(directory.maintainers)}")
    print(f"  file         {state.root / 'published' / f'{directory.version}.json'}")
