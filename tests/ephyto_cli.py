"""Running the `ephyto` command as an operator would, in a subprocess, and checking how it
ended: done (exit 0) or refused in one error line (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ephyto(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "ephyto"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def ok(*args: str | Path) -> str:
    """The output of a command that must succeed."""
    result = ephyto(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(*args: str | Path) -> str:
    """The one error line of a command that must be refused (exit 2)."""
    result = ephyto(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("ephyto: error: ") and len(result.stderr.splitlines()) == 1
    return result.stderr
