"""The node's store: SQLAlchemy async over SQLite (WAL) by default, PostgreSQL in production.

Everything that must not be lost or doubled happens in one transaction: a submitted
message and its outbox row; a received message and the receipt that answers it. The
outbox is claimed with leases (UPDATE ... RETURNING, with SKIP LOCKED on PostgreSQL),
so a worker that dies mid-delivery leaves nothing stuck: its lease runs out and the
message goes again, and the receiver answers a repeated id with the original receipt.

Writes are group-committed (node/store/writes.py): callers queue them, one writer task
applies everything queued in one transaction, and each caller's await returns only once
that transaction has committed. Durability per caller is unchanged; the cost of a
commit is shared.

One store class per concern, each in its own module, all mixed over one runner
(`base.StoreBase`: one `Database`, one group-commit queue) and combined in `Store`:
outbound messages and the outbox (`sending`), submitting once (`once`), responses
(`responses`), receiving (`receiving`), reading messages (`reading`), the events and
their feed (`event_feed`), the webhooks' cursors (`webhooks`), and the officer console's
certificates, audit trail and login lockout (`console`). Their message writes are values
applied together by `writes`.
"""

from __future__ import annotations

from node.store.console import (
    AuditEntry,
    ConsoleCertificate,
    ConsoleConflictError,
    ConsoleInputError,
    ConsoleStore,
)
from node.store.console_inbox import INBOX_STATES, ConsoleInboxStore, InboxEntry
from node.store.database import StoreError
from node.store.event_feed import EventsStore
from node.store.feed import FeedEvent
from node.store.links import Lifecycle, Link, Supersedes
from node.store.metrics_queries import MetricsQueries
from node.store.once import OnceStore
from node.store.reading import ReadingStore
from node.store.receiving import ReceivingStore
from node.store.records import (
    Answer,
    DuplicateError,
    Event,
    Existing,
    KeyReuseError,
    MessageSummary,
    NewMessage,
    NotFoundError,
    OutboxItem,
    Received,
    Remember,
    ReplayError,
    StoredMessage,
    queued,
)
from node.store.responses import ResponsesStore
from node.store.sending import SendingStore
from node.store.webhooks import WebhooksStore, WebhookState

__all__ = [
    "INBOX_STATES",
    "Answer",
    "AuditEntry",
    "ConsoleCertificate",
    "ConsoleConflictError",
    "ConsoleInputError",
    "DuplicateError",
    "Event",
    "Existing",
    "FeedEvent",
    "InboxEntry",
    "KeyReuseError",
    "Lifecycle",
    "Link",
    "MessageSummary",
    "NewMessage",
    "NotFoundError",
    "OutboxItem",
    "Received",
    "Remember",
    "ReplayError",
    "Store",
    "StoreError",
    "StoredMessage",
    "Supersedes",
    "WebhookState",
    "queued",
]


class Store(
    SendingStore,
    OnceStore,
    ResponsesStore,
    ReceivingStore,
    ReadingStore,
    EventsStore,
    WebhooksStore,
    ConsoleStore,
    ConsoleInboxStore,
    MetricsQueries,
):
    """The node's database. Open with `Store.open(url)`, then `await store.ensure_schema(dir)`
    (or `migrate()`, the explicit step of an upgrade)."""
