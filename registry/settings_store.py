"""Changing the registry's settings (registry/settings.py): under the registry's one lock,
recorded in the audit log and signed by the maintainer who changed them."""

from __future__ import annotations

from datetime import datetime

from registry.governance import Signer
from registry.layout import RegistryFiles
from registry.settings import (
    Settings,
    check_directory_days,
    directory_validity,
    read_settings,
    write_settings,
)


class SettingsStore(RegistryFiles):
    """The settings of a registry directory, read afresh each time."""

    def settings(self) -> Settings:
        """What the maintainers chose (defaults: None); RegistryError for a damaged file."""
        return read_settings(self.root)

    def directory_days(self) -> int:
        """How many days the next published version is valid (chosen or default)."""
        return directory_validity(self.root).days

    def set_directory_days(
        self, days: int, now: datetime, actor: str, signer: Signer | None = None
    ) -> tuple[int, int]:
        """Make the next published versions valid for `days`; (before, after) in days.

        RegistryError for a value out of range (nothing changed). Published versions keep
        their own expiry: the next publish uses the new value. Audited even when unchanged
        from the default, so the log says the maintainers chose it.
        """
        check_directory_days(days)
        with self.locked():
            current = self.settings()
            before = directory_validity(self.root, current).days
            write_settings(self.root, Settings(directory_days=days))
            self.audit(
                "settings",
                actor,
                now,
                {
                    "directory_days": days,
                    "previous": current.directory_days,
                    "from": "next publish",
                },
                signer,
            )
        return before, days
