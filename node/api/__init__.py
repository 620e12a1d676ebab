"""The node's HTTP API for the national certification system."""
