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


SMALL = """name = "tiny"
period_days = 20
countries = [
  { code = "FR", region = "europe", node = true },
  { code = "DE", region = "europe", node = true },
  { code = "KE", region = "africa" },
]
[trade]
seed = 3
certificates_per_year = 9000
[[outages]]
party = "hub"
start_hours = 48
duration_hours = 4
[costs]
fee_models = [{ name = "flat", kind = "prepaid", fee = 5 }]
"""


def test_simulate_writes_every_output_and_the_same_seed_the_same_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tiny.toml"
    source.write_text(SMALL)
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, "4"), (again, "4"), (other, "5")):
        args = ["study", "simulate", str(source), "-o", str(out), "--seed", seed, "--quiet"]
        assert main(args) == 0
    assert "tiny: " in capsys.readouterr().out
    assert sorted(p.name for p in first.iterdir()) == [
        "costs.csv",
        "exposure.csv",
        "hub_bytes.csv",
        "hub_holdings.csv",
        "messages.csv",
        "outages.csv",
        "pairs.csv",
        "parties.csv",
        "rotations.csv",
        "summary.json",
        "tiny.toml",
        "transit.csv",
        "trust.csv",
    ]
    assert (first / "tiny.toml").read_text() == SMALL
    assert (first / "summary.json").read_bytes() == (again / "summary.json").read_bytes()
    assert (first / "summary.json").read_bytes() != (other / "summary.json").read_bytes()
    summary = json.loads((first / "summary.json").read_text())
    assert summary["scenario"] == "tiny" and summary["seed"] == 4 and summary["scale"] == 1.0
    assert summary["code_version"] and summary["messages_csv"] == "all"
    messages = (first / "messages.csv").read_text().splitlines()
    assert messages[0] == "id,from,to,submitted,delivered,route,attempts"
    assert len(messages) == summary["certificates"] + 1
    assert (first / "outages.csv").read_text().splitlines()[1].startswith("hub,48,4,")
    assert (first / "costs.csv").read_text().splitlines()[0].startswith("country,runs_node,")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "0"], "--scale"),
        (["--scale", "abc"], "--scale"),
        (["--scale", "nan"], "--scale"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_simulate_refuses_bad_options_in_one_line_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["study", "simulate", "all-hub", "-o", str(out), *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_simulate_refuses_a_missing_scenario_and_a_non_empty_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["study", "simulate", str(tmp_path / "none.toml"), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "not a bundled scenario" in error and len(error.splitlines()) == 1
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["study", "simulate", "all-hub", "-o", str(out), "--scale", "0.001"]) == 2
    error = capsys.readouterr().err
    assert "not empty" in error and len(error.splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_simulate_takes_the_service_times_an_emulation_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tiny.toml"
    source.write_text(SMALL)
    service = tmp_path / "service.json"
    service.write_text('{"node_send_ms": 20.5, "hub_ms": 40, "pull_ms": 27, "restart_ms": 1200}')
    out = tmp_path / "out"
    args = ["study", "simulate", str(source), "-o", str(out), "--quiet"]
    assert main([*args, "--service", str(service)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # Left out: the benchmark's figure.
    assert summary["service_ms"] == {
        "node_send": 20.5,
        "node_receive": 3.1,
        "hub": 40.0,
        "pull": 27.0,
        "restart": 1200.0,
    }
    capsys.readouterr()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "--service: not JSON"),
        ("[1]", "--service: a JSON object"),
        ('{"cpu_ms": 1}', "--service: unknown key 'cpu_ms'"),
        ('{"hub_ms": "fast"}', "--service: hub_ms: 'fast' is not a number"),
        ('{"hub_ms": true}', "--service: hub_ms: True is not a number"),
        ('{"hub_ms": -1}', "--service: hub_ms: -1.0; between 0 and 3,600,000 ms"),
        ('{"hub_ms": 1e400}', "--service: hub_ms: inf"),
        ('{"pull_ms": -0.5}', "--service: pull_ms: -0.5; between 0 and 3,600,000 ms"),
        ("\xff\xfe", "--service: not JSON"),
    ],
)
def test_simulate_refuses_a_bad_service_file_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    service = tmp_path / "service.json"
    service.write_bytes(text.encode("latin-1"))
    out = tmp_path / "out"
    code = main(["study", "simulate", "all-hub", "-o", str(out), "--service", str(service)])
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.splitlines()) == 1
    assert not out.exists()
    assert main(["study", "simulate", "all-hub", "-o", str(out), "--service", "/nonexistent"]) == 2
    assert "--service: cannot read" in capsys.readouterr().err
