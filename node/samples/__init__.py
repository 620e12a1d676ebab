"""Sample certificates bundled with the package (fictitious data)."""

from __future__ import annotations

from importlib import resources

# The bundled samples by the name commands know them by.
SAMPLES = {"phyto": "phyto_nl_cn.json", "reexport": "reexport_ae_ru.json"}


def sample_model_bytes(name: str) -> bytes:
    """The JSON model of a bundled sample certificate."""
    return (resources.files(__name__) / SAMPLES[name]).read_bytes()
