"""The demo network: a registry, nodes and optionally a hub, as real processes on loopback.

Everything goes through the same commands and APIs an operator uses (`ephyto registry
...`, `ephyto node ...`, the national-system API), so the demo exercises the product,
not a shortcut: the one-shot commands each in a child process by default, or as the
caller runs them (`ephyto demo` runs them in its own process, with the same parsers);
the services always as processes of their own. Every process it starts is stopped when
it ends, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Final

from node.certificate.xml_build import to_xml_bytes
from node.clock import SystemClock
from node.console.users import ConsoleUser
from node.demo.console_users import DemoUser, hashed_in_background, write_console_users
from node.demo.deliveries import DELIVERY_TIMEOUT, POLL_SECONDS, Deliveries
from node.demo.deliveries import Row as Row
from node.demo.errors import DemoError as DemoError
from node.demo.ports import free_port as free_port
from node.demo.ports import free_port_pair as free_port_pair
from node.demo.scenario import COUNTRIES, NAMES, Step
from node.hub.config import CONFIG_FILE as HUB_CONFIG_FILE
from node.hub.config import dump_hub_config, load_hub_config
from node.identity.config import load_config
from node.observe.settings import parse_listen

READY_TIMEOUT = 60.0
# Every service's metrics and health listener: loopback, a port the system chooses.
METRICS_LISTEN: Final = "127.0.0.1:0"


# The CLI as a child process. -P: never put the working directory on sys.path, since
# the demo's working directory holds a folder named `registry` (the registry's files),
# which would otherwise shadow the `registry` package.
EPHYTO: Final = (sys.executable, "-P", "-m", "node.cli.main")


# Runs one `ephyto` command line (the words after `ephyto`); its exit status and what it
# printed. The default runs each in a child process, as an operator would.
Command = Callable[[Sequence[str]], tuple[int, str]]


@dataclass
class NodeHandle:
    """A running node: how to reach its API."""

    country: str
    directory: Path
    exchange_port: int
    api_url: str = ""
    api_token: str = ""
    # Its metrics and readiness URLs (node.observe.listener), once it has said them.
    metrics_url: str = ""
    ready_url: str = ""


@dataclass
class Observed:
    """Where a service's metrics and readiness answer (empty until it said so)."""

    metrics: str = ""
    ready: str = ""


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
    # The nodes and the hub log at DEBUG (`serve --verbose`): what a secrets check reads.
    verbose: bool = False
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    nodes: dict[str, NodeHandle] = field(default_factory=dict)
    registry_url: str = ""
    hub_url: str = ""
    # The metrics and readiness URLs of the registry and the hub; a node's are its handle's.
    registry_observed: Observed = field(default_factory=Observed)
    hub_observed: Observed = field(default_factory=Observed)
    # How to run the one-shot commands (init, add, publish, configure); None: each in a
    # child process. The services (`serve`) are always child processes.
    command: Command | None = None
    # Told a line as each service becomes ready (`registry ready: URL`, say).
    report: Callable[[str], None] | None = None
    # Extra environment for a service process, by its name ("node NL", "hub", "registry"):
    # an emulation's HTTPS_PROXY, say.
    environment: Callable[[str], Mapping[str, str]] | None = None
    # Called for each node once configured, before it starts: settings of the caller's
    # own (an emulation's timers) instead of the demo's pace.
    tune_node: Callable[[NodeHandle], None] | None = None
    # More words for `registry serve` (an emulation's timestamp schedule, say).
    registry_serve_args: tuple[str, ...] = ()
    # Officer-console users put on every node before it starts (console-users.json);
    # none by default. Their passwords stay here, for the caller to print.
    console_users: tuple[DemoUser, ...] = ()
    _starting: dict[str, _Start] = field(default_factory=dict, init=False, repr=False)
    _sent: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False)
    _log_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _registry_port: int = field(default=0, init=False, repr=False)

    def start(self) -> None:
        """Registry, enrolment, the hub, publication, then the nodes.

        Only what needs another step's result waits for it: the nodes' and the hub's own
        files are made side by side, configured while the registry enrols and publishes
        them, and the services start together, each reported once it is ready. The console
        users' passwords are hashed meanwhile, on threads of their own.
        """
        with hashed_in_background(self.console_users, now=SystemClock().now()) as records:
            self._start_all(records)

    def _start_all(self, console_records: Callable[[], tuple[ConsoleUser, ...]]) -> None:
        registry_dir = self.workdir / "registry"
        self._registry_port = free_port()
        self.registry_url = f"http://127.0.0.1:{self._registry_port}/directory.json"
        self._ephyto("registry", "init", "--dir", registry_dir)
        # Served before anything is published (it answers 404 until then), so that it is
        # up by the time the hub and the nodes first ask it for the directory.
        registry = self._start_registry()
        anchor = registry_dir / "maintainers" / "maintainers.json"
        hub_dir = self.workdir / "hub"
        for country in (*self.countries, *self.hub_only):
            self.nodes[country] = NodeHandle(country, self.workdir / country, free_port_pair())
        inits: list[list[tuple[str | Path, ...]]] = [
            [self._node_init(handle)] for handle in self.nodes.values()
        ]
        enrol: list[tuple[str | Path, ...]] = [
            ("registry", "add", handle.directory / "enrolment-request.json", "--dir", registry_dir)
            for handle in self.nodes.values()
        ]
        configure: list[list[tuple[str | Path, ...]]] = [
            [self._node_configure(handle, anchor)] for handle in self.nodes.values()
        ]
        if self.hub:
            self.hub_url = f"https://127.0.0.1:{free_port()}"
            inits.append([("hub", "init", "--name", "Demo hub", "--endpoint", self.hub_url,
                           "--dir", hub_dir)])  # fmt: skip
            enrol.append(("registry", "set-hub", hub_dir / "hub-request.json",
                          "--dir", registry_dir))  # fmt: skip
            configure.append([("hub", "configure", "--dir", hub_dir,
                               "--registry", self.registry_url, "--anchor", anchor)])  # fmt: skip
        enrol.append(("registry", "publish", "--dir", registry_dir, "--expires-in", "1d"))
        self._ephyto_all(inits)
        # The registry's changes go one after another (it takes one at a time anyway).
        self._ephyto_all([enrol, *configure])
        if self.hub:
            path = hub_dir / HUB_CONFIG_FILE
            settings = replace(load_hub_config(path), metrics_listen=parse_listen(METRICS_LISTEN))
            if self.hub_database is not None:
                settings = replace(settings, database_url=self.hub_database)
            path.write_text(dump_hub_config(settings), encoding="utf-8")
        for handle in self.nodes.values():
            with (handle.directory / "node.toml").open("a", encoding="utf-8") as config:
                # Each process's metrics on a port of its own, said in its ready lines.
                config.write(f'\n[metrics]\nlisten = "{METRICS_LISTEN}"\n')
            if self.console_users:
                write_console_users(handle.directory, console_records())
            if self.tune_node is not None:
                self.tune_node(handle)
            elif self.hub:
                with (handle.directory / "node.toml").open("a", encoding="utf-8") as config:
                    # Demo pace: fall back after one failed attempt, look at the hub often.
                    config.write("\n[hub]\nfallback_attempts = 1\npoll_seconds = 1\n")
            handle.api_token = load_config(handle.directory / "node.toml").api_token
        # The hub and the nodes ask the registry for the directory once their imports are
        # done, a second or so after they start; the registry started well before them.
        services = [registry, *([self._start_hub(None)] if self.hub else [])]
        services += [
            self._start_node(handle)
            for handle in self.nodes.values()
            if handle.country not in self.deferred
        ]
        self._await(services)

    def _start_registry(self) -> _Start:
        starts = sum(1 for n, _ in self.processes if n == "registry")
        return self._start(
            "registry", "registry", "serve", "--dir", self.workdir / "registry",
            "--port", str(self._registry_port), "--metrics", METRICS_LISTEN,
            *self.registry_serve_args,
            log_name="registry.log" if starts == 0 else f"registry-{starts + 1}.log",
        )  # fmt: skip

    def kill_registry(self) -> None:
        """SIGKILL the registry's server (its files stay as they are)."""
        for name, process in self.processes:
            if name == "registry" and process.poll() is None:
                process.kill()
                process.wait()

    def restart_registry(self) -> None:
        """Serve the registry again (after `kill_registry`) on its port, until it answers."""
        self._await([self._start_registry()])

    def kill(self, country: str) -> None:
        """SIGKILL a node: no shutdown, no flush, as a crash or power cut would."""
        self._starting.pop(f"node {country}", None)
        for name, process in self.processes:
            if name == f"node {country}" and process.poll() is None:
                process.kill()
                process.wait()

    def restart(self, country: str, *, wait: bool = True) -> None:
        """Start a node again (after `kill`, or a deferred one) and wait until it is ready;
        with `wait=False`, return at once: `is_ready` says when it is."""
        start = self._start_node(self.nodes[country])
        if wait:
            self._await([start])
        else:
            self._starting[start.name] = start

    def is_ready(self, country: str) -> bool:
        """Whether a node started with `restart(wait=False)` is ready yet (reported once it
        is). Raises DemoError if it stopped, or took longer than READY_TIMEOUT."""
        start = self._starting.get(f"node {country}")
        if start is None:
            return True
        if not self._became_ready(start):
            return False
        del self._starting[start.name]
        return True

    def serve_hub(self, directory: Path | None = None) -> None:
        """Start `ephyto hub serve` on `directory` (the network's hub by default; another
        directory is, say, a copy of it listening on another port) and wait until ready."""
        self._await([self._start_hub(directory)])

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

    def pid(self, country: str) -> int:
        """The process id of a running node."""
        for name, process in reversed(self.processes):
            if name == f"node {country}" and process.poll() is None:
                return process.pid
        raise DemoError(f"node {country} is not running")

    def api(self, country: str, method: str, path: str, xml: bytes | None = None) -> Any:
        """Call a node's national-system API; the decoded JSON answer."""
        return self._api(self.nodes[country], method, path, xml)

    def api_json(self, country: str, method: str, path: str, body: dict[str, Any]) -> Any:
        """Call a node's national-system API with a JSON body; the decoded JSON answer."""
        return self._api(
            self.nodes[country], method, path, json.dumps(body).encode(), "application/json"
        )

    def sent_id(self, sender: str, number: str) -> int:
        """The sender's message id of a certificate `send` sent (not its withdrawal)."""
        return self._sent[(sender, number)]

    def message(self, sender: str, message: int) -> dict[str, Any]:
        """A sent message as its sender's API shows it: state, route, events."""
        body: dict[str, Any] = self.api(sender, "GET", f"/certificates/{message}")
        return body

    def run(self, steps: list[Step]) -> list[Row]:
        """Send the steps through the senders' APIs and wait for every delivery."""
        return self.settle(self.send(steps))

    def send(self, steps: list[Step]) -> list[tuple[str, int, str]]:
        """Send the steps; (sender, message id, label) of each, for `settle`. A withdrawal
        or replacement may act on a certificate an earlier call sent."""
        return [(step.sender, *self._do(step, self._sent)) for step in steps]

    def settle(
        self, started: list[tuple[str, int, str]], settled: Callable[[Row], None] | None = None
    ) -> list[Row]:
        """Wait for every sent message to settle; one row each, in the order given.
        `settled` is told each row as its message settles, in whatever order they do."""
        deliveries = Deliveries(self, settled)
        deliveries.add(started)
        while not deliveries.poll():
            time.sleep(POLL_SECONDS)
        return deliveries.rows(started)

    def wait_for_route(self, sender: str, message: int, route: str) -> None:
        """Wait until a message has taken `route` (the hub has it, say)."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while time.monotonic() < deadline:
            if self.message(sender, message)["route"] == route:
                return
            time.sleep(POLL_SECONDS)
        raise DemoError(f"message {message} from {sender} did not take the {route} route")

    def stop(self) -> None:
        """Stop every process: SIGTERM, then SIGKILL for any that does not exit in time."""
        self._starting.clear()
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

    def _node_init(self, handle: NodeHandle) -> tuple[str | Path, ...]:
        endpoint = (
            ()
            if handle.country in self.hub_only
            else ("--endpoint", f"https://127.0.0.1:{handle.exchange_port}")
        )
        return ("node", "init", "--country", handle.country, "--name", _nppo_name(handle.country),
                *endpoint, "--dir", handle.directory)  # fmt: skip

    def _node_configure(self, handle: NodeHandle, anchor: Path) -> tuple[str | Path, ...]:
        # A hub-only node listens for its API alone, on the second port of its pair.
        api_port = (
            ("--api-port", str(handle.exchange_port + 1)) if handle.country in self.hub_only else ()
        )
        return ("node", "configure", "--dir", handle.directory, "--registry", self.registry_url,
                "--anchor", anchor, *api_port, *self.configure_args)  # fmt: skip

    def _start_node(self, handle: NodeHandle) -> _Start:
        name = f"node {handle.country}"
        starts = sum(1 for n, _ in self.processes if n == name)
        return self._start(
            name, "node", "serve", "--dir", handle.directory, *self.serve_args,
            *(("--verbose",) if self.verbose else ()),
            log_name=f"node-{handle.country}-{starts + 1}.log",
        )  # fmt: skip

    def _start_hub(self, directory: Path | None) -> _Start:
        name = self._hub_process_name(directory)
        starts = sum(1 for n, _ in self.processes if n == name)
        stem = name.replace(" ", "-")
        return self._start(
            name, "hub", "serve", "--dir", directory or self.workdir / "hub",
            *(("--verbose",) if self.verbose else ()),
            log_name=f"{stem}.log" if starts == 0 else f"{stem}-{starts + 1}.log",
        )  # fmt: skip

    def _hub_process_name(self, directory: Path | None) -> str:
        if directory is None or directory == self.workdir / "hub":
            return "hub"
        return f"hub {directory.name}"

    def _start(self, name: str, *args: str | Path, log_name: str | None = None) -> _Start:
        log = self._spawn(name, *args, log_name=log_name)
        return _Start(name, self.processes[-1][1], log, time.monotonic())

    def _await(self, starts: list[_Start]) -> None:
        """Wait until every one of `starts` is ready, reporting each as it becomes so."""
        pending = list(starts)
        while pending:
            pending = [start for start in pending if not self._became_ready(start)]
            if pending:
                time.sleep(POLL_SECONDS)

    def _became_ready(self, start: _Start) -> bool:
        """Whether `start` is ready now (reported if so); DemoError if it cannot be."""
        found = self._ready_line(start)
        if found is None:
            if start.process.poll() is not None:
                raise DemoError(
                    f"{start.name} stopped before it was ready (exit {start.process.returncode}):"
                    f" {_tail(start.log)}"
                )
            if time.monotonic() - start.began > READY_TIMEOUT:
                raise DemoError(f"{start.name} did not become ready: {_tail(start.log)}")
            return False
        observed = _observed_line(start)
        waited = time.monotonic() - start.began
        if (
            observed is None
            and not _metrics_off(start)
            and start.process.poll() is None
            and waited < READY_TIMEOUT
        ):
            return False  # ready, but its metrics line (printed next) is not written yet
        observed = observed or Observed()
        if start.name.startswith("node "):
            handle = self.nodes[start.name.removeprefix("node ")]
            handle.api_url = found
            handle.metrics_url, handle.ready_url = observed.metrics, observed.ready
            exchange = (
                "none (through the hub only)"
                if handle.country in self.hub_only
                else f"https://127.0.0.1:{handle.exchange_port}"
            )
            found = f"API {found}, exchange {exchange}"
        elif start.name == "registry":
            self.registry_observed = observed
        elif start.name == "hub":
            self.hub_observed = observed
        if observed.metrics:
            found = f"{found}, metrics {observed.metrics}, ready {observed.ready}"
        if self.report is not None:
            self.report(f"{start.name} ready: {found}")
        return True

    def _ready_line(self, start: _Start) -> str | None:
        """What the ready service says where it is (a node: its API URL), or None yet."""
        if start.name == "registry":
            return self.registry_url if _answers(self.registry_url) else None
        lines = start.log.read_text(encoding="utf-8", errors="replace").splitlines()
        if start.name.startswith("node "):
            for line in lines:
                if line.startswith(f"{start.name} ready:") and "api " in line:
                    return line.rsplit("api ", 1)[1].strip().rstrip("/") + "/api/v1"
            return None
        for line in lines:  # a hub: "hub <its name> ready: <its service URL>"
            if line.startswith("hub ") and " ready: " in line:
                return line.split(" ready: ", 1)[1].strip()
        return None

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

    def _api(
        self,
        node: NodeHandle,
        method: str,
        path: str,
        xml: bytes | None,
        content_type: str = "application/xml",
    ) -> Any:
        request = urllib.request.Request(
            node.api_url + path,
            data=xml if xml is not None else (b"" if method == "POST" else None),
            method=method,
            headers={"Authorization": f"Bearer {node.api_token}"}
            | ({"Content-Type": content_type} if xml is not None else {}),
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
        words = [str(arg) for arg in args]
        code, printed = (self.command or self._child)(words)
        with self._log_lock:
            self.log.write(f"$ ephyto {' '.join(words)}\n{printed}")
        if code != 0:
            last = printed.strip().splitlines()[-1:]
            raise DemoError(f"`ephyto {' '.join(words[:2])}` failed: {' '.join(last)}")

    def _ephyto_all(self, chains: list[list[tuple[str | Path, ...]]]) -> None:
        """Run the chains of commands side by side, each chain's one after another; the
        first failure is raised once all have ended."""

        def run(chain: list[tuple[str | Path, ...]]) -> None:
            for args in chain:
                self._ephyto(*args)

        with ThreadPoolExecutor(max_workers=max(len(chains), 1)) as pool:
            done = [pool.submit(run, chain) for chain in chains]
        for future in done:
            future.result()

    def _child(self, words: Sequence[str]) -> tuple[int, str]:
        result = subprocess.run([*EPHYTO, *words], capture_output=True, text=True, cwd=self.workdir)
        # The error line is on stderr, last: what `_ephyto` quotes when the command fails.
        return result.returncode, result.stdout + result.stderr

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
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    **(self.environment(name) if self.environment is not None else {}),
                },
            )
        self.processes.append((name, process))
        return log_path


@dataclass(frozen=True, slots=True)
class _Start:
    """A service process just started: what to look at to know it is ready."""

    name: str  # "registry", "hub", "node NL"
    process: subprocess.Popen[bytes]
    log: Path
    began: float  # time.monotonic()


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
    command: Command | None = None,
    report: Callable[[str], None] | None = None,
    verbose: bool = False,
    console_users: tuple[DemoUser, ...] = (),
) -> Iterator[Network]:
    """A started demo network that is always stopped on exit."""
    net = Network(
        workdir, log, countries, configure_args, serve_args,
        hub=hub, hub_only=hub_only, deferred=deferred, hub_database=hub_database,
        command=command, report=report, verbose=verbose, console_users=console_users,
    )  # fmt: skip
    try:
        net.start()
        yield net
    finally:
        net.stop()


def _observed_line(start: _Start) -> Observed | None:
    """The metrics and readiness URLs a service printed (`<name> metrics: URL, ready URL`,
    the registry's `registry metrics URL, ready URL`), or None before it did."""
    text = start.log.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        match = _OBSERVED.match(line)
        if match is not None and (start.name == "registry") == (match["who"] == "registry"):
            return Observed(match["metrics"], match["ready"])
    return None


def _metrics_off(start: _Start) -> bool:
    """Whether a node said it has no metrics listener: then no metrics line will follow
    its ready line, and waiting for one would only run out READY_TIMEOUT."""
    text = start.log.read_text(encoding="utf-8", errors="replace")
    return start.name.startswith("node ") and "metrics off ([metrics] listen is not set)" in text


_OBSERVED = re.compile(
    r"^(?P<who>registry|hub .+|node [A-Z]{2}):? metrics:? (?P<metrics>http://\S+),"
    r" ready (?P<ready>http://\S+)$"
)


def _nppo_name(country: str) -> str:
    """The demo's NPPO names; for other countries (an emulation's), a plain one."""
    return NAMES.get(country, f"National Plant Protection Organization ({country})")


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at `url`, whatever it answers (404 included)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as e:
        e.close()
        return True
    except OSError:
        return False


def _tail(log_path: Path) -> str:
    """The last lines of a service's log, for an error message."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return " | ".join(text.strip().splitlines()[-3:])
