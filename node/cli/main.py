"""Entry point of the `ephyto` command: parses arguments, maps errors to one line.

Each command's module is imported only when that command runs (or when the whole tree is
needed: `ephyto`, `ephyto --help`, a word that is no command). A module imports what its
command does, which for most is a great deal (the store, the study's engines, the
benchmarks); `ephyto --version` took 0.45 s and every `ephyto node serve` paid for the
study, the benchmarks and the registry before its own imports (issue 16).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

from node import __version__
from node.commandline import run_command

# Each command and the module whose add_parser(commands) defines it, in the order
# `ephyto --help` lists them.
COMMANDS: Final[tuple[tuple[str, str], ...]] = (
    ("demo", "node.cli.demo"),
    ("cert", "node.cli.cert"),
    ("codelists", "node.cli.codelists"),
    ("bench", "node.cli.bench"),
    ("node", "node.cli.node"),
    ("discover", "node.cli.discover"),
    ("doctor", "node.cli.doctor"),
    ("hub", "node.cli.hub"),
    ("registry", "registry.cli"),
    ("study", "node.cli.study"),
    ("console", "node.cli.console"),
)
# Commands that run others' in their own process, by those commands' parsers: the demo
# runs `registry add`, `hub init`, `node configure`... (node.cli.demo_commands).
USES: Final[dict[str, tuple[str, ...]]] = {"demo": ("node", "hub", "registry")}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command tree; with `argv`, only the branch of the command it names, when it
    names one (the rest of the tree is never imported)."""
    parser = argparse.ArgumentParser(
        prog="ephyto",
        description="ePhyto exchange node: phytosanitary certificates (ISPM 12) as "
        "UN/CEFACT SPSCertificate XML.",
    )
    parser.add_argument("--version", action="version", version=f"ephyto {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = _commands_needed(argv)
    for name, module in COMMANDS:
        if wanted is None or name in wanted:
            importlib.import_module(module).add_parser(commands)
    return parser


def _commands_needed(argv: Sequence[str] | None) -> frozenset[str] | None:
    """The commands whose branch `argv` needs; None for all of them. A command's name
    first: that one, and those it USES. `--version` first: none (it answers before any
    command is read). Anything else (no words, --help, a word that is no command): all,
    to list them."""
    if not argv:
        return None
    first = argv[0]
    if first == "--version":
        return frozenset()
    if first not in {name for name, _ in COMMANDS}:
        return None
    return frozenset({first, *USES.get(first, ())})


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(words)
    return run_command(parser.parse_args(words))


if __name__ == "__main__":
    sys.exit(main())
