"""The demo's one-shot commands (`ephyto node init`, `ephyto registry add`, ...) run inside
the demo's own process.

The same parsers and the same code as the `ephyto` command, given the same words, but
without starting an interpreter for each: that start (about half a second of imports,
for each of 17 commands) was most of the demo's start-up. The services (`serve`) still
run as processes of their own.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from typing import Any

from node.commandline import run_command
from node.demo.network import Command

# A command's output is caught by swapping sys.stdout, which is process-wide: one at a time.
_ONE_AT_A_TIME = threading.Lock()


def in_process(commands: Any) -> Command:
    """Run `ephyto WORDS` with the parsers of `commands` (the command tree's subparsers
    action, which the demo is one of), for commands that end by itself (not `serve`)."""
    choices: dict[str, argparse.ArgumentParser] = commands.choices

    def run(words: Sequence[str]) -> tuple[int, str]:
        printed = StringIO()
        with _ONE_AT_A_TIME, redirect_stdout(printed), redirect_stderr(printed):
            code = _run(choices, words)
        return code, printed.getvalue()

    return run


def _run(choices: dict[str, argparse.ArgumentParser], words: Sequence[str]) -> int:
    """The exit status; errors are told as `ephyto` tells them."""
    try:
        args = choices[words[0]].parse_args(list(words[1:]))
    except SystemExit as e:  # argparse refusing the words, after saying why
        return e.code if isinstance(e.code, int) else 2
    return run_command(args)
