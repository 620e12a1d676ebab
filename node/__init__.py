"""The ePhyto exchange node: certificate core, and (later) exchange, hub and registry client."""

__version__ = "0.1.0"
