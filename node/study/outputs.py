"""What a run writes (pure): the same tables whichever engine made the run.

`simulate` and `emulate` both end in a `Run` (node/study/simulate.py), so both write
their results through here, and an emulation's tables read exactly as a simulation's.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from node.study import measures
from node.study import simulate as engine


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def run_summary(
    run: engine.Run, version: str, tallies: measures.Tallies | None = None
) -> dict[str, Any]:
    """summary.json's values but `messages_csv` (which says what messages.csv holds)."""
    summary = engine.summary(run, version)
    summary.update(measures.extra_summary(run, tallies=tallies or measures.tally(run)))
    return summary


def run_outputs(
    run: engine.Run, version: str, extra_summary: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """summary.json's values and every table of the run, by file name."""
    messages, sampled = engine.message_rows(run)
    tallies = measures.tally(run)
    summary = run_summary(run, version, tallies)
    summary["messages_csv"] = (
        f"a seeded sample of {engine.MESSAGE_SAMPLE:,} certificates" if sampled else "all"
    )
    summary.update(extra_summary or {})
    files = {
        "summary.json": json_bytes(summary),
        "messages.csv": csv_bytes(messages),
        "pairs.csv": csv_bytes(engine.pairs_rows(run)),
        "outages.csv": csv_bytes(engine.outages_rows(run)),
        "hub_holdings.csv": csv_bytes(engine.hub_holdings_rows(run)),
        "costs.csv": csv_bytes(engine.costs_rows(run)),
    }
    for name, rows in measures.extra_files(run, tallies=tallies).items():
        files[name] = csv_bytes(rows)
    return summary, files
