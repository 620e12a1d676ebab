"""Alembic migrations of the node's store (run by `Store.migrate`)."""
