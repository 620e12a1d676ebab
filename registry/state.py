"""The registry's state on disk (the shell), as the commands and the web app use it: one
object combining the stores of a registry directory, each in a module of its own.

    registry/layout.py       RegistryFiles: the layout, the one lock, the maintainers' keys,
                             the audit log (registry/audit.py), `init`
    registry/nppos.py        NppoStore: the enrolled and the queued requests
    registry/lifecycle.py    LifecycleStore: status decisions, key rotations, endpoint
                             changes, the hub
    registry/onboarding.py   OnboardingStore: enrol, queue, approve, reject
    registry/publication.py  PublicationStore: the published versions, build and publish
    registry/settings_store.py  SettingsStore: the maintainers' settings (directory validity)

Each store builds on the ones it reads (layout <- nppos <- lifecycle <- onboarding,
publication); code lists, schema versions and proposals are functions over the store they
need (registry/codelists.py, schemas.py, proposal.py). Nothing below imports this module.
"""

from __future__ import annotations

from registry.audit import AUDIT_FILE
from registry.layout import (
    LOCK_FILE,
    MAINTAINERS_FILE,
    NotARegistryError,
    RegistryExistsError,
)
from registry.lifecycle import (
    HUB_FILE,
    MAX_OVERLAP,
    MIN_OVERLAP,
    ROTATIONS_DIR,
    Lifecycle,
    Rotation,
)
from registry.nppos import QueuedRequest
from registry.onboarding import Approval, Approved, OnboardingStore
from registry.publication import CURRENT_FILE, PublicationStore
from registry.settings_store import SettingsStore

__all__ = [
    "AUDIT_FILE",
    "CURRENT_FILE",
    "HUB_FILE",
    "LOCK_FILE",
    "MAINTAINERS_FILE",
    "MAX_OVERLAP",
    "MIN_OVERLAP",
    "ROTATIONS_DIR",
    "Approval",
    "Approved",
    "Lifecycle",
    "NotARegistryError",
    "QueuedRequest",
    "RegistryExistsError",
    "RegistryState",
    "Rotation",
]


class RegistryState(OnboardingStore, PublicationStore, SettingsStore):
    """One registry directory; every method reads the files afresh."""
