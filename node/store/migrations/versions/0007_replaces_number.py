"""A received replacement records the number it replaces, indexed, so that an original
arriving after its replacement (another route, a delay) is found and shown replaced.
Filled for the replacements already stored from their `replaces` events.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("replaces_number", sa.String(128)))
    op.create_index("ix_messages_replaces", "messages", ["sender", "replaces_number"])
    conn = op.get_bind()
    said = conn.execute(
        sa.text(
            "SELECT e.message, e.detail FROM events e JOIN messages m ON m.id = e.message"
            " WHERE e.kind = 'replaces' AND m.direction = 'in'"
        )
    ).all()
    for message, detail in said:
        try:
            number = json.loads(detail).get("certificate_number")
        except (ValueError, AttributeError):
            continue  # not ours to repair: the original simply stays unlinked
        if isinstance(number, str):
            conn.execute(
                sa.text("UPDATE messages SET replaces_number = :n WHERE id = :id"),
                {"n": number, "id": message},
            )


def downgrade() -> None:
    op.drop_index("ix_messages_replaces", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("replaces_number")
