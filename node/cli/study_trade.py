"""`ephyto study trade import`: an edge list or FAOSTAT trade matrix -> the study's trade."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.errors import InputError
from node.fileio import write_atomic
from node.study.fao import country_index
from node.study.trade_import import (
    DEFAULT_ELEMENT,
    MAX_INPUT_BYTES,
    TradeFormat,
    TradeImport,
    flows_csv,
    import_trade,
    scale_to_total,
)

SHOWN_UNMAPPED = 20


def add_parser(study_actions: Any) -> None:
    """Add `trade import` to the sub-parsers of `ephyto study`."""
    trade = study_actions.add_parser("trade", help="bring trade flows into a study")
    actions = trade.add_subparsers(dest="trade_command", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="an edge list or a FAOSTAT detailed trade matrix -> origin,destination,weight",
        description="Read an edge list CSV (origin, destination, weight; ISO 3166 codes or "
        "names) or a FAOSTAT detailed trade matrix CSV, map countries to ISO 3166-1 alpha-2, "
        "sum each pair, and write origin,destination,weight. What could not be mapped is "
        "listed, never guessed.",
    )
    imp.add_argument("file", type=Path, metavar="FILE", help="the CSV file to read")
    imp.add_argument(
        "--format",
        choices=[f.value for f in TradeFormat],
        help="the file's format (default: told from its header)",
    )
    imp.add_argument(
        "--element",
        help=f"FAOSTAT: the element to count, by name or code (default: {DEFAULT_ELEMENT}, "
        "as the exporting country issues the certificate)",
    )
    imp.add_argument(
        "--item", action="append", default=[], help="FAOSTAT: only this item (name or code)"
    )
    imp.add_argument(
        "--year",
        action="append",
        default=[],
        type=_year,
        help="FAOSTAT: only this year, summed with any other --year (default: the latest)",
    )
    imp.add_argument(
        "--total",
        type=_count,
        metavar="N",
        help="scale the weights to N whole certificates a year (exactly N in all)",
    )
    imp.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT.csv", help="the file to write"
    )
    imp.add_argument("--force", action="store_true", help="overwrite OUT.csv if it exists")
    imp.set_defaults(func=_import)


def _year(text: str) -> int:
    if not text.isdigit() or len(text) != 4:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of certificates")
    return int(text)


def _import(args: argparse.Namespace) -> int:
    output: Path = args.output
    if not args.force and (output.exists() or output.is_symlink()):
        raise InputError(
            f"{output} exists: give a new file name, or --force to overwrite it "
            "(nothing was written)"
        )
    with args.file.open("rb") as f:
        data = f.read(MAX_INPUT_BYTES + 1)
    result = import_trade(
        data,
        country_index(),
        trade_format=TradeFormat(args.format) if args.format else None,
        element=args.element,
        items=args.item,
        years=args.year,
    )
    flows = scale_to_total(result.flows, args.total) if args.total is not None else result.flows
    # Everything was read and checked above: only now is anything written.
    write_atomic(output, flows_csv(flows), 0o644)
    print(_summary(result, len(flows), args.total, output))
    return 0


def _summary(result: TradeImport, pairs_written: int, total: int | None, output: Path) -> str:
    lines = [
        f"read {result.rows_read} rows ({result.format}): {result.rows_used} used, "
        f"{len(result.flows)} country pairs, {len(result.countries)} countries",
    ]
    if result.element:
        years = ", ".join(str(y) for y in result.years)
        lines.append(f"counted {result.element} for {years} in {', '.join(result.units) or '-'}")
    if len(result.units) > 1:
        lines.append("warning: values in different units were summed; give --item to keep one")
    if result.same_country_rows:
        lines.append(f"left out {result.same_country_rows} rows of a country with itself")
    if total is not None:
        lines.append(f"scaled to {total} certificates over {pairs_written} pairs")
    if result.unmapped:
        lines.append(f"not mapped ({len(result.unmapped)} names or codes, rows left out):")
        for u in result.unmapped[:SHOWN_UNMAPPED]:
            lines.append(
                f"  {u.text[:60]!r}: {u.count} rows (first on line {u.first_line}), {u.reason}"
            )
        if len(result.unmapped) > SHOWN_UNMAPPED:
            lines.append(f"  ... and {len(result.unmapped) - SHOWN_UNMAPPED} more")
    lines.append(f"wrote {output}")
    return "\n".join(lines)
