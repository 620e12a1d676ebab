"""The registry's settings, chosen by its maintainers: how long a published directory is valid.

After TUF's split the threshold-signed directory lives long (90 days by default), so the
maintainers, each on their own machine, sign only for a change or every couple of months,
while the online timestamp key keeps nodes current daily (registry/timestamp.py). A
registry without a timestamp role has nothing else telling nodes it is current, so its
default stays 7 days and it must publish often. Layout beside the registry's files:

    settings.json   {"directory_days": N}, written by `registry init --directory-days N`
                    or `registry settings --directory-days N` (audit-logged); absent: the
                    defaults above

Pure parsing and the file read and write; this module imports none of the registry's
stores (registry.layout imports it for `init`; registry.settings_store locks and audits
a change).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from node.fileio import write_atomic
from registry.publish import (
    DEFAULT_VALIDITY,
    MAX_VALIDITY,
    VALIDITY_WITHOUT_TIMESTAMP,
    RegistryError,
)
from registry.timestamp import ACTIVE_FILE, TIMESTAMP_DIR

SETTINGS_FILE: Final = "settings.json"
MAX_DIRECTORY_DAYS: Final = MAX_VALIDITY.days
_MAX_BYTES: Final = 4096  # a few fields: anything larger is not ours


@dataclass(frozen=True, slots=True)
class Settings:
    """What the maintainers chose; None: the default."""

    directory_days: int | None = None

    def to_bytes(self) -> bytes:
        plain: dict[str, Any] = {}
        if self.directory_days is not None:
            plain["directory_days"] = self.directory_days
        return json.dumps(plain, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Settings:
        """Parse settings.json strictly; RegistryError naming `where` and the field."""
        if len(data) > _MAX_BYTES:
            raise RegistryError(f"{where}: more than {_MAX_BYTES} bytes, not a settings file")
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RegistryError(f"{where}: not JSON; fix or remove it") from None
        if not isinstance(value, dict):
            raise RegistryError(f"{where}: not a JSON object; fix or remove it")
        unknown = sorted(set(value) - {"directory_days"})
        if unknown:
            raise RegistryError(f"{where}: unknown setting {unknown[0]!r}; fix or remove it")
        days = value.get("directory_days")
        if days is not None:
            if not isinstance(days, int) or isinstance(days, bool):
                raise RegistryError(f"{where}: directory_days {days!r} is not a whole number")
            check_directory_days(days, where=f"{where}: directory_days")
        return cls(directory_days=days)


def check_directory_days(days: int, *, where: str = "--directory-days") -> int:
    """`days` if a directory may be valid that long; RegistryError saying the range."""
    if not 1 <= days <= MAX_DIRECTORY_DAYS:
        raise RegistryError(
            f"{where} {days}: a directory is valid for 1 to {MAX_DIRECTORY_DAYS} days"
        )
    return days


def parse_days(text: str) -> int:
    """A `--directory-days` argument: a whole number of days in range; RegistryError."""
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdecimal() or len(stripped) > 6:
        raise RegistryError(f"--directory-days {text!r}: expected a whole number of days")
    return check_directory_days(int(stripped))


def read_settings(root: Path) -> Settings:
    """The settings of the registry at `root` (defaults when there is no settings.json)."""
    path = root / SETTINGS_FILE
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return Settings()
    return Settings.from_bytes(data, str(path))


def write_settings(root: Path, settings: Settings) -> None:
    """Replace settings.json atomically (the caller holds the lock and audits the change)."""
    write_atomic(root / SETTINGS_FILE, settings.to_bytes(), 0o644)


def has_timestamp_role(root: Path) -> bool:
    """Whether the next publish lists timestamp keys (registry/timestamp.py)."""
    return (root / TIMESTAMP_DIR / ACTIVE_FILE).is_file()


def directory_validity(root: Path, settings: Settings | None = None) -> timedelta:
    """How long the next published version is valid: the maintainers' choice, else 90 days
    with a timestamp role and 7 without; RegistryError for a damaged settings.json."""
    chosen = (settings or read_settings(root)).directory_days
    if chosen is not None:
        return timedelta(days=chosen)
    return DEFAULT_VALIDITY if has_timestamp_role(root) else VALIDITY_WITHOUT_TIMESTAMP
