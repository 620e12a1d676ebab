"""`ephyto console user add|passwd|disable|totp|list`: the officer console's users, their
roles and their optional TOTP second factor (node.console.users, node.console.totp)."""

from __future__ import annotations

import argparse
import getpass
import json
import stat
from pathlib import Path
from typing import Any

from node.cli.node import DEFAULT_DIR
from node.clock import SystemClock
from node.commandline import dir_argument
from node.console.totp import new_secret, provisioning_uri
from node.console.users import (
    ROLES,
    ConsoleUser,
    add_user,
    check_role,
    check_user_name,
    clear_totp,
    disable_user,
    enabled_user,
    list_users,
    set_password,
    set_totp,
    users_path,
)
from node.errors import InputError
from node.identity.config import CONFIG_FILE, load_config
from node.identity.secret_file import read_secret_file

_ROLE_HELP = "; ".join(f"{r.name} ({r.description})" for r in ROLES)


def add_parser(commands: Any) -> None:
    """The `console` command and its `user` group."""
    console = commands.add_parser(
        "console",
        help="the officer console's users and roles",
        description="The officer console's users: each has a name, a role and a password "
        "kept only as its Argon2 hash, in console-users.json beside node.toml (mode 0600). "
        "A disabled user stays in the file so that the name is never given again. A user "
        "may add a TOTP second factor (an authenticator app's six-digit code).",
    )
    groups = console.add_subparsers(dest="console_command", metavar="GROUP", required=True)
    user = groups.add_parser(
        "user", help="add, change, disable or list console users; their TOTP second factor"
    )
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="add a user with a role and a password")
    add.add_argument("name", metavar="NAME", help="a-z, 0-9, '.', '_', '-'; up to 64")
    add.add_argument("--role", required=True, metavar="ROLE", help=_ROLE_HELP)
    _password_file_argument(add)
    dir_argument(add, DEFAULT_DIR, "node")
    add.set_defaults(func=_add)

    passwd = actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name", metavar="NAME")
    _password_file_argument(passwd)
    dir_argument(passwd, DEFAULT_DIR, "node")
    passwd.set_defaults(func=_passwd)

    disable = actions.add_parser("disable", help="disable a user for good (the name stays taken)")
    disable.add_argument("name", metavar="NAME")
    dir_argument(disable, DEFAULT_DIR, "node")
    disable.set_defaults(func=_disable)

    totp = actions.add_parser(
        "totp",
        help="give a user a new TOTP second factor (or take it away with --off)",
        description="Make a new TOTP secret for the user, store it, and print it once with "
        "its otpauth:// URI for an authenticator app: from the next sign-in the console "
        "asks for the app's code after the password. Run again to replace a lost one. With "
        "--off, the password alone signs in again.",
    )
    totp.add_argument("name", metavar="NAME")
    totp.add_argument("--off", action="store_true", help="take the user's TOTP secret away")
    dir_argument(totp, DEFAULT_DIR, "node")
    totp.set_defaults(func=_totp)

    listing = actions.add_parser("list", help="the users: names, roles, created, TOTP, disabled")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    dir_argument(listing, DEFAULT_DIR, "node")
    listing.set_defaults(func=_list)


def _password_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-file", type=Path, metavar="FILE",
        help="read the password from FILE's first line (mode 0600 or stricter) instead "
        "of asking for it twice",
    )  # fmt: skip


def _path(args: argparse.Namespace) -> Path:
    # Through node.toml, so that a mistyped --dir is refused, not given a users file.
    return users_path(load_config(args.directory / CONFIG_FILE).directory)


def _add(args: argparse.Namespace) -> int:
    check_user_name(args.name)
    check_role(args.role)
    path = _path(args)
    # Refused before the password is asked for; add_user checks again under its lock.
    if any(u.name == args.name for u in list_users(path)):
        raise InputError(f"a console user named {args.name!r} exists already (or was disabled)")
    added = add_user(path, args.name, args.role, _password(args), now=SystemClock().now())
    print(f"added console user {added.name} ({added.role}) to {path}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    check_user_name(args.name)
    path = _path(args)
    enabled_user(list_users(path), args.name, path)  # before asking for the password
    changed = set_password(path, args.name, _password(args))
    print(f"set the password of console user {changed.name}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    disabled = disable_user(_path(args), args.name, now=SystemClock().now())
    assert disabled.disabled is not None
    print(f"disabled console user {disabled.name} at {disabled.disabled.isoformat()}")
    return 0


def _totp(args: argparse.Namespace) -> int:
    check_user_name(args.name)
    config = load_config(args.directory / CONFIG_FILE)
    path = users_path(config.directory)
    if args.off:
        cleared = clear_totp(path, args.name)
        print(f"removed the TOTP second factor of console user {cleared.name}")
        print("the password alone signs in again")
        return 0
    had = enabled_user(list_users(path), args.name, path).totp_secret is not None
    secret = new_secret()
    # Made before the secret is stored, so that nothing is stored that cannot be shown.
    uri = provisioning_uri(secret, user=args.name, issuer=f"ePhyto {config.country}")
    changed = set_totp(path, args.name, secret)
    replaced = " (it replaces the previous one, which no longer works)" if had else ""
    print(f"set a new TOTP secret for console user {changed.name}{replaced}")
    print("add it to an authenticator app now; it is not shown again:")
    print(f"  secret: {secret}")
    print(f"  URI:    {uri}")
    print("from the next sign-in, the console asks for the app's six-digit code")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = list_users(_path(args))
    if args.json:
        print(json.dumps({"users": [_plain(u) for u in users]}, indent=2))
        return 0
    if not users:
        print("no console users (add one with `ephyto console user add NAME --role admin`)")
    for u in users:
        totp = "on" if u.totp_secret is not None else "off"
        disabled = "" if u.disabled is None else f"  disabled {u.disabled.isoformat()}"
        print(f"{u.name}  {u.role}  created {u.created.isoformat()}  totp {totp}{disabled}")
    return 0


def _plain(user: ConsoleUser) -> dict[str, Any]:
    """What `list --json` tells of a user: never the hash, never the TOTP secret."""
    return {
        "name": user.name,
        "role": user.role,
        "created": user.created.isoformat(),
        "disabled": None if user.disabled is None else user.disabled.isoformat(),
        "totp": user.totp_secret is not None,
    }


def _password(args: argparse.Namespace) -> str:
    """The new password: from --password-file, or typed twice without echo."""
    if args.password_file is not None:
        return read_password_file(args.password_file)
    try:
        first = getpass.getpass(f"password for {args.name}: ")
        second = getpass.getpass(f"password for {args.name} (again): ")
    except EOFError:
        raise InputError("no password given (type it, or use --password-file)") from None
    if first != second:
        raise InputError("the two passwords differ: nothing was changed")
    return first


def read_password_file(path: Path) -> str:
    """The first line of `path`, refused if the file is not a regular file private to its
    owner: a password others can read is no longer secret."""
    try:
        info = path.stat()
    except OSError as e:
        raise InputError(f"--password-file: cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"--password-file: {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise InputError(
            f"--password-file: {path} is open to group or others (mode {mode:04o}):"
            f" chmod 600 {path}"
        )
    text = read_secret_file(path, "--password-file")
    return text.split("\n", 1)[0].removesuffix("\r")
