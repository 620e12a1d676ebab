"""The node's network shell: how it finds and reaches other nodes (zeroconf, HTTPS)."""
