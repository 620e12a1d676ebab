"""The hub's tables (SQLAlchemy Core); Alembic migrations create and change them.

Names start with `hub_` and the migrations keep their own version table, so a hub can
share a database with a node without either touching the other's tables. An envelope's
content lives in its row until it is settled and is then set to NULL: the header,
tracking state and digest stay for the sender and the audit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from node.store.types import UtcDateTime

metadata = MetaData()

VERSION_TABLE = "hub_alembic_version"

# BigInteger keys become INTEGER PRIMARY KEY (the rowid) on SQLite.
_ID = BigInteger().with_variant(Integer(), "sqlite")

envelopes = Table(
    "hub_envelopes",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tracking_number", String(36), nullable=False, unique=True),
    Column("sender", String(2), nullable=False),
    Column("recipient", String(2), nullable=False),
    Column("certificate_type", Integer, nullable=False),
    Column("certificate_status", Integer, nullable=False),
    Column("certificate_number", String(128), nullable=False),
    Column("content", LargeBinary),  # NULL once settled
    Column("content_size", Integer, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    # "<sender>><recipient>:<sha256 of content>" while the envelope may still arrive; NULL
    # once it failed, so the sender can send the same content again. NULLs are distinct
    # in a unique index on both databases.
    Column("dedup_key", String(80), unique=True),
    Column("state", String(24), nullable=False),
    Column("message", Text),  # the failure reason or warnings of the acknowledgement
    Column("created_at", UtcDateTime(), nullable=False),
    Column("settled_at", UtcDateTime()),
    # A push claim is a lease: a hub process that dies mid-push leaves a claim that runs
    # out, and another process pushes again (the recipient dedups by tracking number).
    Column("push_claimed_until", UtcDateTime()),
    Column("push_next_at", UtcDateTime()),
    Column("push_attempts", Integer, nullable=False, default=0),
    Column("push_error", Text),
)
Index("ix_hub_envelopes_inbox", envelopes.c.recipient, envelopes.c.state, envelopes.c.id)
Index("ix_hub_envelopes_pending", envelopes.c.state, envelopes.c.created_at)

accounts = Table(
    "hub_accounts",
    metadata,
    Column("nppo", String(2), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("policy", Text, nullable=False),  # accounts.policy_to_json
    Column("balance", BigInteger, nullable=False),
    Column("period", String(8), nullable=False),  # the period `used` counts, e.g. "2026-11"
    Column("used", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

ledger = Table(
    "hub_ledger",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("nppo", String(2), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),  # "credit" or "charge"
    Column("amount", BigInteger, nullable=False),  # signed minor units
    Column("currency", String(3), nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("reference", String(64), nullable=False),  # the tracking number of a charge
    Column("note", Text, nullable=False),
)
Index("ix_hub_ledger_account", ledger.c.nppo, ledger.c.at, ledger.c.id)

push_endpoints = Table(
    "hub_push_endpoints",
    metadata,
    Column("nppo", String(2), primary_key=True),
    Column("url", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

events = Table(
    "hub_events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("tracking_number", String(36)),
    Column("nppo", String(2)),
    Column("detail", Text, nullable=False),
)
Index("ix_hub_events_tracking", events.c.tracking_number)
Index("ix_hub_events_nppo", events.c.nppo, events.c.id)
