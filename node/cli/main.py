"""Entry point of the `ephyto` command: parses arguments, maps errors to one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from node import __version__
from node.cli import bench, cert, codelists, console, demo, discover, doctor, hub, node, study
from node.commandline import run_command
from registry import cli as registry_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ephyto",
        description="ePhyto exchange node: phytosanitary certificates (ISPM 12) as "
        "UN/CEFACT SPSCertificate XML.",
    )
    parser.add_argument("--version", action="version", version=f"ephyto {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.add_parser(commands)
    cert.add_parser(commands)
    codelists.add_parser(commands)
    bench.add_parser(commands)
    node.add_parser(commands)
    discover.add_parser(commands)
    doctor.add_parser(commands)
    hub.add_parser(commands)
    registry_cli.add_parser(commands)
    study.add_parser(commands)
    console.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
