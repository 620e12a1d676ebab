"""Idempotency keys: the answer given to each key the national system sent, so a retry
after a timeout gets the same answer instead of a second certificate; and an index on
(certificate number, status), which each submission now reads to refuse a duplicate.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.store.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "idempotency",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("location", sa.String(255)),
        sa.Column("message", _ID, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_created", "idempotency", ["created_at"])
    op.create_index(
        "ix_messages_out_number_status", "messages", ["certificate_number", "certificate_status"]
    )


def downgrade() -> None:
    op.drop_index("ix_messages_out_number_status", table_name="messages")
    op.drop_table("idempotency")
