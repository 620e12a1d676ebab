"""The demo network: a registry and three nodes as real processes on loopback.

Everything goes through the same commands and APIs an operator uses (`ephyto registry
...`, `ephyto node ...`, the national-system API), so the demo exercises the product,
not a shortcut. Every process it starts is stopped when it ends, whatever happens.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from node.certificate.xml_build import to_xml_bytes
from node.demo.scenario import COUNTRIES, NAMES, Step
from node.errors import EphytoError
from node.hub.config import CONFIG_FILE as HUB_CONFIG_FILE
from node.hub.config import dump_hub_config, load_hub_config
from node.identity.config import load_config

READY_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 90.0


# The CLI as a child process. -P: never put the working directory on sys.path, since
# the demo's working directory holds a folder named `registry` (the registry's files),
# which would otherwise shadow the `registry` package.
EPHYTO: Final = (sys.executable, "-P", "-m", "node.cli.main")


class DemoError(EphytoError):
    """The demo network could not be started or driven; the message says which step."""


@dataclass
class NodeHandle:
    """A running node: how to reach its API."""

    country: str
    directory: Path
    exchange_port: int
    api_url: str = ""
    api_token: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """One message of the demo, as the table and --json show it."""

    certificate: str
    sender: str
    recipient: str
    route: str
    status: str
    latency_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "certificate": self.certificate,
            "from": self.sender,
            "to": self.recipient,
            "route": self.route,
            "status": self.status,
            "latency_ms": self.latency_ms,
        }


@dataclass
class Network:
    """The processes of one demo run; `stop()` ends them all."""

    workdir: Path
    log: IO[str]
    countries: tuple[str, ...] = COUNTRIES
    configure_args: tuple[str, ...] = ()
    serve_args: tuple[str, ...] = ()
    # With a hub: these countries have no direct endpoint, and these start only when
    # `restart` is called (a partner that is down at first).
    hub: bool = False
    hub_only: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()
    # The hub's database URL (PostgreSQL, say); None: the SQLite file `hub init` sets.
    hub_database: str | None = None
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    nodes: dict[str, NodeHandle] = field(default_factory=dict)
    registry_url: str = ""
    hub_url: str = ""

    def start(self) -> None:
        """Registry, enrolment, the hub, publication, then the nodes."""
        registry_dir = self.workdir / "registry"
        self._ephyto("registry", "init", "--dir", registry_dir)
        for country in (*self.countries, *self.hub_only):
            port = free_port_pair()
            handle = NodeHandle(country, self.workdir / country, port)
            endpoint = (
                () if country in self.hub_only else ("--endpoint", f"https://127.0.0.1:{port}")
            )
            self._ephyto(
                "node",
                "init",
                "--country",
                country,
                "--name",
                NAMES[country],
                *endpoint,
                "--dir",
                handle.directory,
            )
            self._ephyto(
                "registry",
                "add",
                handle.directory / "enrolment-request.json",
                "--dir",
                registry_dir,
            )
            self.nodes[country] = handle
        hub_dir = self.workdir / "hub"
        if self.hub:
            self.hub_url = f"https://127.0.0.1:{free_port()}"
            self._ephyto("hub", "init", "--name", "Demo hub", "--endpoint", self.hub_url,
                         "--dir", hub_dir)  # fmt: skip
            self._ephyto("registry", "set-hub", hub_dir / "hub-request.json",
                         "--dir", registry_dir)  # fmt: skip
        self._ephyto("registry", "publish", "--dir", registry_dir, "--expires-in", "1d")
        registry_port = free_port()
        self.registry_url = f"http://127.0.0.1:{registry_port}/directory.json"
        self._spawn(
            "registry", "registry", "serve", "--dir", registry_dir, "--port", str(registry_port)
        )
        _wait_for_http(self.registry_url, READY_TIMEOUT)
        anchor = registry_dir / "maintainers" / "maintainers.json"
        if self.hub:
            self._ephyto("hub", "configure", "--dir", hub_dir, "--registry", self.registry_url,
                         "--anchor", anchor)  # fmt: skip
            if self.hub_database is not None:
                path = hub_dir / HUB_CONFIG_FILE
                settings = replace(load_hub_config(path), database_url=self.hub_database)
                path.write_text(dump_hub_config(settings), encoding="utf-8")
            self.serve_hub()
        for handle in self.nodes.values():
            # A hub-only node listens for its API alone, on the second port of its pair.
            api_port = (
                ("--api-port", str(handle.exchange_port + 1))
                if handle.country in self.hub_only
                else ()
            )
            self._ephyto(
                "node",
                "configure",
                "--dir",
                handle.directory,
                "--registry",
                self.registry_url,
                "--anchor",
                anchor,
                *api_port,
                *self.configure_args,
            )
            if self.hub:
                with (handle.directory / "node.toml").open("a", encoding="utf-8") as config:
                    # Demo pace: fall back after one failed attempt, look at the hub often.
                    config.write("\n[hub]\nfallback_attempts = 1\npoll_seconds = 1\n")
            handle.api_token = load_config(handle.directory / "node.toml").api_token
            if handle.country not in self.deferred:
                self._serve(handle)

    def kill(self, country: str) -> None:
        """SIGKILL a node: no shutdown, no flush, as a crash or power cut would."""
        for name, process in self.processes:
            if name == f"node {country}" and process.poll() is None:
                process.kill()
                process.wait()

    def restart(self, country: str) -> None:
        """Start a node again (after `kill`) and wait until it is ready."""
        self._serve(self.nodes[country])

    def serve_hub(self, directory: Path | None = None) -> None:
        """Start `ephyto hub serve` on `directory` (the network's hub by default; another
        directory is, say, a copy of it listening on another port) and wait until ready."""
        name = self._hub_process_name(directory)
        starts = sum(1 for n, _ in self.processes if n == name)
        stem = name.replace(" ", "-")
        log = self._spawn(
            name,
            "hub",
            "serve",
            "--dir",
            directory or self.workdir / "hub",
            log_name=f"{stem}.log" if starts == 0 else f"{stem}-{starts + 1}.log",
        )
        _wait_for_line(log, "hub Demo hub ready:", "the hub", READY_TIMEOUT)

    def kill_hub(self, directory: Path | None = None) -> None:
        """SIGKILL the hub process on `directory` (the network's hub by default)."""
        name = self._hub_process_name(directory)
        for n, process in self.processes:
            if n == name and process.poll() is None:
                process.kill()
                process.wait()

    def restart_hub(self, directory: Path | None = None) -> None:
        """Serve the hub again (after `kill_hub`), on the same port and database."""
        self.serve_hub(directory)

    def _hub_process_name(self, directory: Path | None) -> str:
        if directory is None or directory == self.workdir / "hub":
            return "hub"
        return f"hub {directory.name}"

    def pid(self, country: str) -> int:
        """The process id of a running node."""
        for name, process in reversed(self.processes):
            if name == f"node {country}" and process.poll() is None:
                return process.pid
        raise DemoError(f"node {country} is not running")

    def api(self, country: str, method: str, path: str, xml: bytes | None = None) -> Any:
        """Call a node's national-system API; the decoded JSON answer."""
        return self._api(self.nodes[country], method, path, xml)

    def _serve(self, handle: NodeHandle) -> None:
        starts = sum(1 for name, _ in self.processes if name == f"node {handle.country}")
        log = self._spawn(
            f"node {handle.country}",
            "node",
            "serve",
            "--dir",
            handle.directory,
            *self.serve_args,
            log_name=f"node-{handle.country}-{starts + 1}.log",
        )
        handle.api_url = _wait_for_ready(log, handle.country, READY_TIMEOUT)

    def run(self, steps: list[Step]) -> list[Row]:
        """Send the steps through the senders' APIs and wait for every delivery."""
        return self.settle(self.send(steps))

    def send(self, steps: list[Step]) -> list[tuple[str, int, str]]:
        """Send the steps; (sender, message id, label) of each, for `settle`."""
        sent: dict[tuple[str, str], int] = {}  # (sender, certificate number) -> message
        started: list[tuple[str, int, str]] = []
        for step in steps:
            message, label = self._do(step, sent)
            started.append((step.sender, message, label))
        return started

    def settle(self, started: list[tuple[str, int, str]]) -> list[Row]:
        """Wait for every sent message to settle; one row each."""
        return [self._settled(sender, message, label) for sender, message, label in started]

    def wait_for_route(self, sender: str, message: int, route: str) -> None:
        """Wait until a message has taken `route` (the hub has it, say)."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while time.monotonic() < deadline:
            if (
                self._api(self.nodes[sender], "GET", f"/certificates/{message}", None)["route"]
                == route
            ):
                return
            time.sleep(0.1)
        raise DemoError(f"message {message} from {sender} did not take the {route} route")

    def stop(self) -> None:
        """Stop every process: SIGTERM, then SIGKILL for any that does not exit in time."""
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _do(self, step: Step, sent: dict[tuple[str, str], int]) -> tuple[int, str]:
        node = self.nodes[step.sender]
        if step.action == "submit":
            assert step.certificate is not None
            body = self._api(node, "POST", "/certificates", to_xml_bytes(step.certificate))
            sent[(step.sender, step.certificate.number)] = body["id"]
            return body["id"], step.certificate.number
        assert step.target is not None
        target = sent[(step.sender, step.target)]
        if step.action == "withdraw":
            body = self._api(node, "POST", f"/certificates/{target}/withdraw", None)
            return body["id"], f"{step.target} (withdrawal)"
        assert step.certificate is not None
        query = urllib.parse.urlencode({"reason": step.reason})
        body = self._api(
            node, "POST", f"/certificates/{target}/replace?{query}", to_xml_bytes(step.certificate)
        )
        sent[(step.sender, step.certificate.number)] = body["id"]
        return body["id"], f"{step.certificate.number} (replaces {step.target})"

    def _settled(self, sender: str, message: int, label: str) -> Row:
        node = self.nodes[sender]
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            body = self._api(node, "GET", f"/certificates/{message}", None)
            if body["state"] in ("delivered", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        latency = None
        if body["settled_at"]:
            spent = datetime.fromisoformat(body["settled_at"]) - datetime.fromisoformat(
                body["created_at"]
            )
            latency = round(spent.total_seconds() * 1000, 1)
        state = body["state"] if body["state"] != "queued" else "not delivered (timed out)"
        if body["outcome"] and state == "delivered":
            state = f"delivered ({body['outcome']})"
        return Row(label, body["from"], body["to"], body["route"] or "-", state, latency)

    def _api(self, node: NodeHandle, method: str, path: str, xml: bytes | None) -> Any:
        request = urllib.request.Request(
            node.api_url + path,
            data=xml if xml is not None else (b"" if method == "POST" else None),
            method=method,
            headers={"Authorization": f"Bearer {node.api_token}"}
            | ({"Content-Type": "application/xml"} if xml is not None else {}),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            raise DemoError(f"node {node.country} API {method} {path}: {e.code} {detail}") from None
        except OSError as e:
            raise DemoError(f"node {node.country} API {method} {path}: {e}") from None

    def _ephyto(self, *args: str | Path) -> None:
        command = [*EPHYTO, *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.workdir)
        self.log.write(f"$ ephyto {' '.join(map(str, args))}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
            raise DemoError(f"`ephyto {' '.join(map(str, args[:2]))}` failed: {' '.join(last)}")

    def _spawn(self, name: str, *args: str | Path, log_name: str | None = None) -> Path:
        log_path = self.workdir / (log_name or f"{name.replace(' ', '-')}.log")
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*EPHYTO, *map(str, args)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                # Its own process group: a Ctrl-C in the terminal reaches the demo, which
                # then stops every process itself, in order.
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.processes.append((name, process))
        return log_path


@contextmanager
def network(
    workdir: Path,
    log: IO[str],
    countries: tuple[str, ...] = COUNTRIES,
    configure_args: tuple[str, ...] = (),
    serve_args: tuple[str, ...] = (),
    *,
    hub: bool = False,
    hub_only: tuple[str, ...] = (),
    deferred: tuple[str, ...] = (),
    hub_database: str | None = None,
) -> Iterator[Network]:
    """A started demo network that is always stopped on exit."""
    net = Network(
        workdir, log, countries, configure_args, serve_args,
        hub=hub, hub_only=hub_only, deferred=deferred, hub_database=hub_database,
    )  # fmt: skip
    try:
        net.start()
        yield net
    finally:
        net.stop()


# Where the kernel picks the local ports of outgoing connections (Linux default).
EPHEMERAL_PORTS_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_LOW: Final = 32768
LOWEST_PORT: Final = 10000


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port asked of the kernel with bind(0) comes from the ephemeral range, and is free
    only until the listener binds it: in between, an outgoing connection (a node's
    refresh every second) can take it as its local port, and the listener fails with
    "address already in use". Ports below that range are never handed out that way.
    """
    high = _ephemeral_low() - 1
    if high <= LOWEST_PORT:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    chooser = random.SystemRandom()
    for _ in range(200):
        port = chooser.randrange(LOWEST_PORT, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DemoError(f"no free port on 127.0.0.1 between {LOWEST_PORT} and {high}")


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_PORTS_FILE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return LINUX_EPHEMERAL_LOW


def free_port_pair() -> int:
    """A port whose successor is free too: a node listens on both (exchange, API)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise DemoError("no two adjacent free ports on 127.0.0.1")


def _wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"the registry did not answer at {url} within {timeout:.0f} s")


def _wait_for_line(log_path: Path, prefix: str, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if any(line.startswith(prefix) for line in text.splitlines()):
            return
        time.sleep(0.1)
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    raise DemoError(f"{what} did not become ready: {' | '.join(tail)}")


def _wait_for_ready(log_path: Path, country: str, timeout: float) -> str:
    """The node's API URL, from the line it prints when ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(f"node {country} ready:") and "api " in line:
                return line.rsplit("api ", 1)[1].strip().rstrip("/") + "/api/v1"
        time.sleep(0.1)
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    raise DemoError(f"node {country} did not become ready: {' | '.join(tail)}")
