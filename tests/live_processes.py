"""Which live processes mention a folder: what a test that starts a network checks it
left nothing of (read from /proc, so it sees processes the test did not start itself)."""

from __future__ import annotations

import os
from pathlib import Path


def live_under(directory: Path) -> list[tuple[int, str]]:
    """(process id, command line) of live processes that mention `directory`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(directory) in command:
            found.append((int(proc.name), command))
    return found
