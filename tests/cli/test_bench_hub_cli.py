"""`ephyto bench hub`, run as users run it: figures printed, never judged by their values."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cert_cli import ephyto

LABELS = (
    "envelope:",
    "sqlite:     relayed:",
    "sqlite:     deliver-to-ack latency: p50",
    "sqlite:     hub CPU:",
    "sqlite:     hub peak RSS:",
    "sqlite:     baseline:",
    "postgresql: skipped (--no-postgres)",
    "target: >= 500 relayed/s",
)


def test_bench_hub_prints_each_figure(tmp_path: Path) -> None:
    result = ephyto("bench", "hub", "-n", "20", "--no-postgres", "--dir", tmp_path / "work")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    for label in LABELS:
        assert any(line.startswith(label) for line in lines), (label, result.stdout)
    assert "20 of 20 sent (20 delivered, 0 lost)" in result.stdout
    # The network it started is stopped: its hub wrote its last line.
    assert "hub Demo hub stopped" in (tmp_path / "work" / "hub.log").read_text()


def test_bench_hub_help() -> None:
    result = ephyto("bench", "hub", "--help")
    assert result.returncode == 0
    for option in ("-n COUNT", "--concurrency", "--dir DIR", "--no-postgres", "GetProfile"):
        assert option in result.stdout
