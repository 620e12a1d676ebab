"""`ephyto study sweep`, in process: a local process pool, a Dask LocalCluster, and the
refusals (each one line on stderr, nothing written)."""

from __future__ import annotations

import csv
import json
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster

from node.cli import study_sweep
from node.cli.main import main
from node.errors import InputError

HYBRID = (resources.files("node.study") / "scenarios" / "hybrid.toml").read_bytes()
SCALE = "0.0005"


def simulated_summary(tmp_path: Path, toml: bytes, seed: str, name: str) -> dict[str, Any]:
    """What `ephyto study simulate` writes to summary.json for this file, scale and seed."""
    source = tmp_path / f"{name}.toml"
    source.write_bytes(toml)
    out = tmp_path / f"simulate-{name}"
    args = ["study", "simulate", str(source), "-o", str(out), "--scale", SCALE, "--seed", seed]
    assert main([*args, "--quiet"]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    # The one key a sweep leaves out: it writes no messages.csv for it to describe.
    del summary["messages_csv"]
    return summary


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_local_sweep_writes_each_run_and_its_summaries_are_simulates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    args = ["study", "sweep", "hybrid", "-o", str(out), "--scale", SCALE, "--workers", "2"]
    assert main([*args, "--vary", "hub.pull_interval_seconds=60,300"]) == 0
    captured = capsys.readouterr()
    assert "hybrid: 2 runs varying hub.pull_interval_seconds" in captured.out
    assert "2 of 2 runs done" in captured.err and "s left" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "hybrid.toml",
        "runs",
        "sweep.csv",
        "sweep.json",
        "sweep.md",
    ]
    assert (out / "hybrid.toml").read_bytes() == HYBRID
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["0-60", "1-300"]
    rows = csv_rows(out / "sweep.csv")
    assert [(r["run"], r["hub.pull_interval_seconds"]) for r in rows] == [("0", "60"), ("1", "300")]
    report = json.loads((out / "sweep.json").read_text())
    assert report["vary"] == [{"key": "hub.pull_interval_seconds", "values": [60, 300]}]
    assert (report["scale"], report["seed"]) == (0.0005, 0)
    assert HYBRID.count(b"\npull_interval_seconds = 300\n") == 1
    for run, row, interval in zip(report["runs"], rows, ("60", "300"), strict=True):
        written = json.loads((out / run["directory"] / "summary.json").read_text())
        assert written == run["summary"]
        variant = HYBRID.replace(
            b"\npull_interval_seconds = 300\n", f"\npull_interval_seconds = {interval}\n".encode()
        )
        assert written == simulated_summary(tmp_path, variant, "0", f"pull-{interval}")
        assert row["certificates"] == str(written["certificates"])
        assert row["hub_p99_seconds"] == str(written["by_route"]["hub"]["p99_seconds"])
        assert int(row["hub_fees_per-envelope"]) == run["hub_fees"]["per-envelope"]["total"] > 0
    # Pulling 5 times less often shows in the hub route's latency.
    assert float(rows[0]["hub_p50_seconds"]) < float(rows[1]["hub_p50_seconds"])
    table = [line for line in (out / "sweep.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 4


@pytest.fixture
def cluster_address() -> Iterator[str]:
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        yield str(cluster.scheduler_address)


def test_a_dask_sweep_on_a_local_cluster_gives_simulates_summaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster_address: str
) -> None:
    out = tmp_path / "sweep"
    args = ["study", "sweep", "hybrid", "-o", str(out), "--scale", SCALE, "--quiet"]
    assert main([*args, "--dask", cluster_address, "--vary", "seed=1,2"]) == 0
    captured = capsys.readouterr()
    assert "hybrid: 2 runs varying seed" in captured.out and captured.err == ""
    rows = csv_rows(out / "sweep.csv")
    assert [(r["run"], r["seed"]) for r in rows] == [("0", "1"), ("1", "2")]
    report = json.loads((out / "sweep.json").read_text())
    assert report["seed"] is None and report["scale"] == 0.0005
    for run, seed in zip(report["runs"], ("1", "2"), strict=True):
        written = json.loads((out / run["directory"] / "summary.json").read_text())
        assert written == simulated_summary(tmp_path, HYBRID, seed, f"seed-{seed}")
    assert rows[0]["certificates"] != rows[1]["certificates"]


def test_an_unreachable_dask_scheduler_is_one_clear_line_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study_sweep, "DASK_CONNECT_TIMEOUT", "1s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    out = tmp_path / "sweep"
    address = f"tcp://127.0.0.1:{port}"
    args = ["study", "sweep", "hybrid", "-o", str(out), "--vary", "seed=1,2", "--dask", address]
    assert main([*args, "--scale", SCALE, "--quiet"]) == 2
    error = capsys.readouterr().err
    assert f"--dask {address}: the scheduler cannot be reached within 1s" in error
    assert len(error.splitlines()) == 1 and "nothing was written" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vary", "="], "--vary '=': KEY=V1,V2,... is required"),
        (["--vary", "countries=1"], "countries is an array"),
        (["--vary", "topology.top_k=x"], "'x' is not a whole number"),
        (["--vary", "seed=1", "--vary", "seed=2"], "seed is varied twice"),
        (["--vary", "topology.kind=hub,bilateral"], "run 1 (topology.kind=bilateral): topology"),
        (["--vary", "seed=1", "--workers", "0"], "--workers: '0'"),
        (["--vary", "seed=1", "--workers", "two"], "--workers: 'two'"),
        (["--vary", "seed=1", "--workers", "\uff12"], "--workers:"),
        (["--vary", "seed=1", "--dask", "localhost:8786"], "is not a scheduler address"),
        (["--vary", "seed=1", "--dask", "http://h:8786"], "is not a scheduler address"),
        (["--vary", "seed=1", "--dask", "tcp://h:99999"], "is not a scheduler address"),
        (["--vary", "seed=1", "--dask", "tcp://h:1 x"], "is not a scheduler address"),
        (["--vary", "seed=1", "--dask", "tcp://h:1", "--workers", "2"], "--workers and --dask"),
        (["--vary", "scale=0.1,0.2", "--scale", "0.1"], "--scale and --vary scale"),
        (["--vary", "seed=1", "--scale", "nan"], "--scale"),
    ],
)
def test_bad_input_is_refused_in_one_line_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "sweep"
    assert main(["study", "sweep", "hybrid", "-o", str(out), "--quiet", *extra]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_a_non_empty_directory_and_a_missing_scenario_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["study", "sweep", "hybrid", "-o", str(out), "--vary", "seed=1"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    named_like_ours = tmp_path / "sweep.json"
    named_like_ours.write_bytes(HYBRID)
    args = ["study", "sweep", str(named_like_ours), "-o", str(tmp_path / "x"), "--vary", "seed=1"]
    assert main(args) == 2
    assert "would be copied over the sweep's own file" in capsys.readouterr().err
    missing = str(tmp_path / "none.toml")
    assert main(["study", "sweep", missing, "-o", str(tmp_path / "x"), "--vary", "seed=1"]) == 2
    assert "not a bundled scenario" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def failing_job(scenario_toml: bytes, point: Any, base: Any) -> dict[str, Any]:
    """Stands in for study_sweep._run_job in the pool's processes (imported by name)."""
    seed = dict(point.settings)["seed"]
    if seed == 1:
        raise InputError(f"{point.name}: the scenario says no")
    if seed == 2:
        raise ValueError("a bug")
    return study_sweep._run_job(scenario_toml, point, base)


@pytest.mark.parametrize(
    ("seeds", "status", "message"),
    [
        ("0,1", 2, "ephyto: error: run 1 (seed=1): the scenario says no (nothing was written)"),
        ("0,2", 3, "RuntimeError: run 1 (seed=2): ValueError: a bug (nothing was written)"),
    ],
)
def test_a_run_that_fails_is_named_and_nothing_is_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    seeds: str,
    status: int,
    message: str,
) -> None:
    monkeypatch.setattr(study_sweep, "_run_job", failing_job)
    monkeypatch.delenv("EPHYTO_DEBUG", raising=False)
    out = tmp_path / "sweep"
    args = ["study", "sweep", "hybrid", "-o", str(out), "--scale", SCALE, "--workers", "2"]
    assert main([*args, "--vary", f"seed={seeds}", "--quiet"]) == status
    error = capsys.readouterr().err
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_a_scheduler_without_workers_is_refused_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=0, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        address = str(cluster.scheduler_address)
        args = ["study", "sweep", "hybrid", "-o", str(out), "--vary", "seed=1", "--quiet"]
        assert main([*args, "--dask", address]) == 2
    error = capsys.readouterr().err
    assert "the scheduler has no workers" in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_runs_from_another_code_version_are_refused_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process claims another version than the pool's processes run.
    monkeypatch.setattr("node.cli.study_common.code_version", lambda: "0.0.0-other")
    out = tmp_path / "sweep"
    args = ["study", "sweep", "hybrid", "-o", str(out), "--scale", SCALE, "--workers", "1"]
    assert main([*args, "--vary", "seed=1", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "this machine has 0.0.0-other" in error and "nothing was written" in error
    assert not out.exists()
