"""`ephyto study run|report`, in process: the bundled hybrid scenario end to end at a
thousandth of its volume, and directories that are not a run's."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from node import study
from node.cli.main import main
from node.study import figures

RUN_FILES = {
    "summary.json",
    "hybrid.toml",
    "messages.csv",
    "pairs.csv",
    "outages.csv",
    "hub_holdings.csv",
    "costs.csv",
    # The measures (node/study/measures.py).
    "rotations.csv",
    "exposure.csv",
    "trust.csv",
    "parties.csv",
    "transit.csv",
    "hub_bytes.csv",
}
CSVS = sorted(name for name in RUN_FILES if name.endswith(".csv"))
REPORT_FILES = {
    "report.html",
    "report.md",
    *(name.replace(".csv", ".parquet") for name in CSVS),
    *(f"figures/{name}.{ext}" for name in figures.NAMES for ext in ("png", "svg")),
}


def listing(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "hybrid"
    args = ["study", "run", "hybrid", "--scale", "0.001", "--seed", "7", "-o", str(out)]
    assert main([*args, "--quiet"]) == 0
    return out


def test_run_writes_the_simulation_and_its_report(
    hybrid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(listing(hybrid)) == RUN_FILES | REPORT_FILES
    for name in CSVS:
        with (hybrid / name).open(newline="") as f:
            rows = list(csv.reader(f))
        table = pq.read_table(hybrid / name.replace(".csv", ".parquet"))
        assert table.num_rows == len(rows) - 1, name
        assert table.column_names == rows[0], name
    summary = json.loads((hybrid / "summary.json").read_text())
    assert summary["scenario"] == "hybrid" and summary["seed"] == 7
    assert summary["scale"] == 0.001 and summary["code_version"]
    report = (hybrid / "report.md").read_text()
    assert "| seed | 7 |" in report and "| route | certificates |" in report
    page = (hybrid / "report.html").read_text()
    assert "<link" not in page and "<script" not in page and 'src="http' not in page
    # Every figure embedded but the blast radius: the hybrid scenario has no outage.
    assert page.count('src="data:image/svg+xml;base64,') == len(figures.NAMES) - 1
    assert "The scenario has no outages." in page
    for name in figures.NAMES:
        assert (hybrid / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_the_same_seed_gives_the_same_summary_and_report(
    hybrid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = tmp_path / "again"
    args = ["study", "run", "hybrid", "--scale", "0.001", "--seed", "7", "-o", str(again)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "report: " in captured.out and "s left" in captured.err  # the progress lines
    for name in ("summary.json", "report.md", "report.html", "messages.csv"):
        assert (again / name).read_bytes() == (hybrid / name).read_bytes(), name


def test_report_rebuilds_the_same_report_from_a_run_directory(
    hybrid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in RUN_FILES:
        (copy / name).write_bytes((hybrid / name).read_bytes())
    assert main(["study", "report", str(copy), "--quiet"]) == 0
    assert "report: " in capsys.readouterr().out
    built = listing(copy)
    assert set(built) == RUN_FILES | REPORT_FILES
    for name in ("report.md", "report.html", "figures/scale_curve.svg"):
        assert built[name] == (hybrid / name).read_bytes(), name


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1, error
    return error


def test_report_refuses_a_directory_that_is_not_a_run_writing_nothing(
    hybrid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert "no such directory" in refused(["study", "report", str(missing)], capsys)
    assert not missing.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.csv").write_text("a,b\n1,2\n")
    error = refused(["study", "report", str(other)], capsys)
    assert "no summary.json" in error and "nothing was written" in error
    assert set(listing(other)) == {"notes.csv"}
    for corrupt in (b"{", b"[]", b'{"scenario": "hybrid"}', b"\x00" * 10):
        broken = tmp_path / f"broken{len(corrupt)}"
        broken.mkdir()
        for name in RUN_FILES:
            (broken / name).write_bytes((hybrid / name).read_bytes())
        (broken / "summary.json").write_bytes(corrupt)
        error = refused(["study", "report", str(broken), "--quiet"], capsys)
        assert "summary.json" in error and "nothing was written" in error
        assert set(listing(broken)) == RUN_FILES


def test_a_missing_extra_or_a_bad_option_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    error = refused(["study", "run", "hybrid", "--scale", "0", "-o", str(out)], capsys)
    assert "--scale" in error
    error = refused(["study", "run", str(tmp_path / "none.toml"), "-o", str(out)], capsys)
    assert "not a bundled scenario" in error
    # Without matplotlib (the study extra): refused before the simulation runs.
    monkeypatch.delattr(study, "figures", raising=False)
    monkeypatch.setitem(sys.modules, "node.study.figures", None)
    error = refused(["study", "run", "hybrid", "--scale", "0.001", "-o", str(out)], capsys)
    assert "study extra" in error
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "study extra" in refused(["study", "report", str(empty)], capsys)
    assert list(empty.iterdir()) == []


def test_report_refuses_a_figures_folder_that_is_a_link(
    hybrid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    for name in RUN_FILES:
        (run / name).write_bytes((hybrid / name).read_bytes())
    (run / "figures").symlink_to(elsewhere)
    error = refused(["study", "report", str(run), "--quiet"], capsys)
    assert "symbolic link" in error and "nothing was written" in error
    assert list(elsewhere.iterdir()) == [] and not (run / "report.html").exists()
