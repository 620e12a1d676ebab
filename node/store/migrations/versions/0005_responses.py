"""Responses: the importing NPPO's answer to a certificate is a message of its own
(`kind` `response`, docs/protocol.md Part D), linked to the certificate it answers
(`answers`). Every message stored before is a certificate.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="certificate")
        )
        batch.add_column(sa.Column("answers", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
        batch.create_foreign_key("fk_messages_answers", "messages", ["answers"], ["id"])
    op.create_index("ix_messages_answers", "messages", ["answers"])


def downgrade() -> None:
    op.drop_index("ix_messages_answers", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_answers", type_="foreignkey")
        batch.drop_column("answers")
        batch.drop_column("kind")
