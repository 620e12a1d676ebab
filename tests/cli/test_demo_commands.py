"""The demo runs its one-shot commands in its own process: with the parsers and the code of
`ephyto`, so they do and say what `ephyto` in a subprocess does and says."""

from __future__ import annotations

from pathlib import Path

from node.cli.demo_commands import in_process
from node.cli.main import build_parser
from node.demo.network import Command
from tests.ephyto_cli import ephyto


def _runner() -> Command:
    # The command tree's subparsers action, as `ephyto demo` is given it.
    return in_process(build_parser().parse_args(["demo"]).commands)


def test_a_command_does_in_process_what_it_does_in_a_subprocess(tmp_path: Path) -> None:
    run = _runner()
    code, printed = run(["registry", "init", "--dir", str(tmp_path / "inside")])
    assert code == 0, printed
    outside = ephyto("registry", "init", "--dir", tmp_path / "outside")
    assert outside.returncode == 0, outside.stderr
    # The same report, but for the directory (and the key ids, which are new each time).
    assert printed.splitlines()[0] == outside.stdout.splitlines()[0].replace("outside", "inside")
    assert len(printed.splitlines()) == len(outside.stdout.splitlines())
    assert sorted(p.name for p in (tmp_path / "inside").iterdir()) == sorted(
        p.name for p in (tmp_path / "outside").iterdir()
    )


def test_a_refusal_in_process_is_the_one_line_ephyto_prints(tmp_path: Path) -> None:
    run = _runner()
    registry = tmp_path / "registry"
    assert run(["registry", "init", "--dir", str(registry)])[0] == 0
    missing = tmp_path / "missing.json"
    code, printed = run(["registry", "add", str(missing), "--dir", str(registry)])
    outside = ephyto("registry", "add", missing, "--dir", registry)
    assert (code, printed) == (outside.returncode, outside.stderr) == (2, outside.stderr)
    assert printed.startswith("ephyto: error: ") and len(printed.splitlines()) == 1


def test_words_the_parser_refuses_are_an_exit_status_not_an_exception() -> None:
    code, printed = _runner()(["node", "no-such-command"])
    assert code == 2
    assert "invalid choice" in printed
