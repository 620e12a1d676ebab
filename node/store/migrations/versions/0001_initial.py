"""Messages, outbox and events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from node.store.types import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(2), nullable=False),
        sa.Column("recipient", sa.String(2), nullable=False),
        sa.Column("certificate_number", sa.String(128), nullable=False),
        sa.Column("certificate_type", sa.String(8), nullable=False),
        sa.Column("certificate_status", sa.String(8), nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("route", sa.String(8)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("receipt", sa.LargeBinary),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("settled_at", UtcDateTime()),
        sa.UniqueConstraint("direction", "sender", "message_id", name="uq_messages_sender_id"),
    )
    op.create_index("ix_messages_certificate", "messages", ["certificate_number"])
    op.create_table(
        "outbox",
        sa.Column("message", _ID, sa.ForeignKey("messages.id"), primary_key=True),
        sa.Column("destination", sa.String(2), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_until", UtcDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_kind", sa.String(16)),
    )
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at"])
    op.create_table(
        "events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("message", _ID, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_events_message", "events", ["message"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("outbox")
    op.drop_table("messages")
