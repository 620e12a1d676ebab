"""`ephyto study trade import` in-process, on a parser of its own (the `study` command
is wired elsewhere)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from node.cli import study_trade
from node.commandline import run_command


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ephyto study")
    study_trade.add_parser(parser.add_subparsers(dest="study_command", required=True))
    code = run_command(parser.parse_args([str(a) for a in args]))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_scales_reports_and_refuses_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = tmp_path / "trade.csv", tmp_path / "flows.csv"
    source.write_text(
        'exporter,importer,weight\nNL,DE,2\n"China, mainland",Kenya,1\nWorld,NL,5\nNL,DEU,1\n',
        encoding="utf-8",
    )
    code, printed, err = _run(capsys, "trade", "import", source, "--total", "10", "-o", out)
    assert code == 0, err
    assert out.read_text(encoding="utf-8") == "origin,destination,weight\nCN,KE,3\nNL,DE,7\n"
    assert "read 4 rows (edges): 3 used, 2 country pairs, 4 countries" in printed
    assert "'World': 1 rows (first on line 4), not a country" in printed
    code, _, err = _run(capsys, "trade", "import", source, "-o", out)
    assert code == 2 and "exists" in err and "--force" in err
    source.write_text("exporter,importer,weight\nNL,DE,2\nNL,DE,-1\n", encoding="utf-8")
    code, _, err = _run(capsys, "trade", "import", source, "-o", out, "--force")
    assert code == 2 and "line 3: the weight -1 is negative" in err
    assert out.read_text(encoding="utf-8").endswith("NL,DE,7\n")  # the old file, untouched
