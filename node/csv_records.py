"""CSV records with their line numbers, for the parsers of third-party CSV files (code
lists, trade matrices): one reader, so every such parser names a broken line the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from node.errors import InputError


def csv_records(text: str, what: str = "") -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, its fields) of each non-blank record of `text`.

    InputError naming that line (after `what`, when given) on broken quoting: a quoted
    field may span lines, so the start is the line a reader can find.
    """
    prefix = f"{what}, " if what else ""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(f"{prefix}line {start}: not readable as CSV ({e})") from None
        if fields and any(field.strip() for field in fields):
            yield start, fields
