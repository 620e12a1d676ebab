"""The command tree imports only the branch a command needs (node/cli/main.py): each
case runs `python -m node.cli.main` in a process of its own and reads which modules
it imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from node.cli.main import COMMANDS

# Runs the command, then prints the command modules it imported (SystemExit included).
PROBE = """
import sys
from node.cli.main import COMMANDS, main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("imported:", ",".join(m for _, m in COMMANDS if m in sys.modules), file=sys.stderr)
"""


def imported(*words: str) -> tuple[set[str], str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *words], capture_output=True, text=True, timeout=120
    )
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("imported:"), done.stderr
    names = {m for m in line.removeprefix("imported:").strip().split(",") if m}
    return names, done.stdout, done.stderr


def test_version_imports_no_command() -> None:
    names, out, _ = imported("--version")
    assert names == set()
    assert out.startswith("ephyto ")


# The heavy branches: a command that does not use them must not import them (`node
# init` uses discovery, so `node` may import node.cli.discover).
HEAVY = {"node.cli.study", "node.cli.bench", "node.cli.demo", "registry.cli", "node.cli.hub"}


@pytest.mark.parametrize("command", ["node", "registry", "study", "console"])
def test_a_command_imports_its_own_branch_and_no_other_heavy_one(command: str) -> None:
    names, out, _ = imported(command, "--help")
    own = dict(COMMANDS)[command]
    assert own in names
    assert names & (HEAVY - {own}) == set(), names
    assert f"usage: ephyto {command}" in out


def test_the_demo_has_the_commands_it_runs_in_its_own_process() -> None:
    names, out, _ = imported("demo", "--help")
    assert {"node.cli.demo", "node.cli.node", "node.cli.hub", "registry.cli"} <= names
    assert "node.cli.study" not in names and "node.cli.bench" not in names
    assert "usage: ephyto demo" in out


@pytest.mark.parametrize(
    "words",
    [(), ("--help",), ("no-such-command",), ("-x",), ("node\u202e",)],
)
def test_anything_else_builds_the_whole_tree_and_lists_every_command(
    words: tuple[str, ...],
) -> None:
    names, out, err = imported(*words)
    assert names == {module for _, module in COMMANDS}
    listed = out + err
    assert all(name in listed for name, _ in COMMANDS), listed
