"""`ephyto bench exchange`: direct exchange between two node processes, and its ceiling.

The sender and the receiver are real `ephyto node serve` processes with durable SQLite
stores; certificates go in through the sender's API and the figures come from the
nodes' own records (submitted at, receipt stored at). The ceiling, measured in the same
run, is bare aiohttp POSTs of the same sealed bytes over the same mutual TLS to a
server that only reads them: what the transport alone allows.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Certificate
from node.certificate.xml_build import to_xml_bytes
from node.demo.network import DemoError, Network, free_port
from node.demo.scenario import routed
from node.envelope.envelope import EnvelopeHeader, seal
from node.identity.config import load_config
from node.identity.keys import load_encryption_key, load_signing_key
from node.samples import sample_model_bytes
from node.web.tls import server_ssl_context


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured."""

    delivered: int
    failed: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def certificates(count: int, prefix: str, source: Path | None) -> list[bytes]:
    """`count` distinct NL->KE certificates made from the bench sample."""
    base = _sample(source)
    return [
        to_xml_bytes(routed(base, exporter="NL", importer="KE", number=f"{prefix}-{i:06d}"))
        for i in range(count)
    ]


def _sample(source: Path | None) -> Certificate:
    if source is None:
        return certificate_from_json(sample_model_bytes("phyto"))
    from node.certificate import safe_xml
    from node.certificate.xml_parse import certificate_from_tree

    return certificate_from_tree(safe_xml.parse(source.read_bytes()))


async def load(
    net: Network, xmls: list[bytes], *, rate: float | None, concurrency: int
) -> LoadResult:
    """Submit every certificate to NL (at `rate` per second, or as fast as it takes) and
    wait for every receipt; latencies are the nodes' own submit-to-receipt times."""
    node = net.nodes["NL"]
    headers = {"Authorization": f"Bearer {node.api_token}", "Content-Type": "application/xml"}
    ids: list[int] = []
    limiter = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def submit(xml: bytes) -> None:
            async with limiter, session.post(f"{node.api_url}/certificates", data=xml) as r:
                if r.status != 202:
                    raise DemoError(f"submit refused: {r.status} {(await r.text())[:200]}")
                ids.append((await r.json())["id"])

        tasks = []
        start = time.monotonic()
        for i, xml in enumerate(xmls):
            if rate is not None:
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(submit(xml)))
        await asyncio.gather(*tasks)
        wanted = set(ids)
        rows: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            url = f"{node.api_url}/certificates?direction=sent&limit=1000"
            offset = 0
            while True:
                async with session.get(f"{url}&offset={offset}") as r:
                    page = (await r.json())["certificates"]
                for row in page:
                    if row["id"] in wanted:
                        rows[row["id"]] = row
                if len(page) < 1000:
                    break
                offset += 1000
            if all(rows.get(i, {}).get("state") in ("delivered", "failed") for i in wanted):
                break
            await asyncio.sleep(0.25)
    settled = [r for r in rows.values() if r["state"] == "delivered"]
    created = [datetime.fromisoformat(r["created_at"]) for r in rows.values()]
    done = [datetime.fromisoformat(r["settled_at"]) for r in settled]
    latencies = [
        (
            datetime.fromisoformat(r["settled_at"]) - datetime.fromisoformat(r["created_at"])
        ).total_seconds()
        * 1000
        for r in settled
    ]
    seconds = (max(done) - min(created)).total_seconds() if done else 0.0
    failed = sum(1 for r in rows.values() if r["state"] == "failed")
    return LoadResult(len(settled), failed, seconds, latencies)


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set size (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sealed_envelope(net: Network, xml: bytes) -> bytes:
    """One NL->KE envelope sealed with the nodes' real keys: the ceiling's payload."""
    nl = load_config(net.nodes["NL"].directory / "node.toml")
    ke = load_config(net.nodes["KE"].directory / "node.toml")
    signing = load_signing_key(nl.path(nl.keys.signing).read_bytes(), str(nl.keys.signing))
    recipient = load_encryption_key(
        ke.path(ke.keys.encryption).read_bytes(), str(ke.keys.encryption)
    )
    header = EnvelopeHeader(
        message_id="00000000-0000-4000-8000-000000000001",
        from_country="NL",
        to_country="KE",
        certificate_type="851",
        certificate_status="70",
        certificate_number="NL-CEILING-1",
        created=datetime.now(UTC).replace(microsecond=0),
    )
    return seal(
        header=header,
        payload=xml,
        sender_signing_key=signing,
        recipient_public_key=recipient.public_key(),
    )


def ceiling(net: Network, envelope: bytes, *, requests: int, concurrency: int) -> float:
    """Bare POSTs per second of `envelope` over the nodes' mutual TLS, server in a process."""
    nl = load_config(net.nodes["NL"].directory / "node.toml")
    ke = load_config(net.nodes["KE"].directory / "node.toml")
    port = free_port()
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(
        target=_bare_server,
        args=(
            str(ke.path(ke.keys.tls_certificate)),
            str(ke.path(ke.keys.tls_key)),
            nl.path(nl.keys.tls_certificate).read_bytes(),
            port,
            ready,
        ),
        daemon=True,
    )
    server.start()
    try:
        if not ready.wait(30):
            raise DemoError("the ceiling server did not start")
        return asyncio.run(
            _bare_posts(
                port,
                envelope,
                nl.path(nl.keys.tls_certificate),
                nl.path(nl.keys.tls_key),
                requests=requests,
                concurrency=concurrency,
            )
        )
    finally:
        server.terminate()
        server.join(10)


def _bare_server(cert: str, key: str, client_cert: bytes, port: int, ready: Any) -> None:
    async def read(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"ok")

    async def main() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/ephyto/v1/envelopes", read)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ssl = server_ssl_context(Path(cert), Path(key), trusted_client_certs=lambda: [client_cert])
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _bare_posts(
    port: int, envelope: bytes, cert: Path, key: Path, *, requests: int, concurrency: int
) -> float:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(cert, key)
    url = f"https://127.0.0.1:{port}/ephyto/v1/envelopes"
    limiter = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> None:
            async with limiter, session.post(url, data=envelope) as response:
                await response.read()

        await asyncio.gather(*(post() for _ in range(20)))  # warm the connections
        start = time.monotonic()
        await asyncio.gather(*(post() for _ in range(requests)))
        return requests / (time.monotonic() - start)


def summary(result: LoadResult) -> str:
    p50 = statistics.median(result.latencies_ms) if result.latencies_ms else float("nan")
    return (
        f"{result.delivered} delivered, {result.failed} failed in {result.seconds:.2f} s: "
        f"{result.per_second:.0f} certificates/s, submit-to-receipt p50 {p50:.1f} ms, "
        f"p99 {result.percentile(0.99):.1f} ms"
    )
