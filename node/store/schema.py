"""The store's tables (SQLAlchemy Core); Alembic migrations create and change them.

One `messages` table holds both directions, because a certificate's history reads as
one list of messages; the outbox holds delivery state for outbound messages that are
not settled yet, so a restarted node resumes where it stopped; events are append-only.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from node.store.types import UtcDateTime

metadata = MetaData()

# BigInteger keys become INTEGER PRIMARY KEY (the rowid) on SQLite.
_ID = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("direction", String(8), nullable=False),  # "out" or "in"
    Column("message_id", String(64), nullable=False),
    Column("sender", String(2), nullable=False),  # ISO 3166-1 alpha-2 of the sending NPPO
    Column("recipient", String(2), nullable=False),
    Column("certificate_number", String(128), nullable=False),
    Column("certificate_type", String(8), nullable=False),
    Column("certificate_status", String(8), nullable=False),
    Column("content_digest", String(80), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False),
    Column("route", String(8)),  # "direct" or "hub" once known
    Column("outcome", String(32)),  # the receipt's outcome once known
    Column("receipt", LargeBinary),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("settled_at", UtcDateTime()),
    # "certificate", or "response": an importing NPPO's answer (docs/protocol.md Part D),
    # whose `answers` is the certificate message it answers, in the same direction's
    # opposite (a response sent answers a certificate received, and the other way).
    Column("kind", String(16), nullable=False, server_default="certificate"),
    Column("answers", _ID, ForeignKey("messages.id", name="fk_messages_answers")),
    # A received replacement: the number of the certificate it replaces (its ADRPN note),
    # so an original that arrives after its replacement finds it (node.store.links).
    Column("replaces_number", String(128)),
    # A message id is the sender's: the same id from one sender is the same message.
    UniqueConstraint("direction", "sender", "message_id", name="uq_messages_sender_id"),
)
Index("ix_messages_certificate", messages.c.certificate_number)
Index("ix_messages_answers", messages.c.answers)
Index("ix_messages_replaces", messages.c.sender, messages.c.replaces_number)

outbox = Table(
    "outbox",
    metadata,
    Column("message", _ID, ForeignKey("messages.id"), primary_key=True),
    Column("destination", String(2), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    # A claim is a lease, not a lock: a worker killed mid-delivery leaves a claim that
    # simply expires, and the message is delivered again (the receiver dedups by id).
    Column("claimed_until", UtcDateTime()),
    Column("last_error", Text),
    Column("last_error_kind", String(16)),  # "transient" or "permanent"
    # Set once the hub has taken the message: from then on it is tracked, not sent.
    Column("hub_tracking", String(64)),
    # When the first counted attempt failed: the fallback to the hub measures how long
    # delivery has been failing from here, not from submission (node.outbox.policy).
    Column("failing_since", UtcDateTime()),
)
Index("ix_outbox_due", outbox.c.next_attempt_at)

events = Table(
    "events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("message", _ID, ForeignKey("messages.id"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    # The named API client whose call wrote the event (node/identity/api_clients.py);
    # null for what the node did on its own.
    Column("client", String(64)),
)
Index("ix_events_message", events.c.message)

# The national system's Idempotency-Key answers (node/api/idempotency.py): written in
# the transaction that stores the message, so a committed certificate always has its
# key. `client` is who sent the key (one API token today), so keys never collide across
# clients; `fingerprint` is the SHA-256 of method, path and body.
idempotency = Table(
    "idempotency",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(80), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("location", String(255)),
    Column("message", _ID, ForeignKey("messages.id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_idempotency_created", idempotency.c.created_at)
Index(
    "ix_messages_out_number_status",
    messages.c.certificate_number,
    messages.c.certificate_status,
)

# Each API client's webhook (node/api/webhooks.py): the feed cursor delivered up to (an
# event id; 0 before the first delivery) and the backoff of a failing receiver. Kept in
# the store, beside the events, so the cursor is as durable as what it points into.
webhooks = Table(
    "webhooks",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("cursor", _ID, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),  # failed since the last success
    Column("next_attempt_at", UtcDateTime()),  # null: now
    Column("last_error", Text),
)

# The officer console (node/console/, issue 15). A certificate an officer drafts, from
# draft to issued, as the JSON model text (docs/certificate-json.md); `version` is the
# compare-and-set counter that keeps two officers (or two processes on one PostgreSQL)
# from overwriting each other's change; `message` is the sent certificate once issued;
# `replaces` is the console certificate a replacement replaces.
console_certificates = Table(
    "console_certificates",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("number", String(128), nullable=False),
    Column("type_code", String(8), nullable=False),  # "851", or "657" for a re-export
    Column("state", String(16), nullable=False),
    Column("import_country", String(2)),  # a draft may not name one yet
    Column("commodity", String(256)),  # the first item's description, for lists
    Column("model", Text, nullable=False),
    Column("drafted_by", String(64), nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("reason", Text),  # the last query, rejection or withdrawal reason
    Column("message", _ID, ForeignKey("messages.id", name="fk_console_certificates_message")),
    Column("version", Integer, nullable=False),
    Column(
        "replaces",
        _ID,
        ForeignKey("console_certificates.id", name="fk_console_certificates_replaces"),
    ),
    UniqueConstraint("number", name="uq_console_certificates_number"),
)
Index("ix_console_certificates_state", console_certificates.c.state)
Index("ix_console_certificates_updated", console_certificates.c.updated_at)

# Who did what to which certificate, and when: append-only (the store offers no update
# or delete). A drafted certificate's entries name it; a received one's name its message.
console_audit = Table(
    "console_audit",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column(
        "certificate",
        _ID,
        ForeignKey("console_certificates.id", name="fk_console_audit_certificate"),
    ),
    Column("message", _ID, ForeignKey("messages.id", name="fk_console_audit_message")),
    Column("at", UtcDateTime(), nullable=False),
    Column("user", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text),  # a JSON object
)
Index("ix_console_audit_certificate", console_audit.c.certificate)
Index("ix_console_audit_message", console_audit.c.message)

# Failed console logins per user name, names that are no user's included (someone
# guessing names is counted too): the lockout after repeated failures.
console_logins = Table(
    "console_logins",
    metadata,
    Column("user", String(64), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),  # since the last lock or success
    Column("locked_until", UtcDateTime()),
    Column("last_failure", UtcDateTime()),
    # The TOTP time step of the last code accepted for this name: a code is good once.
    Column("totp_step", BigInteger),
    # The language the user last chose: it follows them to another browser.
    Column("language", String(8)),
)

# The console's settings an admin changes in the console (node.console.admin): a few
# named values, each kept as text.
console_settings = Table(
    "console_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# What the inbox filters received certificates by and the message row does not hold:
# the first item's commodity, read once from the payload (node.store.console_inbox).
console_received = Table(
    "console_received",
    metadata,
    Column(
        "message",
        _ID,
        ForeignKey("messages.id", name="fk_console_received_message"),
        primary_key=True,
    ),
    Column("commodity", String(256)),
)
