"""`ephyto bench ...`: benchmarks that print figures (tests never assert on timings)."""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Any

from node.bench import cert as cert_bench
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.validate import Report
from node.certificate.xml_build import to_xml_bytes
from node.errors import InputError
from node.samples import sample_model_bytes


def add_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="run a benchmark and print its figures",
        description="Benchmarks. Each prints figures, with a baseline measured in the same "
        "run so that the ratio means something on a shared, noisy machine.",
    )
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    cert = sub.add_parser(
        "cert",
        help="parse + full validation, and build, of one certificate",
        description="Parse + full validation (all four layers and the model) and build "
        "(model to XML) of one certificate, on one core. Baseline: bare lxml parsing of the "
        "same bytes.",
    )
    cert.add_argument(
        "--file",
        type=Path,
        metavar="XML",
        help="certificate to use (default: the bundled 851 sample)",
    )
    cert.add_argument(
        "--seconds", type=float, default=2.0, help="time to spend on each measurement (default 2)"
    )
    cert.set_defaults(func=_bench_cert)

    exchange = sub.add_parser(
        "exchange",
        help="direct exchange between two node processes, and the transport's ceiling",
        description="Start a registry and two nodes (NL sends, KE receives) as separate "
        "processes on loopback with durable SQLite stores; send N certificates through NL's "
        "API as fast as they are taken, then again at an offered rate; print delivered "
        "certificates/s, p50 and p99 submit-to-receipt latency and each node's peak RSS. "
        "In the same run, the ceiling: bare aiohttp POSTs of the same sealed bytes over the "
        "same mutual TLS to a server that only reads them.",
    )
    exchange.add_argument("-n", "--count", type=int, default=1000, help="certificates (1000)")
    exchange.add_argument(
        "--rate", type=float, default=100.0, help="offered load for the latency run (100/s)"
    )
    exchange.add_argument("--concurrency", type=int, default=32, help="submissions in flight (32)")
    exchange.add_argument("--file", type=Path, metavar="XML", help="certificate to send")
    exchange.add_argument("--dir", type=Path, metavar="DIR", help="work in DIR (kept)")
    exchange.set_defaults(func=_bench_exchange)

    hub = sub.add_parser(
        "hub",
        help="certificates relayed sender -> hub -> receiver (pull), SQLite and PostgreSQL",
        description="Start a registry and a hub (`ephyto hub serve`, a separate process with "
        "its durable store) on loopback; this process plays NL and KE with their real keys "
        "and the hub's pins: NL delivers N distinct sealed envelopes (DeliverEnvelope) while "
        "KE lists, pulls and acknowledges them, both at once. Print relayed certificates/s "
        "(first deliver sent to last acknowledgement), p50 and p99 deliver-to-ack latency, "
        "the hub's CPU time per envelope and its peak RSS. Baseline, in the same run against "
        "the same hub process: bare GetProfile round trips/s over the same mutual TLS. Run "
        "on SQLite (the default store), then on PostgreSQL (a fresh database on "
        "127.0.0.1:5432 as user postgres, dropped afterwards; skipped with a reason when "
        "unavailable). Exits 1 if the hub refused an envelope or one was lost (delivered "
        "but never acknowledged).",
    )
    hub.add_argument("-n", "--count", type=int, default=1000, help="certificates (1000)")
    hub.add_argument(
        "--concurrency", type=int, default=16, help="calls in flight on each side (16)"
    )
    hub.add_argument("--dir", type=Path, metavar="DIR", help="work in DIR (kept)")
    hub.add_argument(
        "--no-postgres", action="store_true", help="run on SQLite only, skip PostgreSQL"
    )
    hub.set_defaults(func=_bench_hub)


def _bench_cert(args: argparse.Namespace) -> int:
    data = (
        args.file.read_bytes()
        if args.file
        else to_xml_bytes(certificate_from_json(sample_model_bytes("phyto")))
    )
    name = args.file or "bundled 851 sample"

    def started(report: Report) -> None:
        print(
            f"certificate: {name}, {len(data)} bytes, valid={report.valid}, "
            f"{len(report.findings)} findings"
        )
        print(f"cpu: pinned to core {sorted(os.sched_getaffinity(0))}")

    result = cert_bench.measure(data, args.seconds, on_start=started)
    print(f"{'measurement':<34}{'median ms':>10}{'p90 ms':>10}{'per s':>10}")
    for label, samples in result.rows():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{label:<34}{median * 1e3:>10.3f}{p90 * 1e3:>10.3f}{1 / median:>10.0f}")
    print(
        f"parse + full validation costs {result.ratio():.1f}x a bare parse "
        "(target: median at most 0.5 ms)"
    )
    return 0


def _bench_exchange(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from node.bench import exchange as bx
    from node.demo.network import network

    def run(workdir: Path) -> int:
        with (workdir / "bench.log").open("w") as log, network(workdir, log, ("NL", "KE")) as net:
            sample = bx.certificates(1, "NL-SIZE", args.file)[0]
            print(
                f"certificate: {args.file or 'bundled 851 sample'}, {len(sample)} bytes; "
                f"nodes NL -> KE on loopback, SQLite stores in {workdir}",
                flush=True,
            )
            pids = {country: net.pid(country) for country in ("NL", "KE")}
            cpu_before = {c: bx.cpu_seconds(pid) for c, pid in pids.items()}
            burst = asyncio.run(
                bx.load(
                    net,
                    bx.certificates(args.count, "NL-BURST", args.file),
                    rate=None,
                    concurrency=args.concurrency,
                )
            )
            print(f"sustained:  {bx.summary(burst)}", flush=True)
            if burst.delivered:
                # Where the machine's time goes: CPU per certificate on each side.
                cpu = ", ".join(
                    f"{c} {1000 * (bx.cpu_seconds(pid) - cpu_before[c]) / burst.delivered:.1f}"
                    for c, pid in pids.items()
                )
                print(f"CPU per certificate (ms): {cpu}", flush=True)
            paced = asyncio.run(
                bx.load(
                    net,
                    bx.certificates(min(args.count, int(args.rate * 10)), "NL-PACED", args.file),
                    rate=args.rate,
                    concurrency=args.concurrency,
                )
            )
            print(f"at {args.rate:.0f}/s:   {bx.summary(paced)}", flush=True)
            for country in ("NL", "KE"):
                print(f"peak RSS {country}: {bx.peak_rss_mb(net.pid(country)):.0f} MB")
            envelope = bx.sealed_envelope(net, sample)
            ceiling = bx.ceiling(
                net, envelope, requests=max(args.count, 500), concurrency=args.concurrency
            )
            print(
                f"ceiling: {ceiling:.0f} bare POSTs/s of the {len(envelope)}-byte sealed "
                f"envelope over the same mutual TLS"
            )
            share = burst.per_second / ceiling if ceiling else 0.0
            print(
                f"direct exchange reaches {share:.0%} of the ceiling "
                "(targets: >= 1000/s, >= 30% of the ceiling, p99 < 50 ms at 100/s, "
                "RSS < 150 MB)"
            )
            return 0 if burst.failed == 0 and paced.failed == 0 else 1

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return run(args.dir)
    with tempfile.TemporaryDirectory(prefix="ephyto-bench-") as workdir:
        return run(Path(workdir))


def _bench_hub(args: argparse.Namespace) -> int:
    import tempfile

    from node.bench import hub as bh
    from node.bench import hub_process
    from node.demo.network import network

    if args.count < 1 or args.concurrency < 1:
        raise InputError("--count and --concurrency must be at least 1")

    def run(workdir: Path) -> int:
        results: list[bh.Figures] = []
        with (
            (workdir / "bench.log").open("w") as log,
            network(
                workdir, log, (), hub=True, hub_only=(bh.SENDER, bh.RECEIVER),
                deferred=(bh.SENDER, bh.RECEIVER),
            ) as net,
        ):  # fmt: skip
            size = len(bh.sealed_contents(net, 1, "NL-SIZE")[0][1])
            print(
                f"envelope: the bundled 851 sample sealed NL -> KE, {size} bytes of Content; "
                f"{bh.SENDER} -> hub process -> {bh.RECEIVER} (pull) on loopback, "
                f"{args.concurrency} calls in flight each side, work in {workdir}",
                flush=True,
            )
            results.append(bh.measure(net, "sqlite", args.count, args.concurrency))
            print("\n".join(results[-1].lines()), flush=True)
            if args.no_postgres:
                print("postgresql: skipped (--no-postgres)")
            else:
                try:
                    with hub_process.postgres_database(log) as url:
                        try:
                            hub_process.restart_hub(net, url)
                            results.append(
                                bh.measure(net, "postgresql", args.count, args.concurrency)
                            )
                        finally:
                            hub_process.stop_hub(net)
                    print("\n".join(results[-1].lines()), flush=True)
                except hub_process.PostgresUnavailable as e:
                    print(f"postgresql: skipped: {e}")
        print(
            "target: >= 500 relayed/s (the IPPC Hub's stated 2021 capacity, 100,000 a day, "
            "is about 1.2/s)"
        )
        failed = any(f.relay.failed for f in results)
        return 1 if failed else 0

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return run(args.dir.resolve())  # the network's processes run in it
    with tempfile.TemporaryDirectory(prefix="ephyto-bench-hub-") as workdir:
        return run(Path(workdir))
