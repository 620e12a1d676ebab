"""Alembic environment: migrations run on a connection the hub store hands over."""

from __future__ import annotations

from alembic import context

from node.hub.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
# Batch mode lets later migrations alter tables on SQLite, which has no ALTER COLUMN; a
# version table of its own lets the hub share a database with a node's store.
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
