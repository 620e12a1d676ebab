"""The registry's audit log, audit.log: append-only JSON lines (time, action, actor,
details), each hash-chained to the line before (prev) and signed by a maintainer's key.

Functions over the registry folder; the line format and the chain are
registry/governance.py's, who signs is the caller's (registry/layout.py).
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from node.directory import MaintainerSet
from node.identity.enrolment import format_time
from registry.governance import ChainReport, Signer, audit_line, verify_chain

AUDIT_FILE: Final = "audit.log"


def append(
    root: Path,
    action: str,
    actor: str,
    now: datetime,
    details: dict[str, Any],
    signer: Signer | None,
) -> None:
    """Append one line to audit.log (O_APPEND, never rewritten), chained to the line
    before and signed by `signer` (unsigned when None), then fsync. An exclusive lock
    keeps the read of the last line and the append together."""
    entry = {
        "time": format_time(now.replace(microsecond=0)),
        "action": action,
        "actor": actor,
        "details": details,
    }
    fd = os.open(root / AUDIT_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lines = _read_fd(fd).splitlines()
        line = audit_line(entry, lines[-1] if lines else None, signer)
        os.write(fd, line + b"\n")  # one write of one line
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def lines(root: Path) -> list[bytes]:
    """The audit log's lines as written, oldest first."""
    try:
        data = (root / AUDIT_FILE).read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data.split(b"\n") if line]


def entries(root: Path) -> list[dict[str, Any]]:
    """The audit log, oldest first."""
    return [json.loads(line) for line in lines(root)]


def verify(root: Path, maintainers: MaintainerSet) -> ChainReport:
    """The audit log's chain and signatures checked against `maintainers` (every key of
    the current and retired sets): where it breaks, if it does."""
    return verify_chain(lines(root), maintainers)


def _read_fd(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
