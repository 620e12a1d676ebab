"""`ephyto study emulate [SCENARIO] -o DIR`: the scenario on real processes, and how close
the simulation of it came (the shell around node/study/emulate.py).

It checks everything it can before starting a process (DIR, the scenario, whether this
machine can emulate it), plays it under a temporary folder, simulates the same
certificates with the timers the processes ran with, and only then writes DIR: the
same tables `simulate` writes, measured, plus links.csv (bytes on each link),
service.json (what `simulate` can take from it), agreement.json, the simulation beside
it in DIR/simulated/, every process's log in DIR/logs/, and the report when the study
extra's matplotlib is there.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from node.cli import study_common as study_cli
from node.errors import InputError

DEFAULT_SCENARIO: Final = "emulate-small"
# A day of the scenario in three minutes.
DEFAULT_COMPRESS: Final = 480.0


def add_parser(study_actions: Any) -> None:
    """Add `emulate` to the sub-parsers of `ephyto study`."""
    emulate = study_actions.add_parser(
        "emulate",
        help="play a small scenario on real processes and compare the simulation with it",
        description="Start a registry, a hub and one real node per country (at most 12) on "
        "loopback, each behind a proxy that imposes the scenario's links (delay, jitter, "
        "loss as a reset connection); send the scenario's certificates through the "
        "exporters' APIs at their times, stop and start processes for its outages, and "
        "measure each certificate from submission to receipt. The scenario's clock runs "
        "--compress times faster (its timers; never the network's delays or the "
        "processes' costs). Then simulate the same certificates and write how close the "
        "simulation came (agreement.json). DIR must be new or empty unless --force; "
        "nothing is written until the end.",
    )
    emulate.add_argument(
        "scenario",
        nargs="?",
        default=DEFAULT_SCENARIO,
        metavar="SCENARIO",
        help=f"a bundled scenario's name or a TOML file (default: {DEFAULT_SCENARIO})",
    )
    emulate.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    emulate.add_argument(
        "--compress",
        default=str(DEFAULT_COMPRESS),
        metavar="F",
        help=f"run the scenario's clock F times faster (default {DEFAULT_COMPRESS:g}: a day "
        "in 3 minutes)",
    )
    emulate.add_argument("--scale", default="1", metavar="F", help="flows' volume times F")
    emulate.add_argument("--seed", default="0", metavar="N", help="the run's seed (default 0)")
    emulate.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    emulate.add_argument("--quiet", action="store_true", help="no progress on stderr")
    emulate.set_defaults(func=_emulate)


def _compress(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--compress: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"--compress: {text!r} is not a finite number")
    from node.study.timers import check_compress

    return check_compress(value)


def _emulate(args: argparse.Namespace) -> int:

    compress = _compress(args.compress)
    scale = study_cli.scale_option(args.scale)
    seed = study_cli.seed_option(args.seed)
    output: Path = args.output
    study_cli.check_output(output, args.force)
    # An emulation takes minutes: a DIR it could not write is said now, not after.
    writable = output if output.exists() else next(p for p in output.parents if p.exists())
    if not os.access(writable, os.W_OK):
        raise InputError(f"{writable} is not writable (nothing was written)")
    scenario = study_cli.load(args.scenario)
    copy_name, copy = study_cli.scenario_bytes(args.scenario)
    try:
        from node.study import agreement, emulate, simulate
        from node.study.outputs import csv_bytes, json_bytes, run_outputs
    except ImportError:
        raise InputError(
            "emulate needs the study extra: pip install 'ephyto-exchange[study]' "
            "(or '.[study]' in a checkout)"
        ) from None
    plan = emulate.plan(scenario, emulate.EmulateOptions(seed=seed, scale=scale, compress=compress))
    say = _say(args.quiet)
    say(
        f"{scenario.name}: {len(plan.arrivals):,} certificates among {len(plan.nodes)} nodes "
        f"and {len(plan.hub_only)} countries through the hub only, {plan.period:,.0f} s "
        f"(compressed {compress:g} times)"
    )
    version = study_cli.code_version()
    with tempfile.TemporaryDirectory(prefix="ephyto-emulate-") as work:
        workdir = Path(work)
        with (workdir / "emulate.log").open("w", encoding="utf-8") as log:
            measured = emulate.emulate(
                plan, workdir, log, study_cli.progress(args.quiet, "emulated"), say
            )
        logs = {f"logs/{path.name}": path.read_bytes() for path in sorted(workdir.glob("*.log"))}
    if not args.quiet:
        sys.stderr.write("\n")
    say("simulating the same certificates with the timers the processes ran with")
    options = simulate.Options(
        seed=seed, scale=scale, compress=compress, timers=plan.timers, service=measured.service
    )
    simulated = simulate.simulate(scenario, options)
    agreed = agreement.compare(measured.run, simulated)
    line = agreement.summary_line(agreed)
    summary, files = run_outputs(
        measured.run,
        version,
        {**emulate.summary_extra(measured), "agreement": line},
    )
    files[copy_name] = copy
    files["links.csv"] = csv_bytes(emulate.links_rows(measured))
    files["service.json"] = emulate.service_json(measured).encode()
    files["agreement.json"] = json_bytes(agreed)
    _, simulated_files = run_outputs(simulated, version)
    files.update({f"simulated/{name}": data for name, data in simulated_files.items()})
    files.update(logs)
    from node.cli import study_report

    readable = {
        name: data
        for name, data in files.items()
        if "/" not in name and name.endswith(study_report.READ_SUFFIXES + study_report.READ_JSON)
    }
    try:
        files.update(study_report.report_files(readable, args.quiet))
    except InputError as e:
        if "study extra" not in str(e):
            raise
        say(f"no report: {e}")
    study_report.write_outputs(output, files)
    routes = summary["by_route"]
    print(
        f"{scenario.name}: {summary['certificates']:,} certificates emulated in "
        f"{measured.wall_seconds:,.0f} s; direct {routes['direct']['certificates']:,}, hub "
        f"{routes['hub']['certificates']:,}, hub after failed direct attempts "
        f"{routes['hub-fallback']['certificates']:,}; undelivered {summary['undelivered']:,}; "
        f"written to {output}"
    )
    print(line)
    return 0


def _say(quiet: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if not quiet:
            sys.stderr.write(f"\r{line}\n")
            sys.stderr.flush()

    return say
