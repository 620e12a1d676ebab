"""The node's exception base, grouped by what the caller does next."""

from __future__ import annotations


class EphytoError(Exception):
    """Base of every error the node raises on purpose; its message is one clear line."""


class InputError(EphytoError):
    """The input (file, document, model) is wrong: fix it and try again."""


class UnsafeXmlError(InputError):
    """The XML is hostile or not acceptable at all: nothing of it was used."""


class ConfigError(EphytoError):
    """A setting or a file it points at is wrong: fix the configuration."""
