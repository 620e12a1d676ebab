"""The outbox records when a message's first counted attempt failed, so that the fallback
to the hub measures how long direct delivery has been failing rather than how long ago
the message was submitted (a message held while its partner was suspended, then tried
once, must not go through the hub at once). Messages already failing get the time of
their first `retry` event, or none (their next failure sets it).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.store.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("failing_since", UtcDateTime()))
    op.execute(
        "UPDATE outbox SET failing_since = (SELECT min(e.at) FROM events e"
        " WHERE e.message = outbox.message AND e.kind = 'retry') WHERE attempts > 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failing_since")
