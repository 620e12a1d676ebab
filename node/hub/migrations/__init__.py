"""Alembic migrations of the hub's store (run by `HubStore.migrate`)."""
