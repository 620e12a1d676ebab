"""`ephyto study sweep`: a grid of variants of a scenario, simulated in parallel (shell).

The runs go to a local process pool, or with `--dask tcp://HOST:PORT` to a Dask cluster
(`dask.distributed`). Either way each run is `_run_job`, a module-level function of plain
values, so a spawned process or a remote worker imports it by name (the package must be
installed there). Every grid point is checked before the first run starts, and nothing
is written until the last run is back: a sweep that fails leaves no half a directory.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli import study_common as study_cli
from node.errors import EphytoError, InputError
from node.fileio import write_atomic

if TYPE_CHECKING:
    from node.study.simulate import Options
    from node.study.sweep import Point

MAX_WORKERS = 1024
# What a sweep writes to DIR besides the copy of the scenario file.
OWN_FILES = frozenset({"runs", "sweep.csv", "sweep.md", "sweep.json"})
# How long to try reaching a Dask scheduler before saying it cannot be reached.
DASK_CONNECT_TIMEOUT = "10s"
_DASK_ADDRESS = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})")

Result = dict[str, Any]


def add_parser(study_actions: Any) -> None:
    """Add `sweep` to the sub-parsers of `ephyto study`."""
    sweep = study_actions.add_parser(
        "sweep",
        help="simulate a grid of variants of a scenario in parallel and compare them",
        description="Simulate every combination of the --vary values (scenario keys such as "
        "topology.top_k, and the run options scale and seed) in parallel processes, or on "
        "a Dask cluster with --dask; writes each run's summary.json and sweep.csv, "
        'sweep.md and sweep.json comparing them to DIR (docs/study.md, "Sweeps"). Needs '
        "the study extra: pip install '.[study]'.",
    )
    sweep.add_argument("scenario", metavar="SCENARIO|FILE", help="a bundled name or a file")
    sweep.add_argument(
        "-o", "--output", metavar="DIR", type=Path, required=True, help="new or empty"
    )
    sweep.add_argument(
        "--vary",
        metavar="KEY=V1,V2",
        action="append",
        default=[],
        required=True,
        help="a key and its values (repeatable; the grid is every combination)",
    )
    sweep.add_argument(
        "--scale", metavar="F", default=None, help="every run's flows times F (default 1)"
    )
    sweep.add_argument("--seed", metavar="N", default=None, help="every run's seed (default 0)")
    sweep.add_argument(
        "--workers",
        metavar="N",
        default=None,
        help="local processes running at once (default: the number of CPUs)",
    )
    sweep.add_argument(
        "--dask",
        metavar="tcp://HOST:PORT",
        default=None,
        help="run on the Dask cluster whose scheduler is at this address",
    )
    sweep.add_argument(
        "--force", action="store_true", help="write into DIR even if it is not empty"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    sweep.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:

    varied = {spec.partition("=")[0].strip() for spec in args.vary}
    for option in ("scale", "seed"):
        if getattr(args, option) is not None and option in varied:
            raise InputError(f"--{option} and --vary {option}=...: give one (nothing was written)")
    scale = study_cli.scale_option(args.scale if args.scale is not None else "1")
    seed = study_cli.seed_option(args.seed if args.seed is not None else "0")
    if args.dask is not None and args.workers is not None:
        raise InputError("--workers and --dask: the cluster's workers run a --dask sweep")
    workers = _workers(args.workers)
    address = _dask_address(args.dask) if args.dask is not None else None
    output: Path = args.output
    study_cli.check_output(output, args.force)
    scenario = study_cli.load(args.scenario)
    copy_name, scenario_toml = study_cli.scenario_bytes(args.scenario)
    if copy_name in OWN_FILES:
        raise InputError(
            f"{args.scenario}: a scenario file named {copy_name} would be copied over the "
            "sweep's own file of that name; rename it (nothing was written)"
        )
    try:
        # SimPy (and Dask, below) are the study extra's: imported only for this command.
        from node.study import simulate as engine
        from node.study import sweep as core
        from node.study.outputs import csv_bytes
    except ImportError:
        raise InputError(_NEEDS_EXTRA) from None
    document = core.document(scenario_toml)
    varies = core.parse_vary(args.vary, document)
    points = core.grid(varies)
    for point in points:
        # Every variant is checked here, so a bad one stops the sweep before any run.
        core.variant_scenario(document, point)
    base = engine.Options(seed=seed, scale=scale)
    progress = _progress(len(points), args.quiet)
    if address is not None:
        results = _run_on_dask(address, scenario_toml, points, base, progress)
    else:
        results = _run_locally(min(workers, len(points)), scenario_toml, points, base, progress)
    if not args.quiet:
        sys.stderr.write("\n")
    version = study_cli.code_version()
    others = sorted({r["summary"]["code_version"] for r in results} - {version})
    if others:
        raise InputError(
            f"the workers ran code version {', '.join(others)}, this machine has {version}: "
            "install the same version everywhere (nothing was written)"
        )
    table = core.comparison(varies, results)
    by_index = {int(r["index"]): r for r in results}
    runs = [
        {
            "index": point.index,
            "directory": f"runs/{point.directory(len(points))}",
            "settings": dict(point.settings),
            "summary": by_index[point.index]["summary"],
            "hub_fees": by_index[point.index]["hub_fees"],
        }
        for point in points
    ]
    report = {
        "scenario": scenario.name,
        "code_version": version,
        # The options every run shares; null when the sweep varies them.
        "scale": None if "scale" in varied else scale,
        "seed": None if "seed" in varied else seed,
        "vary": [{"key": v.key, "values": list(v.values)} for v in varies],
        "runs": runs,
    }
    files = {
        "sweep.csv": csv_bytes([[core.csv_cell(c) for c in row] for row in table]),
        "sweep.md": core.markdown(scenario.name, base, version, table).encode(),
        "sweep.json": _json(report),
        copy_name: scenario_toml,
    }
    for run in runs:
        files[f"{run['directory']}/summary.json"] = _json(run["summary"])
    # Every run is back and every file worked out: only now is anything written.
    output.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = output / name
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data, 0o644)
    print(
        f"{scenario.name}: {len(points)} runs varying {', '.join(v.key for v in varies)}; "
        f"compared in {output / 'sweep.md'} and {output / 'sweep.csv'}"
    )
    return 0


_NEEDS_EXTRA = (
    "sweep needs the study extra: pip install 'ephyto-exchange[study]' (or '.[study]' in a "
    "checkout)"
)


def _run_job(scenario_toml: bytes, point: Point, base: Options) -> Result:
    """One run, in a pool process or on a Dask worker: the worker's own code version is
    recorded, so a cluster running other code is noticed."""
    from node.study.sweep import run_point

    return run_point(scenario_toml, point, base, study_cli.code_version())


def _workers(text: str | None) -> int:
    if text is None:
        return os.cpu_count() or 1
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise InputError(f"--workers: {text[:40]!r}; a whole number from 1 to {MAX_WORKERS}")
    return int(text)


def _dask_address(text: str) -> str:
    match = _DASK_ADDRESS.fullmatch(text)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise InputError(
            f"--dask: {text[:80]!r} is not a scheduler address; tcp://HOST:PORT, as "
            "`dask scheduler` prints it"
        )
    return text


def _progress(runs: int, quiet: bool) -> Callable[[int], None]:
    """'k of n runs done, about X s left' on stderr, after each run (`--quiet`: none)."""
    started = time.monotonic()

    def report(done: int) -> None:
        if quiet:
            return
        line = f"\r{done} of {runs} runs done"
        if done:
            left = (time.monotonic() - started) * (runs - done) / done
            line += f", about {left:5.0f} s left "
        sys.stderr.write(line)
        sys.stderr.flush()

    report(0)
    return report


def _failed(point: Point, error: BaseException) -> EphytoError | RuntimeError:
    """A run's failure as one line naming the run; a bug stays a bug (exit 3)."""
    if isinstance(error, InputError):
        # run_point's own errors already name the run.
        named = str(error) if str(error).startswith(point.name) else f"{point.name}: {error}"
        return InputError(f"{named} (nothing was written)")
    if isinstance(error, BrokenProcessPool) or type(error).__name__ == "KilledWorker":
        return EphytoError(
            f"{point.name}: a worker process died (out of memory?); nothing was written"
        )
    if isinstance(error, OSError | CancelledError):
        # A Dask cluster's connection or worker lost mid-sweep: not a bug of ours.
        return EphytoError(f"{point.name}: the run was lost: {error!r} (nothing was written)")
    return RuntimeError(f"{point.name}: {type(error).__name__}: {error} (nothing was written)")


def _run_locally(
    workers: int,
    scenario_toml: bytes,
    points: Sequence[Point],
    base: Options,
    progress: Callable[[int], None],
) -> list[Result]:
    # spawn, not fork: a fresh interpreter per worker, as on macOS and Windows, so the
    # job depends on nothing but its arguments (and forking a threaded process is unsafe).
    context = multiprocessing.get_context("spawn")
    results: list[Result] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future[Result], Point] = {
            pool.submit(_run_job, scenario_toml, point, base): point for point in points
        }
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except Exception as error:
                pool.shutdown(wait=False, cancel_futures=True)
                raise _failed(futures[future], error) from None
            progress(len(results))
    return results


def _run_on_dask(
    address: str,
    scenario_toml: bytes,
    points: Sequence[Point],
    base: Options,
    progress: Callable[[int], None],
) -> list[Result]:
    try:
        # dask.distributed is only partly typed: used as Any rather than silencing each call.
        dask: Any = importlib.import_module("distributed")
    except ImportError:
        raise InputError(_NEEDS_EXTRA.replace("sweep needs", "sweep --dask needs")) from None
    try:
        client = dask.Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError) as e:
        raise InputError(
            f"--dask {address}: the scheduler cannot be reached within "
            f"{DASK_CONNECT_TIMEOUT} ({e}); nothing was written"
        ) from None
    try:
        if not client.scheduler_info().get("workers"):
            raise InputError(
                f"--dask {address}: the scheduler has no workers; start some with "
                f"`dask worker {address}` (nothing was written)"
            )
        # The scenario is sent once and shared, not once per run.
        shared = client.scatter(scenario_toml, broadcast=True)
        futures = {
            client.submit(_run_job, shared, point, base, pure=False): point for point in points
        }
        results: list[Result] = []
        for future in dask.as_completed(list(futures), loop=client.loop):
            try:
                results.append(future.result())
            except Exception as error:
                client.cancel(list(futures))
                raise _failed(futures[future], error) from None
            progress(len(results))
        return results
    finally:
        client.close()


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
