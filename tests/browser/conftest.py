"""Fixtures of the console's browser tests: a demo network (`ephyto demo --keep-running
--json`, run as a user runs it, once per module) and Debian's Chromium driven headless by
Playwright, with a screenshot of each step kept as a test artefact.

Playwright's own browser download cannot work here, so the browser is the system's
/usr/bin/chromium (`.ci/run` installs it with apt-get where it is missing); without it,
the tests skip saying so (their module's mark).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.live_processes import live_under

CHROMIUM = Path("/usr/bin/chromium")
# The demo starts a registry, a hub and four nodes: seconds, but a loaded 2-core machine
# must not fail the test for being slow.
STARTUP_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
# Playwright's wait for one element or navigation; the polls for what crosses the
# network (a certificate, an answer) have their own, longer deadline.
STEP_TIMEOUT_MS = 20_000
VIEWPORT: ViewportSize = {"width": 1200, "height": 760}
# Console messages a test may expect: the browser logs the status of a page it refused.
_REFUSED_PAGE = re.compile(r"Failed to load resource: the server responded with a status of")


@dataclass(frozen=True)
class ConsoleNode:
    """One demo node's console: its country, its URL (ending /console/), and the demo
    users' passwords by user name."""

    country: str
    console: str
    passwords: dict[str, str]


_SHOTS_AT = pytest.StashKey[Path]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say where the screenshots are, whether the tests passed or not."""
    if _SHOTS_AT in config.stash:
        terminalreporter.write_line(f"browser screenshots: {config.stash[_SHOTS_AT]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's outcome on the test, so that teardown knows a test failed and
    photographs the pages it left open."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Where the screenshots go: $EPHYTO_TEST_ARTIFACTS, else a temporary folder; a folder
    per module inside it."""
    base = os.environ.get("EPHYTO_TEST_ARTIFACTS")
    root = Path(base) if base else tmp_path_factory.mktemp("browser-artifacts")
    folder = root / str(request.module.__name__).rpartition(".")[2]
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {folder}")
    request.config.stash[_SHOTS_AT] = folder
    return folder


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ConsoleNode]]:
    """A demo network left running for the module's tests: each node's console by
    country. Stopped afterwards with Ctrl-C's signal, then killed if it lingers, and
    any process of its left behind is killed: nothing stays running."""
    workdir = tmp_path_factory.mktemp("browser-demo") / "demo"
    stderr_path = workdir.parent / "demo-stderr.txt"
    print(f"\ndemo network (its nodes' logs): {workdir}")
    script = Path(sys.executable).parent / "ephyto"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            [*command, "demo", "--keep-running", "--json", "--dir", str(workdir)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        lines = _lines_of(process.stdout)
        try:
            reach = _network_line(process, lines, stderr_path)
            yield {
                node["country"]: ConsoleNode(
                    node["country"],
                    node["console"],
                    {u["user"]: u["password"] for u in node["console_users"]},
                )
                for node in reach["nodes"]
            }
        finally:
            _stop(process, workdir)


def _lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come, read by a thread (None at its end), so that a
    silent demo fails the wait rather than hangs it."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _network_line(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], stderr_path: Path
) -> dict[str, Any]:
    """The demo's last line: after the deliveries' JSON list (ending "]"), one object
    for scripts, with each node's console and its users."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    after_list = False
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            tail = stderr_path.read_text(errors="replace")[-3000:]
            raise AssertionError(
                f"the demo gave no network line (exit {process.poll()}); its stderr ends:\n{tail}"
            )
        if after_list:
            reach: dict[str, Any] = json.loads(line)
            return reach
        after_list = line == "]"


def _stop(process: subprocess.Popen[str], workdir: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # The demo's own processes (nodes, hub, registry) name its directory: any still
    # alive after it stopped is killed, by its id.
    for pid in _processes_under(workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _processes_under(directory: Path) -> list[int]:
    return [pid for pid, _ in live_under(directory)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the whole module."""
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Browsing:
    """A test's browser contexts (one per person signed in), its screenshots, and the
    errors its pages logged: a script error or a Content-Security-Policy refusal fails
    the test; `allow_refused_pages` lets a test that expects a refusal (403, 429) see
    the browser log it."""

    browser: Browser
    folder: Path
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused_pages_allowed: bool = False
    _shots: int = 0

    def page(self, *, javascript: bool = True) -> Page:
        """A new page in a context of its own: its own cookies, so its own session."""
        context = self.browser.new_context(
            viewport=VIEWPORT, java_script_enabled=javascript, locale="en-GB"
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if self.refused_pages_allowed and _REFUSED_PAGE.search(message.text):
            return
        self.errors.append(f"console: {message.text}")

    def shot(self, page: Page, name: str, *, full_page: bool = False) -> Path:
        """A screenshot of this step, numbered in the order taken."""
        self._shots += 1
        path = self.folder / f"{self._shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self, *, failed: bool) -> None:
        for n, context in enumerate(self.contexts):
            if failed:
                for m, page in enumerate(context.pages):
                    try:
                        self.shot(page, f"at-failure-{n}-{m}", full_page=True)
                    except Exception as e:  # a crashed page: the failure says enough
                        print(f"no screenshot of page {n}-{m}: {e}")
            context.close()


@pytest.fixture
def browsing(
    browser: Browser, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    folder = artifacts / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    session = Browsing(browser, folder)
    try:
        yield session
    finally:
        report = getattr(request.node, "report_call", None)
        session.close(failed=report is None or report.failed)
    assert session.errors == [], session.errors
