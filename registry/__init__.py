"""The registry of NPPO nodes: signed directory and governance (built in later issues)."""
