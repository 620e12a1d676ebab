"""`ephyto study emulate` refusing what it cannot run, in process: one line on stderr,
exit 2, nothing written, and no process started (every one fails before)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.cli.main import main
from node.demo import network
from node.study import emulate

THIRTEEN = ",\n".join(
    f'  {{ code = "{code}", region = "europe", node = true }}'
    for code in ["AT", "BE", "DE", "DK", "ES", "FI", "FR", "GR", "IE", "IT", "LU", "NL", "PT"]
)


def small(countries: str, extra: str = "") -> str:
    return f"""name = "emulate-cli"
period_days = 1
countries = [
{countries}
]
[trade]
seed = 7
certificates_per_year = 36500
{extra}
"""


THREE = """  { code = "NL", region = "europe", node = true },
  { code = "DE", region = "europe", node = true },
  { code = "FR", region = "europe" }"""


@pytest.fixture(autouse=True)
def no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refusal comes before a process would start: starting one fails the test
    (pytest.fail is no Exception, so the CLI's catch-all cannot turn it into an exit 3)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("a refused emulation started its network")

    monkeypatch.setattr(emulate, "emulate", refuse)
    monkeypatch.setattr(network.Network, "start", refuse)


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error `ephyto study emulate ARGS` exits 2 with."""
    code = main(["study", "emulate", *args, "--quiet"])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("ephyto: error: ")
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--compress", "0"], "--compress: 0.0; between 1 and 1,000,000"),
        (["--compress", "-1"], "--compress: -1.0; between 1"),
        (["--compress=-1"], "--compress: -1.0; between 1"),
        (["--compress", "0.5"], "--compress: 0.5; between 1"),
        (["--compress", "1e7"], "--compress: 10000000.0; between 1"),
        (["--compress", "nan"], "--compress: 'nan' is not a finite number"),
        (["--compress", "inf"], "--compress: 'inf' is not a finite number"),
        (["--compress", "abc"], "--compress: 'abc' is not a number"),
        (["--compress", ""], "--compress: '' is not a number"),
        (["--scale", "0"], "--scale: '0'; a factor between"),
        (["--scale", "abc"], "--scale: 'abc' is not a number"),
        (["--scale", "nan"], "--scale: 'nan'"),
        (["--seed", "-1"], "--seed: '-1'; between 0"),
        (["--seed", "1.5"], "--seed: '1.5' is not a whole number"),
    ],
)
def test_bad_options_are_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    out = tmp_path / "out"
    error = refused(["emulate-small", "-o", str(out), *options], capsys)
    assert message in error
    assert not out.exists()


def test_an_unknown_scenario_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    error = refused(["no-such-scenario", "-o", str(out)], capsys)
    assert "no-such-scenario: no such scenario file, and not a bundled scenario" in error
    assert "emulate-small" in error  # the bundled names are listed
    assert not out.exists()


def test_more_countries_than_it_emulates_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "thirteen.toml"
    source.write_text(small(THIRTEEN))
    out = tmp_path / "out"
    error = refused([str(source), "-o", str(out)], capsys)
    assert "13 countries" in error and "at most 12" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[key_rotations]]\nday = 0.5\ncountries = ["NL"]', "key rotations"),
        ("", "raise --compress"),  # a day at --compress 2: 43,200 s
    ],
)
def test_what_cannot_be_emulated_here_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, message: str
) -> None:
    source = tmp_path / "scenario.toml"
    source.write_text(small(THREE, extra))
    out = tmp_path / "out"
    compress = "480" if extra else "2"
    error = refused([str(source), "-o", str(out), "--compress", compress], capsys)
    assert message in error
    assert not out.exists()


def test_a_bad_scenario_file_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bad.toml"
    source.write_bytes(b"name = \xff\n")
    out = tmp_path / "out"
    error = refused([str(source), "-o", str(out)], capsys)
    assert str(source) in error and "not UTF-8" in error
    assert not out.exists()


def test_a_non_empty_directory_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    error = refused(["emulate-small", "-o", str(out)], capsys)
    assert "is not empty" in error and "--force" in error
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"


def test_an_output_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.write_text("a file")
    error = refused(["emulate-small", "-o", str(out)], capsys)
    assert "exists and is not a directory" in error
    assert out.read_text() == "a file"
    # --force writes into a directory, never over a file.
    error = refused(["emulate-small", "-o", str(out), "--force"], capsys)
    assert "exists and is not a directory" in error
    assert out.read_text() == "a file"


def test_a_refused_emulation_into_an_empty_directory_leaves_it_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    refused(["emulate-small", "-o", str(out), "--compress", "0"], capsys)
    assert list(out.iterdir()) == []


def test_the_output_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["study", "emulate", "emulate-small"])
    assert exit_.value.code == 2
    assert "-o/--output" in capsys.readouterr().err


def test_the_guard_holds_valid_arguments_at_the_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The refusals above are refusals, not a network that failed to start: valid
    # arguments get as far as the guard, and still nothing is written.
    out = tmp_path / "out"
    with pytest.raises(pytest.fail.Exception, match="started its network"):
        main(["study", "emulate", "emulate-small", "-o", str(out), "--quiet"])
    assert not out.exists()
