"""What the node's and the registry's command modules share (shell): a `--dir` argument,
the trust anchor file, running a service until SIGINT or SIGTERM, and running a parsed
command with its errors told in one line.

Below both `node.cli` and `registry.cli`, so that the command tree (node.cli.main), which
takes the registry's commands in, is not imported back by them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from node.directory import DirectoryError, MaintainerSet
from node.errors import EphytoError, InputError
from node.observe.logsetup import configure_logging
from node.observe.settings import LogFormat


def dir_argument(parser: argparse.ArgumentParser, default: Path, what: str) -> None:
    """`--dir DIR` (into `args.directory`): where a node's, hub's or registry's files are."""
    parser.add_argument(
        "--dir",
        type=Path,
        default=default,
        metavar="DIR",
        dest="directory",
        help=f"the {what} directory (default: ./{default})",
    )


def read_anchor_file(path: Path) -> tuple[bytes, MaintainerSet]:
    """The maintainers' trust anchor file (the registry's maintainers/maintainers.json):
    its bytes, to copy as they are, and what it says."""
    data = path.read_bytes()
    try:
        return data, MaintainerSet.from_plain(json.loads(data))
    except (ValueError, DirectoryError) as e:
        raise InputError(
            f"{path}: not a maintainers trust anchor (the registry's "
            f"maintainers/maintainers.json): {e}"
        ) from None


def run_until_signalled(
    service: Callable[[asyncio.Event], Awaitable[None]],
    *,
    verbose: bool,
    log_format: LogFormat = "text",
) -> int:
    """Log to stderr (text or JSON lines, node.observe.logsetup) and run `service(stop)`;
    SIGINT or SIGTERM sets `stop`."""
    configure_logging(verbose=verbose, log_format=log_format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await service(stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(main())
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command (`args.func`); its exit status, errors told in one line.

    2 for what the user can fix (an EphytoError, a file that cannot be read or written),
    130 on Ctrl-C, 3 for a bug (its traceback only with EPHYTO_DEBUG set).
    """
    try:
        code: int = args.func(args)
    except EphytoError as e:
        print(f"ephyto: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`ephyto codelists show units | head`): that is no error
        # of ours. Point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
