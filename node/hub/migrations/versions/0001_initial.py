"""Envelopes, accounts, ledger, push endpoints and events of the hub.

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
        "hub_envelopes",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("tracking_number", sa.String(36), nullable=False),
        sa.Column("sender", sa.String(2), nullable=False),
        sa.Column("recipient", sa.String(2), nullable=False),
        sa.Column("certificate_type", sa.Integer, nullable=False),
        sa.Column("certificate_status", sa.Integer, nullable=False),
        sa.Column("certificate_number", sa.String(128), nullable=False),
        sa.Column("content", sa.LargeBinary),
        sa.Column("content_size", sa.Integer, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("dedup_key", sa.String(80)),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("settled_at", UtcDateTime()),
        sa.Column("push_claimed_until", UtcDateTime()),
        sa.Column("push_next_at", UtcDateTime()),
        sa.Column("push_attempts", sa.Integer, nullable=False),
        sa.Column("push_error", sa.Text),
        sa.UniqueConstraint("tracking_number", name="uq_hub_envelopes_tracking_number"),
        sa.UniqueConstraint("dedup_key", name="uq_hub_envelopes_dedup_key"),
    )
    op.create_index("ix_hub_envelopes_inbox", "hub_envelopes", ["recipient", "state", "id"])
    op.create_index("ix_hub_envelopes_pending", "hub_envelopes", ["state", "created_at"])
    op.create_table(
        "hub_accounts",
        sa.Column("nppo", sa.String(2), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("used", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "hub_ledger",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("nppo", sa.String(2), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_hub_ledger_account", "hub_ledger", ["nppo", "at", "id"])
    op.create_table(
        "hub_push_endpoints",
        sa.Column("nppo", sa.String(2), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "hub_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tracking_number", sa.String(36)),
        sa.Column("nppo", sa.String(2)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_hub_events_tracking", "hub_events", ["tracking_number"])
    op.create_index("ix_hub_events_nppo", "hub_events", ["nppo", "id"])


def downgrade() -> None:
    op.drop_table("hub_events")
    op.drop_table("hub_push_endpoints")
    op.drop_table("hub_ledger")
    op.drop_table("hub_accounts")
    op.drop_table("hub_envelopes")
