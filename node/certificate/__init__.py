"""The phytosanitary certificate: model, XML, validation (pure core, no I/O)."""
