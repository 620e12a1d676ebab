"""`ephyto study scenarios|show`, in process (a subprocess costs a second each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli.main import main


def test_scenarios_lists_every_bundled_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(line.split()[0] for line in lines)
    assert {line.split()[0] for line in lines} >= {"all-hub", "hybrid", "growth-96-to-180"}
    assert all(len(line.split()) > 1 for line in lines)


def test_show_hybrid_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "show", "hybrid"]) == 0
    text = capsys.readouterr().out
    assert "96 (24 running a node, 72 hub only)" in text
    assert "12,000,000 certificates a year" in text
    assert main(["study", "show", "hybrid", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["trade"]["certificates_per_year"] == 12_000_000
    assert shown["by_topology"]["hub"]["links"] == 96
    assert shown["by_topology"]["bilateral"]["links"] == 96 * 95 // 2
    assert 0 < shown["by_topology"]["hybrid"]["direct_links"] < 24 * 23 // 2
    assert len(shown["trade"]["top_flows"]) == 10


def test_show_refuses_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ncountries = [{ code = "XX", region = "europe" }]\n')
    assert main(["study", "show", str(bad)]) == 2
    error = capsys.readouterr().err
    assert "countries[0].code" in error and len(error.splitlines()) == 1
    assert main(["study", "show", str(tmp_path / "missing.toml")]) == 2
    assert "not a bundled scenario" in capsys.readouterr().err
