"""Entry point of the `ephyto` command: parses arguments, maps errors to one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from node import __version__
from node.cli import bench, cert, codelists, demo, discover, doctor, hub, node
from node.errors import EphytoError
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except EphytoError as e:
        print(f"ephyto: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # Files the user named that cannot be read or written: say which, no traceback.
        name = f" {e.filename}" if e.filename else ""
        print(f"ephyto: error:{name}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: still one line, the traceback only on request
        if os.environ.get("EPHYTO_DEBUG"):
            raise
        print(
            f"ephyto: internal error: {type(e).__name__}: {e} "
            "(set EPHYTO_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())
