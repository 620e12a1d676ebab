"""A run's CSV files as Parquet, with typed columns (pyarrow; pure: a table in, bytes out).

The columns simulate writes have fixed types (KNOWN_TYPES), so every run's files have
the same schema and can be read together: times and percentiles float64 even where a
run happens to write whole numbers, counts int64, codes and names text. Any other
column (a file another command adds) gets the narrowest type all its cells fit: whole
numbers int64, other numbers float64, anything else text. An empty cell is null, never
0 or "": simulate leaves a cell empty where there is no value (an undelivered
certificate's delivery time, a route's percentile without certificates).

pyarrow is the study extra's: import this module only where a command needs it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from node.errors import InputError
from node.study.run_files import REQUIRED_CSVS, Table

_WHOLE: Final = re.compile(r"-?[0-9]+")
_DECIMAL: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
INT64_MAX: Final = 2**63 - 1
_TEXT: Final = ("id", "from", "to", "route", "origin", "destination", "party", "country")
_FLOAT: Final = (
    "submitted",
    "delivered",
    "p50_seconds",
    "p95_seconds",
    "p99_seconds",
    "share_within_1h",
    "start_hours",
    "duration_hours",
    "delay_p50_seconds",
    "delay_p95_seconds",
    "delay_max_seconds",
    "drain_hours",
)
_COUNTS: Final = (
    "attempts",
    "certificates",
    "undelivered",
    "certificates_affected",
    "certificates_delayed",
    "pairs_affected",
    "hour",
    "envelopes_held",
    "hub_envelopes_sent",
    "hub_fees",
    "envelopes_past_plan_cap",
    "node_running_cost",
)
_MORE_TEXT: Final = ("runs_node", "fee_model", "currency", "node_currency")
# The type of each column simulate writes (the files in REQUIRED_CSVS), by column name.
KNOWN_TYPES: Final[dict[str, pa.DataType]] = {
    **{name: pa.string() for name in (*_TEXT, *_MORE_TEXT)},
    **{name: pa.float64() for name in _FLOAT},
    **{name: pa.int64() for name in _COUNTS},
}


def column_type(cells: Sequence[str]) -> pa.DataType:
    """int64, float64 or string: the first all the column's non-empty cells fit."""
    values = [c for c in cells if c != ""]
    if not values:
        return pa.string()
    if all(_WHOLE.fullmatch(v) for v in values):
        # Digits beyond int64 are an identifier more likely than a quantity: kept as text.
        return pa.int64() if all(abs(int(v)) <= INT64_MAX for v in values) else pa.string()
    # Only plain decimals: "nan", "inf" and "1_000" parse as floats in Python but are text.
    if all(_DECIMAL.fullmatch(v) for v in values) and all(
        abs(float(v)) != float("inf") for v in values
    ):
        return pa.float64()
    return pa.string()


def _array(table: Table, column: str, cells: Sequence[str], kind: pa.DataType) -> pa.Array:
    if kind == pa.string():
        return pa.array([c if c != "" else None for c in cells], type=kind)
    pattern, convert = (_WHOLE, int) if kind == pa.int64() else (_DECIMAL, float)
    values: list[int | float | None] = []
    for line, cell in zip(table.lines, cells, strict=True):
        if cell == "":
            values.append(None)
        elif pattern.fullmatch(cell):
            values.append(convert(cell))
        else:
            raise InputError(f"{table.name}, line {line}, {column}: {cell!r} is not a {kind}")
    try:
        return pa.array(values, type=kind)
    except (OverflowError, pa.ArrowInvalid) as e:
        raise InputError(f"{table.name}, {column}: a value does not fit {kind} ({e})") from None


def to_arrow(table: Table) -> pa.Table:
    """The table with typed columns: KNOWN_TYPES for simulate's, inferred for others."""
    arrays = []
    for i, column in enumerate(table.header):
        cells = [row[i] for row in table.rows]
        known = KNOWN_TYPES.get(column) if table.name in REQUIRED_CSVS else None
        kind = known or column_type(cells)
        arrays.append(_array(table, column, cells, kind))
    return pa.Table.from_arrays(arrays, names=list(table.header))


def to_parquet(table: Table) -> bytes:
    """The table as a Parquet file's bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(to_arrow(table), sink)
    return bytes(sink.getvalue().to_pybytes())
