"""`ephyto demo`, the README's main command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from node.console.users import ConsoleUser, check_password, list_users, users_path
from tests.cli.test_cert_cli import ephyto
from tests.live_processes import live_under

# Generous: the demo takes seconds, but a loaded machine must not fail the test.
LINE_TIMEOUT = 120.0


def _processes_under(directory: Path) -> list[str]:
    """Command lines of live processes that mention `directory` (the demo's children)."""
    return [command for _, command in live_under(directory)]


def test_demo_exchanges_both_ways_falls_back_and_leaves_nothing_running(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = ephyto("demo", "--json", "--dir", workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert {tuple(sorted(row)) for row in rows} == {
        ("certificate", "from", "latency_ms", "linked", "response", "route", "status", "to")
    }
    assert all(row["status"].startswith("delivered") for row in rows), rows
    by_number = {row["certificate"]: row for row in rows}
    # US was down for the first certificate sent to it: it went through the hub.
    assert by_number["NL-DEMO-0000"]["route"] == "hub"
    # CL has no endpoint: reached through the hub only; what CL sends goes direct.
    assert by_number["KE-DEMO-0100"]["route"] == "hub"
    assert by_number["CL-DEMO-0001"]["route"] == "direct"
    assert {row["route"] for row in rows} == {"direct", "hub"}
    assert any("withdrawal" in row["certificate"] for row in rows)
    assert any("replaces" in row["certificate"] for row in rows)
    assert _processes_under(workdir) == []
    # The importer answered a certificate, and its exporter's API shows the answer.
    response = by_number["NL-DEMO-0001"]["response"]
    assert response["from"] == "KE" and response["to"] == "NL"
    assert response["decision"] == "rejected" and response["reason"]
    assert all(row["response"] is None for row in rows if row is not by_number["NL-DEMO-0001"])
    # The importer's copy of the withdrawn certificate links to the withdrawal (status 40).
    linked = by_number["NL-DEMO-0002"]["linked"]
    assert linked["on"] == "US"
    assert linked["status"] == "withdrawn"
    assert linked["by"]["certificate_number"] == "NL-DEMO-0002"
    assert linked["by"]["status"] == "40"
    assert all(row["linked"] is None for row in rows if row is not by_number["NL-DEMO-0002"])
    assert "response: KE -> NL on NL-DEMO-0001: rejected" in result.stderr
    assert "linked: US's copy of NL-DEMO-0002 shows withdrawn by NL-DEMO-0002 (status 40)" in (
        result.stderr
    )
    # Without --keep-running nobody is told a console password: no console users made.
    assert not any(users_path(workdir / c).exists() for c in ("NL", "KE", "US", "CL"))


def test_demo_has_help() -> None:
    result = ephyto("demo", "--help")
    assert result.returncode == 0
    assert "--keep-running" in result.stdout


def test_demo_refuses_a_directory_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = ephyto("demo", "--dir", blocker / "demo")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@dataclass
class _Running:
    """A demo started in the background, as a script would start it, and its output lines
    as they come (None once a stream ends)."""

    process: subprocess.Popen[str]
    stdout: queue.Queue[str | None]
    stderr: queue.Queue[str | None]

    def line(self, stream: queue.Queue[str | None]) -> str:
        """The next line; fails (rather than hangs) if none comes for a long while."""
        line = stream.get(timeout=LINE_TIMEOUT)
        assert line is not None, f"the demo ended (exit {self.process.wait()}) first"
        return line

    def stop(self, signum: signal.Signals) -> int:
        """Signal the demo as Ctrl-C or a service manager would; its exit status."""
        self.process.send_signal(signum)
        return self.process.wait(timeout=LINE_TIMEOUT)


@contextmanager
def _demo(workdir: Path, *args: str) -> Iterator[_Running]:
    """`ephyto demo ARGS --dir WORKDIR` in the background."""
    script = Path(sys.executable).parent / "ephyto"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]
    with subprocess.Popen(
        [*command, "demo", *args, "--dir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        readers = [_reader(process.stdout), _reader(process.stderr)]
        try:
            yield _Running(process, readers[0][1], readers[1][1])
        except BaseException:
            # A failed test must not leave a network running on a shared machine: the
            # demo stops its own on SIGTERM; whatever is left after that is killed.
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=LINE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for pid, _ in live_under(workdir):
                os.kill(pid, signal.SIGKILL)
            raise
        finally:
            for thread, _ in readers:
                thread.join(timeout=LINE_TIMEOUT)


def _reader(stream: IO[str]) -> tuple[threading.Thread, queue.Queue[str | None]]:
    """A thread that reads `stream` line by line into a queue, None at its end."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, lines


def test_demo_keep_running_json_gives_scripts_the_network_on_one_line(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    with _demo(workdir, "--keep-running", "--json") as demo:
        # The deliveries, as `--json` prints them, end with the list's closing bracket.
        listed = []
        while (line := demo.line(demo.stdout)) != "]":
            listed.append(line)
        rows = json.loads("\n".join([*listed, line]))
        assert all(row["status"].startswith("delivered") for row in rows), rows
        # Then one line holding one JSON object: the network, for scripts.
        reach = json.loads(demo.line(demo.stdout))
        assert {"nodes", "registry", "hub"} <= set(reach)
        assert reach["registry"].startswith("http://127.0.0.1:")
        assert reach["hub"].startswith("https://127.0.0.1:")
        nodes = {node["country"]: node for node in reach["nodes"]}
        assert set(nodes) == {"NL", "KE", "US", "CL"}
        for country, node in nodes.items():
            assert {"country", "api", "token", "exchange", "files"} <= set(node)
            assert Path(node["files"]) == workdir / country
            assert (Path(node["files"]) / "node.toml").is_file()
        assert nodes["CL"]["exchange"] is None  # reached through the hub only
        assert nodes["NL"]["exchange"].startswith("https://127.0.0.1:")
        _assert_console_users(workdir, nodes)

        # The object is enough to drive a node: its API answers with its token.
        nl = nodes["NL"]
        request = urllib.request.Request(
            f"{nl['api']}/certificates", headers={"Authorization": f"Bearer {nl['token']}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            sent = json.loads(response.read())["certificates"]
        assert "NL-DEMO-0001" in {m["number"] for m in sent}
        # Progress went to stderr, so stdout stayed JSON; the demo is still up.
        assert demo.line(demo.stderr).startswith("starting ")
        assert demo.process.poll() is None

        assert demo.stop(signal.SIGTERM) == 0
    assert _processes_under(workdir) == []


def _assert_console_users(workdir: Path, nodes: dict[str, dict[str, Any]]) -> None:
    """Each node's console is on its API's listener, and the users the demo printed for
    it sign in there: their passwords verify against the node's console-users.json."""
    expected = [
        ("admin", "admin"), ("clerk", "clerk"), ("officer", "officer"),
        ("officer2", "officer"), ("inspector", "inspector"), ("auditor", "auditor"),
    ]  # fmt: skip
    # Argon2 is slow by design: each distinct (hash, password) pair is verified once.
    to_verify: dict[tuple[str, str], ConsoleUser] = {}
    passwords: set[str] = set()
    for country, node in nodes.items():
        assert node["api"].endswith("/api/v1")
        assert node["console"] == node["api"].removesuffix("/api/v1") + "/console/"
        printed = node["console_users"]
        assert [(u["user"], u["role"]) for u in printed] == expected
        assert all(set(u) == {"user", "password", "role"} for u in printed)
        assert len({u["password"] for u in printed}) == len(expected)  # each its own
        stored = {u.name: u for u in list_users(users_path(workdir / country))}
        assert [(u.name, u.role) for u in stored.values()] == expected
        for user in printed:
            assert len(user["password"]) >= 16
            record = stored[user["user"]]
            to_verify[(record.password_hash, user["password"])] = record
            passwords.add(user["password"])
    assert all(check_password(record, password) for (_, password), record in to_verify.items())
    assert not check_password(next(iter(to_verify.values())), "not-the-password-at-all")
    # The plain passwords were printed, never written: no file of the demo's holds one.
    for path in workdir.rglob("*"):
        try:
            content = path.read_bytes() if path.is_file() else b""
        except FileNotFoundError:
            continue  # a running node's temporary file, gone since it was listed
        assert not any(p.encode() in content for p in passwords), path


def test_demo_says_what_it_does_before_the_deliveries_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "demo"
    with _demo(workdir, "--keep-running") as demo:
        seen: list[str] = []
        while not (line := demo.line(demo.stdout)).startswith("press Ctrl-C"):
            seen.append(line)
        assert demo.stop(signal.SIGINT) == 0
    assert _processes_under(workdir) == []

    # First what it starts, each part once it is ready; then each delivery as it settles;
    # then the table, as before; then how to reach each node's API.
    assert seen[0].startswith("starting "), seen
    header = next(i for i, line in enumerate(seen) if line.startswith("certificate "))
    reach = next(i for i, line in enumerate(seen) if line.startswith("node NL: API "))
    table, progress = seen[header + 1 : reach], seen[:header]
    ready = {line.split(" ready: ")[0]: i for i, line in enumerate(progress) if " ready: " in line}
    assert set(ready) == {"registry", "hub", "node NL", "node KE", "node US", "node CL"}
    settled = [i for i, line in enumerate(progress) if line.startswith("settled: ")]
    assert len(settled) == len(table) == 10, seen
    # US is down at first: it starts later, while the first deliveries settle.
    assert max(i for name, i in ready.items() if name != "node US") < min(settled)
    first = next(progress[i] for i in settled if "NL-DEMO-0000" in progress[i])
    assert "NL -> US" in first and " hub" in first
    assert [line.split(":")[0] for line in seen[reach:] if not line.startswith(" ")] == [
        "node NL", "node KE", "node US", "node CL", "registry", "hub",
    ]  # fmt: skip
    # Under each node's line, its console (on the API's listener) and its users, one a line.
    for country in ("NL", "KE", "US", "CL"):
        at = next(i for i, line in enumerate(seen) if line.startswith(f"node {country}: API "))
        api = seen[at].split()[3]
        assert seen[at + 1] == f"  console {api.removesuffix('/api/v1')}/console/, users:"
        listed = seen[at + 2 : at + 8]
        assert [line.split()[0] for line in listed] == [
            "admin", "clerk", "officer", "officer2", "inspector", "auditor",
        ]  # fmt: skip
        assert all(re.fullmatch(r"    [a-z0-9]+ / [A-Za-z0-9_-]{16,} \([a-z]+\)", line)
                   for line in listed), listed  # fmt: skip
        assert not seen[at + 8].startswith(" ")
