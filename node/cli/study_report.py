"""`ephyto study report DIR` and `ephyto study run SCENARIO -o DIR`: the study's report.

The shell around node/study/report.py (the text), figures.py (matplotlib) and parquet.py
(pyarrow): it reads a simulate run's directory, or simulates first (`run`), has the pure
core work out every file of the report, and writes them only once all are done.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from node.cli import study_common as study_cli
from node.errors import InputError
from node.fileio import write_atomic
from node.study.report import FIGURES_FOLDER, Figure, html_page, markdown
from node.study.run_files import (
    AGREEMENT,
    MAX_RUN_FILE_BYTES,
    NOT_A_RUN,
    SUMMARY,
    read_run,
)

# What the report reads from a run's directory (its top level only).
READ_SUFFIXES: Final = (".csv", ".toml")
READ_JSON: Final = (SUMMARY, AGREEMENT)
NEEDS_EXTRA: Final = (
    "the report needs the study extra (matplotlib, pyarrow): pip install "
    "'ephyto-exchange[study]' (or '.[study]' in a checkout)"
)


def add_parser(study_actions: Any) -> None:
    """Add `report` and `run` to the sub-parsers of `ephyto study`."""
    report = study_actions.add_parser(
        "report",
        help="the report of a simulate run: report.html, report.md, figures, Parquet",
        description="Build the report from what `ephyto study simulate` wrote to DIR: "
        "report.html (self-contained, opens offline), report.md, the figures as PNG and SVG "
        "in DIR/figures and every CSV file as Parquet, all written into DIR (docs/study.md, "
        "\"The report\"). Needs the study extra: pip install '.[study]'.",
    )
    report.add_argument("directory", metavar="DIR", type=Path, help="a simulate run's output")
    report.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    report.set_defaults(func=_report)
    run = study_actions.add_parser(
        "run",
        help="simulate a scenario and build its report, in one command",
        description="`ephyto study simulate` then `ephyto study report` on its output: "
        'DIR gets the run\'s files and its report (docs/study.md, "The report"). Needs '
        "the study extra: pip install '.[study]'.",
    )
    run.add_argument("scenario", metavar="SCENARIO|FILE", help="a bundled name or a file")
    run.add_argument("-o", "--output", metavar="DIR", type=Path, required=True, help="new or empty")
    run.add_argument(
        "--scale", metavar="F", default="1", help="every flow's volume times F (default 1)"
    )
    run.add_argument("--seed", metavar="N", default="0", help="the run's seed (default 0)")
    run.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.set_defaults(func=_run)


def _require_extra() -> None:
    """Refuse before any work when matplotlib or pyarrow is missing."""
    try:
        # The study extra's: imported only by these commands, so `ephyto --help` and the
        # rest of the node never pay for them or need them.
        from node.study import figures, parquet  # noqa: F401
    except ImportError:
        raise InputError(NEEDS_EXTRA) from None


def read_directory(directory: Path) -> dict[str, bytes]:
    """The files of a run's directory the report reads (top level: summary.json,
    agreement.json, every .csv and .toml), by name."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory (nothing was written)")
    summary = directory / SUMMARY
    if summary.is_symlink() or not summary.is_file():
        # Said before reading the rest: DIR may be any folder, full of other files.
        raise InputError(f"{directory}: {NOT_A_RUN} (nothing was written)")
    files: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        if not (path.name in READ_JSON or path.name.endswith(READ_SUFFIXES)):
            continue
        if path.is_symlink() or not path.is_file():
            continue  # a run's files are regular files; a link could point anywhere
        with path.open("rb") as f:
            data = f.read(MAX_RUN_FILE_BYTES + 1)
        if len(data) > MAX_RUN_FILE_BYTES:
            raise InputError(
                f"{path}: larger than {MAX_RUN_FILE_BYTES >> 20} MiB, not a study run's file "
                "(nothing was written)"
            )
        files[path.name] = data
    return files


def report_files(files: Mapping[str, bytes], quiet: bool) -> dict[str, bytes]:
    """Every file of the report (name relative to the run's directory -> bytes) for the
    run in `files`; InputError when `files` are not a simulate run's output."""
    _require_extra()
    from node.study import figures, parquet

    run = read_run(files)
    tables = list(run.tables.values())
    steps = len(figures.NAMES) + len(tables)
    progress = _progress(steps, quiet)
    outputs: dict[str, bytes] = {}
    drawn: dict[str, Figure] = {}
    for name in figures.NAMES:
        progress(f"figure {name}")
        drawn[name] = figure = figures.draw(run, name)
        outputs[f"{FIGURES_FOLDER}/{name}.png"] = figure.png
        outputs[f"{FIGURES_FOLDER}/{name}.svg"] = figure.svg
    for table in tables:
        progress(f"{table.name} as Parquet")
        outputs[f"{table.name.removesuffix('.csv')}.parquet"] = parquet.to_parquet(table)
    progress("done")
    if not quiet:
        sys.stderr.write("\n")
    outputs["report.md"] = markdown(run, drawn).encode()
    outputs["report.html"] = html_page(run, drawn).encode()
    return outputs


def _progress(steps: int, quiet: bool) -> Callable[[str], None]:
    """A progress line on stderr before each step, with the time left estimated."""
    started = time.monotonic()
    done = [0]

    def report(step: str) -> None:
        if quiet:
            return
        share = done[0] / steps
        elapsed = time.monotonic() - started
        left = elapsed * (1 - share) / share if share > 0 else 0.0
        sys.stderr.write(f"\rreport {share:6.1%} done, about {left:5.0f} s left: {step:<36}")
        sys.stderr.flush()
        done[0] += 1

    return report


def write_outputs(directory: Path, outputs: Mapping[str, bytes]) -> None:
    """Write every file (each atomically), the report's pages last: a reader who finds
    report.html finds everything it shows."""
    for folder in sorted({(directory / name).parent for name in outputs} - {directory}):
        if folder.is_symlink():
            # The figures go into DIR/figures, never where a link planted there points.
            raise InputError(f"{folder} is a symbolic link (nothing was written)")
    directory.mkdir(parents=True, exist_ok=True)
    last = ("report.md", "report.html")
    ordered = [n for n in outputs if n not in last] + [n for n in last if n in outputs]
    for name in ordered:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, outputs[name], 0o644)


def _report(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    _require_extra()
    try:
        outputs = report_files(read_directory(directory), args.quiet)
    except InputError as e:
        message = str(e)
        if not message.endswith("(nothing was written)"):
            message = f"{directory}: {message} (nothing was written)"
        raise InputError(message) from None
    write_outputs(directory, outputs)
    _done(directory, outputs)
    return 0


def _run(args: argparse.Namespace) -> int:

    scale = study_cli.scale_option(args.scale)
    seed = study_cli.seed_option(args.seed)
    _require_extra()  # before the simulation, which may take minutes
    output: Path = args.output
    summary, files = study_cli.simulation(
        args.scenario, output, scale, seed, args.force, args.quiet
    )
    outputs = report_files(files, args.quiet)
    # The run and its report were worked out above: only now is anything written.
    write_outputs(output, {**files, **outputs})
    print(
        f"{summary['scenario']}: {summary['certificates']:,} certificates (scale "
        f"{summary['scale']:g}, seed {summary['seed']}); undelivered "
        f"{summary['undelivered']:,}"
    )
    _done(output, outputs)
    return 0


def _done(directory: Path, outputs: Mapping[str, bytes]) -> None:
    figures = sum(1 for n in outputs if n.startswith(f"{FIGURES_FOLDER}/"))
    tables = sum(1 for n in outputs if n.endswith(".parquet"))
    print(
        f"report: {directory / 'report.html'} and report.md; {figures // 2} figures (PNG, "
        f"SVG) in {directory / FIGURES_FOLDER}; {tables} Parquet files"
    )
