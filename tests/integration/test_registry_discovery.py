"""A lab registry announced by mDNS and `ephyto node init --discover`, on real mDNS bound to
127.0.0.1 and real `ephyto registry serve` processes: discovery finds, the operator's
fingerprint and the maintainers' signatures decide.

Order matters here: the tests that need nothing announced come before the module
fixture `served` starts announcing registries on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from node.crypto.canonical import canonical_bytes
from node.demo.network import free_port
from node.directory import MaintainerSet
from node.directory.fingerprint import maintainer_fingerprint
from node.identity.config import load_config
from node.transport.registry_discovery import (
    SERVICE_TYPE,
    RegistryAnnouncement,
    RegistryAnnouncer,
    async_browse_registries,
)
from tests.integration.test_discovery import _loopback_multicast_problem

LOOPBACK = ["127.0.0.1"]
BROWSE = "2"  # seconds a node listens: enough on loopback (under load too), short


def _command() -> list[str]:
    script = Path(sys.executable).parent / "ephyto"
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]


def ephyto(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, with what they type on stdin."""
    return subprocess.run(
        [*_command(), *map(str, args)], input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def mdns() -> None:
    if problem := _loopback_multicast_problem():
        pytest.skip(f"{problem} (try `ip link set lo multicast on`)")


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == [], f"threads outlived the test: {left}"


# --- registries on disk, and `registry serve --announce` in a process ----------------------


@dataclass(frozen=True)
class Registry:
    root: Path
    fingerprint: str

    @property
    def anchor(self) -> Path:
        return self.root / "maintainers" / "maintainers.json"


def _make_registry(root: Path) -> Registry:
    for args in (("init",), ("publish",)):
        result = ephyto("registry", *args, "--dir", root)
        assert result.returncode == 0, result.stderr
    maintainers = MaintainerSet.from_plain(
        json.loads((root / "maintainers/maintainers.json").read_bytes())
    )
    return Registry(root, maintainer_fingerprint(maintainers))


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, Registry]:
    """The lab's real registry and a rogue one (other maintainers), both published."""
    root = tmp_path_factory.mktemp("registries")
    return _make_registry(root / "real"), _make_registry(root / "rogue")


@contextmanager
def _serve(registry: Registry, *extra: str) -> Iterator[str]:
    """`ephyto registry serve --announce 127.0.0.1` until announced; the directory's URL."""
    port = free_port()
    process = subprocess.Popen(
        [*_command(), "registry", "serve", "--dir", str(registry.root), "--port", str(port),
         "--announce", "127.0.0.1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + 30
        out = b""
        # Raw reads: a buffered readline could hold the line waited for while select waits.
        while b"announced by mDNS" not in out:
            assert time.monotonic() < deadline, f"not announced: {out!r}"
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                assert chunk, f"registry serve ended: {out!r} {process.communicate()[1]!r}"
                out += chunk
        yield f"http://127.0.0.1:{port}/directory.json"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@dataclass(frozen=True)
class Served:
    real: Registry
    rogue: Registry
    real_url: str
    rogue_url: str


@pytest.fixture(scope="module")
def served(mdns: None, registries: tuple[Registry, Registry]) -> Iterator[Served]:
    real, rogue = registries
    with _serve(real, "--name", "Lab registry") as real_url, _serve(rogue) as rogue_url:
        yield Served(real, rogue, real_url, rogue_url)


def _init(node: Path, *extra: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return ephyto(
        "node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", node, "--discover",
        "--interface", "127.0.0.1", "--timeout", BROWSE, *extra, stdin=stdin,
    )  # fmt: skip


def _assert_configured(node: Path, url: str, registry: Registry) -> None:
    config = load_config(node / "node.toml")
    assert config.registry_url == url
    assert config.registry_anchor == "maintainers.json"
    # The anchor as the registry wrote it, byte for byte.
    assert (node / "maintainers.json").read_bytes() == registry.anchor.read_bytes()


def _assert_not_configured(node: Path, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "points at no registry (the identity just created stays)" in result.stderr
    config = load_config(node / "node.toml")  # the identity is there ...
    assert (node / "enrolment-request.json").is_file()
    assert config.registry_url is None  # ... pointed at nothing
    assert config.registry_anchor is None
    assert not (node / "maintainers.json").exists()


def _digits(fingerprint: str) -> str:
    return fingerprint.removeprefix("sha256:")


# --- nothing announced: first, before any test announces on loopback ------------------


@pytest.mark.usefixtures("mdns")
def test_no_registry_found_leaves_the_node_unconfigured(tmp_path: Path) -> None:
    node = tmp_path / "ke"
    result = _init(node, "--fingerprint", _random_fingerprint())
    assert "created node identity" in result.stdout
    # Another test run on this host may be announcing registries of its own: then the
    # refusal is that none has this fingerprint, and the node is left unconfigured all the same.
    assert (
        "no registry announced itself within 2s on 127.0.0.1" in result.stderr
        or "no registry found announces the fingerprint you confirmed" in result.stderr
    ), result.stdout
    _assert_not_configured(node, result)


# --- in process: announce, browse, ignore what is malformed --------------------------------


def _random_fingerprint() -> str:
    return "sha256:" + secrets.token_hex(32)


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_an_announced_registry_is_found_as_announced() -> None:
    lab = RegistryAnnouncement("127.0.0.1", 8400, "/directory.json", _random_fingerprint(), "Lab")
    bare = RegistryAnnouncement("127.0.0.1", 8401, "/v1/directory.json", _random_fingerprint())
    async with (
        RegistryAnnouncer(lab, interfaces=LOOPBACK) as announcer,
        RegistryAnnouncer(bare, interfaces=LOOPBACK),
    ):
        assert announcer.instance_name == f"{lab.instance_name}.{SERVICE_TYPE}"
        seen = await async_browse_registries(2, LOOPBACK)
    ours = [a for a in seen if a.fingerprint in {lab.fingerprint, bare.fingerprint}]
    assert ours == [lab, bare]  # sorted by URL, every field as announced


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_malformed_registry_announcements_are_ignored_not_half_used() -> None:
    good = RegistryAnnouncement("127.0.0.1", 8400, "/directory.json", _random_fingerprint())
    fp = f"fingerprint={_random_fingerprint()}".encode()
    bad_texts = {
        "badfp": b"\x09txtvers=1\x14path=/directory.json\x1afingerprint=sha256:not-hex",
        "nopath": b"\x09txtvers=1" + bytes((len(fp),)) + fp,
        "badpath": b"\x09txtvers=1\x17path=/../directory.json" + bytes((len(fp),)) + fp,
    }
    zc = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        infos = [
            AsyncServiceInfo(
                SERVICE_TYPE,
                f"ephyto-bad-{label}-{secrets.token_hex(4)}.{SERVICE_TYPE}",
                addresses=[socket.inet_aton("127.0.0.1")],
                port=8400,
                properties=text,
                server=f"bad-{secrets.token_hex(4)}.local.",
            )
            for label, text in bad_texts.items()
        ]
        await asyncio.gather(*[await zc.async_register_service(info) for info in infos])
        ignored: list[tuple[str, str]] = []
        async with RegistryAnnouncer(good, interfaces=LOOPBACK):
            seen = await async_browse_registries(
                2, LOOPBACK, on_ignored=lambda n, r: ignored.append((n, r))
            )
    finally:
        await zc.async_close()
    assert good in seen
    assert all(not a.url.endswith(":8400/directory.json") or a == good for a in seen)
    reasons = {n.split("-")[2]: r for n, r in ignored if n.startswith("ephyto-bad-")}
    assert "fingerprint 'sha256:not-hex' is not sha256:<64" in reasons["badfp"]
    assert "TXT record has no 'path'" in reasons["nopath"]
    assert "path '/../directory.json' is not an absolute path" in reasons["badpath"]


# --- only what does not verify ----------------------------------------------------------


@asynccontextmanager
async def _static(data: bytes, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A plain HTTP server answering /directory.json with `data`; its port."""

    async def directory(_: web.Request) -> web.Response:
        return web.Response(body=data, content_type="application/json")

    app = web.Application()
    app.router.add_get("/directory.json", directory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _init_in_thread(node: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # The announcer answers on this loop: the command waits in a thread of its own. It
    # listens a little longer, as this process answers mDNS and runs the test at once.
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: _init(node, *extra, "--timeout", "3")
    )


@pytest.mark.asyncio
@pytest.mark.usefixtures("mdns")
async def test_an_unsigned_copy_of_the_real_directory_is_refused(
    registries: tuple[Registry, Registry], tmp_path: Path
) -> None:
    real, _ = registries
    published = json.loads((real.root / "current.json").read_bytes())
    # The real maintainer set, so the fingerprint matches: only the signatures are missing.
    unsigned = b'{"signatures":[],"signed":' + canonical_bytes(published["signed"]) + b"}"
    node = tmp_path / "ke"
    async with _static(unsigned) as port:
        claim = RegistryAnnouncement("127.0.0.1", port, "/directory.json", real.fingerprint)
        async with RegistryAnnouncer(claim, interfaces=LOOPBACK):
            result = await _init_in_thread(node, "--fingerprint", real.fingerprint)
    refusal = f"refused {claim.url}: directory version 1 has 0 valid signatures"
    assert refusal in result.stderr, result.stdout
    _assert_not_configured(node, result)


# --- real `registry serve --announce` processes --------------------------------------------


def test_registry_fingerprint_is_printed_and_shown(registries: tuple[Registry, Registry]) -> None:
    real, _ = registries
    result = ephyto("registry", "fingerprint", "--dir", real.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == real.fingerprint
    digits = _digits(real.fingerprint)
    assert f"read out: sha256: {digits[:4]} {digits[4:8]} " in result.stdout
    show = ephyto("registry", "show", "--dir", real.root)
    assert f"fingerprint  {real.fingerprint}" in show.stdout


def test_misused_discover_options_create_nothing(tmp_path: Path) -> None:
    node = tmp_path / "ke"
    result = ephyto(
        "node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", node,
        "--fingerprint", _random_fingerprint(),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--fingerprint: only with --discover" in result.stderr
    assert not node.exists()
    short = _init(node, "--fingerprint", "sha256:abcd")
    assert short.returncode == 2 and "give all 64" in short.stderr
    assert not node.exists()


@pytest.mark.asyncio
async def test_registry_serve_announces_itself(served: Served) -> None:
    seen = await async_browse_registries(2, LOOPBACK)
    by_url = {a.url: a for a in seen}
    real, rogue = by_url[served.real_url], by_url[served.rogue_url]
    assert (real.fingerprint, real.name, real.path) == (
        served.real.fingerprint, "Lab registry", "/directory.json",
    )  # fmt: skip
    assert (rogue.fingerprint, rogue.name) == (served.rogue.fingerprint, None)


def test_init_discover_with_the_fingerprint_configures_the_node(
    served: Served, tmp_path: Path
) -> None:
    node = tmp_path / "ke"
    result = _init(node, "--fingerprint", served.real.fingerprint)
    assert result.returncode == 0, result.stderr
    # Both were listed; the rogue, with other maintainers, was not even fetched.
    assert served.real_url in result.stdout and served.rogue_url in result.stdout
    assert f"trusted {served.real_url}: directory version 1" in result.stdout
    assert f"configured {node / 'node.toml'}" in result.stdout
    assert served.rogue_url not in result.stderr
    _assert_configured(node, served.real_url, served.real)


def test_a_fingerprint_no_registry_has_is_refused(served: Served, tmp_path: Path) -> None:
    node = tmp_path / "ke"
    result = _init(node, "--fingerprint", _random_fingerprint())
    assert "no registry found announces the fingerprint you confirmed" in result.stderr
    _assert_not_configured(node, result)


def test_the_rogues_own_fingerprint_gets_the_rogue_never_the_real(
    served: Served, tmp_path: Path
) -> None:
    # The trust is exactly what the operator confirmed: no mixing of the two registries.
    node = tmp_path / "ke"
    result = _init(node, "--fingerprint", served.rogue.fingerprint)
    assert result.returncode == 0, result.stderr
    _assert_configured(node, served.rogue_url, served.rogue)


@pytest.mark.asyncio
async def test_a_rogue_claiming_the_real_fingerprint_is_refused(
    served: Served, tmp_path: Path
) -> None:
    rogue_directory = (served.rogue.root / "current.json").read_bytes()
    # 127.0.0.10 sorts before 127.0.0.1:PORT, so the liar is tried first.
    try:
        server = _static(rogue_directory, host="127.0.0.10")
        port = await server.__aenter__()
    except OSError as e:
        pytest.skip(f"cannot listen on 127.0.0.10: {e}")
    try:
        liar = RegistryAnnouncement("127.0.0.10", port, "/directory.json", served.real.fingerprint)
        node = tmp_path / "ke"
        async with RegistryAnnouncer(liar, interfaces=LOOPBACK):
            result = await _init_in_thread(node, "--fingerprint", served.real.fingerprint)
    finally:
        await server.__aexit__(None, None, None)
    assert result.returncode == 0, result.stderr
    assert f"refused {liar.url}: the directory's maintainer set has fingerprint" in result.stderr
    _assert_configured(node, served.real_url, served.real)


def test_interactive_confirmation_by_typing_the_first_16_digits(
    served: Served, tmp_path: Path
) -> None:
    node = tmp_path / "ke"
    typed = " ".join(_digits(served.real.fingerprint)[i : i + 4] for i in range(0, 16, 4))
    result = _init(node, stdin=f"{typed}\n")
    assert result.returncode == 0, result.stderr
    assert "at least its first 16 hex digits" in result.stdout
    _assert_configured(node, served.real_url, served.real)


@pytest.mark.parametrize("typed", ["y\n", "yes\n", "\n"])
def test_interactive_yes_is_not_a_confirmation(served: Served, tmp_path: Path, typed: str) -> None:
    node = tmp_path / "ke"
    result = _init(node, stdin=typed)
    assert "is not a fingerprint" in result.stderr
    _assert_not_configured(node, result)


def test_interactive_too_few_digits_are_refused(served: Served, tmp_path: Path) -> None:
    node = tmp_path / "ke"
    result = _init(node, stdin=_digits(served.real.fingerprint)[:12] + "\n")
    assert "has 12 hex digits: give at least the first 16" in result.stderr
    _assert_not_configured(node, result)


def test_several_registries_and_no_one_to_answer_is_refused(served: Served, tmp_path: Path) -> None:
    node = tmp_path / "ke"
    result = _init(node, stdin="")  # stdin at its end: a script, a service, CI
    assert "registries found and no fingerprint confirmed (no input)" in result.stderr
    assert "pass --fingerprint FP" in result.stderr
    _assert_not_configured(node, result)


def test_after_a_failed_discovery_configure_discover_tries_again(
    served: Served, tmp_path: Path
) -> None:
    """init --discover refused (a mistyped fingerprint): the identity stays, and
    `node configure --discover` configures it later, keeping configure's own options."""
    node = tmp_path / "ke"
    _assert_not_configured(node, _init(node, "--fingerprint", _random_fingerprint()))
    result = ephyto(
        "node", "configure", "--dir", node, "--discover", "--interface", "127.0.0.1",
        "--timeout", BROWSE, "--fingerprint", served.real.fingerprint, "--api-port", "18999",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _assert_configured(node, served.real_url, served.real)
    assert load_config(node / "node.toml").api_port == 18999


def test_configure_discover_refusals(tmp_path: Path) -> None:
    both = ephyto("node", "configure", "--dir", tmp_path, "--discover", "--registry", "http://x/")
    assert both.returncode == 2 and "drop --registry and --anchor" in both.stderr
    neither = ephyto("node", "configure", "--dir", tmp_path)
    assert neither.returncode == 2 and "--registry URL and --anchor FILE, or --discover" in (
        neither.stderr
    )
    # Nothing to configure: refused before any browsing.
    missing = ephyto("node", "configure", "--dir", tmp_path / "none", "--discover")
    assert missing.returncode == 2 and "node.toml" in missing.stderr
