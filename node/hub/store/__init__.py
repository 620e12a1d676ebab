"""The hub's durable store: SQLite (one process) or PostgreSQL (many), through `Database`.

One store class per concern, each in its own module, all mixed over one runner
(`base.HubStoreBase`: one `Database`, one group-commit queue) and combined in
`HubStore`: envelopes in and read (`envelopes`), settled (`settlement`), expired
(`retention`), claimed for push (`push_claims`), the accounts and their ledger
(`ledger`) and the audit trail (`audit`). The statements are built once, with bound
parameters, so SQLAlchemy compiles each of them once; rows go in with executemany, not
as multi-row VALUES built per call.

Every write that must not be lost, doubled or overdrawn is one transaction. On
PostgreSQL several hub processes share the database: a delivery locks its payer's
account row (SELECT ... FOR UPDATE) before it charges, so concurrent deliveries queue
per account and never take a balance past its overdraft; the envelope insert resolves
a repeated delivery with ON CONFLICT on the dedup key, so a retried DeliverEnvelope gets
the original tracking number and is charged once; settling an envelope is an UPDATE
guarded by its state, so it happens once; push work is claimed with leases under
FOR UPDATE SKIP LOCKED, so two processes never claim the same envelope. On SQLite the
one database thread queues the writers instead.

Raises the errors of `node.hub.records`; a database failure is `HubStoreError`.
"""

from __future__ import annotations

from node.hub.store.audit import AuditStore
from node.hub.store.envelopes import EnvelopesStore
from node.hub.store.ledger import LedgerStore
from node.hub.store.metrics_queries import MetricsQueriesStore
from node.hub.store.push_claims import PushClaimsStore
from node.hub.store.retention import RetentionStore
from node.hub.store.settlement import SettlementStore

__all__ = ["HubStore"]


class HubStore(
    EnvelopesStore,
    SettlementStore,
    RetentionStore,
    PushClaimsStore,
    LedgerStore,
    AuditStore,
    MetricsQueriesStore,
):
    """The hub's database. Open with `HubStore.open(url)`, then `await
    store.ensure_schema(directory)` (a new store is created; another revision refused)."""
