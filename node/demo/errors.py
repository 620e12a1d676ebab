"""The demo's error."""

from __future__ import annotations

from node.errors import EphytoError


class DemoError(EphytoError):
    """The demo network could not be started or driven; the message says which step."""
