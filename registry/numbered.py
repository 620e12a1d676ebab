"""Numbered statement files: a country's recorded changes of one kind (key rotations,
endpoint changes) as <CC>-<n>.json in a folder of their own, numbered 1..n in the order
they were recorded: read with `numbered_files`, written with `write_next`."""

from __future__ import annotations

import re
from collections.abc import Container
from pathlib import Path
from typing import Final

from node.fileio import write_exclusive
from registry.publish import RegistryError

_NUMBERED_FILE: Final = re.compile(r"([A-Z]{2})-([1-9][0-9]{0,5})\.json")


def numbered_files(folder: Path, enrolled: Container[str], what: str) -> dict[str, list[Path]]:
    """Country -> its files in `folder`, oldest first, countries in order; {} when there is
    no `folder`. RegistryError for the files of a country not `enrolled`, or not numbered
    1..n; `what` names the changes in the message ("rotations")."""
    if not folder.is_dir():
        return {}
    found: dict[str, dict[int, Path]] = {}
    for path in folder.iterdir():
        match = _NUMBERED_FILE.fullmatch(path.name)
        if match is not None:
            found.setdefault(match[1], {})[int(match[2])] = path
    result: dict[str, list[Path]] = {}
    for country, numbered in sorted(found.items()):
        if country not in enrolled:
            raise RegistryError(f"{folder}: {what} of {country}, which is not enrolled")
        if sorted(numbered) != list(range(1, len(numbered) + 1)):
            raise RegistryError(f"{folder}: the {what} of {country} are not numbered 1..n")
        result[country] = [numbered[number] for number in sorted(numbered)]
    return result


def write_next(folder: Path, country: str, number: int, data: bytes, what: str) -> Path:
    """Write `data` (a signed statement) as `country`'s statement `number` in `folder`,
    never over an existing file; RegistryError when another run wrote it meanwhile
    (`what` names the change: "rotation")."""
    folder.mkdir(mode=0o755, exist_ok=True)
    path = folder / f"{country}-{number}.json"
    try:
        write_exclusive(path, data, 0o644)
    except FileExistsError:
        raise RegistryError(f"{path} appeared meanwhile: another {what} ran") from None
    return path
