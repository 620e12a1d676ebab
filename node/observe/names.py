"""Metric names, their help texts and label names (pure): one place, so that the docs,
the collectors and the tests agree (Prometheus conventions: `ephyto_<what>_<unit>`,
`_total` for counters, base units; labels of low cardinality, never a certificate
number or a message id)."""

from __future__ import annotations

from typing import Final

# The node: counters moved by the event tailer (node.observe.tailer).
SENT: Final = "ephyto_messages_sent_total"
RECEIVED: Final = "ephyto_messages_received_total"
FAILED: Final = "ephyto_messages_failed_total"
RETRIES: Final = "ephyto_delivery_retries_total"
DUPLICATES: Final = "ephyto_duplicates_dropped_total"

EVENTS: Final = "ephyto_certificate_events_total"
LATENCY: Final = "ephyto_delivery_latency_seconds"
# The node's officer console (node.console): sign-ins and refusals, counted as they happen.
CONSOLE_SIGN_INS: Final = "ephyto_console_sign_ins_total"
CONSOLE_REFUSALS: Final = "ephyto_console_refusals_total"
# The node: gauges computed at scrape time (node.observe.node_gauges).
OUTBOX_DEPTH: Final = "ephyto_outbox_depth"
OLDEST_UNDELIVERED: Final = "ephyto_outbox_oldest_undelivered_age_seconds"
DIRECTORY_AGE: Final = "ephyto_directory_age_seconds"
DIRECTORY_EXPIRY: Final = "ephyto_directory_expires_in_seconds"
DIRECTORY_VERSION: Final = "ephyto_directory_version"
TIMESTAMP_AGE: Final = "ephyto_timestamp_age_seconds"
TIMESTAMP_EXPIRY: Final = "ephyto_timestamp_expires_in_seconds"
KEY_EXPIRY: Final = "ephyto_key_expires_in_days"
TLS_EXPIRY: Final = "ephyto_tls_certificate_expires_in_days"
# The hub.
HUB_ENVELOPES: Final = "ephyto_hub_envelopes_total"
HUB_HELD: Final = "ephyto_hub_envelopes_held"
HUB_HELD_BYTES: Final = "ephyto_hub_held_bytes"
HUB_OLDEST_HELD: Final = "ephyto_hub_oldest_held_age_seconds"
HUB_BALANCE: Final = "ephyto_hub_balance_minor_units"
# The registry.
REGISTRY_ACTIONS: Final = "ephyto_registry_actions_total"
REGISTRY_VERSION: Final = "ephyto_registry_published_version"
REGISTRY_DIRECTORY_EXPIRY: Final = "ephyto_registry_directory_expires_in_seconds"
REGISTRY_TIMESTAMP_EXPIRY: Final = "ephyto_registry_timestamp_expires_in_seconds"

# Label names.
ROUTE: Final = "route"  # "direct" or "hub"
PARTNER: Final = "partner"  # the other NPPO's country code
REASON: Final = "reason"  # node.observe.reasons.REASON_CLASSES
KIND: Final = "kind"  # an event kind
OUTCOME: Final = "outcome"  # a receipt's outcome
STATE: Final = "state"  # a hub envelope's state
NPPO: Final = "nppo"
CURRENCY: Final = "currency"
KEY: Final = "key"  # "signing", "encryption", "tls"
KEY_ID: Final = "key_id"
ACTION: Final = "action"

HELP: Final[dict[str, str]] = {
    SENT: "Messages delivered to a partner (its receipt stored), by route and partner",
    RECEIVED: "Messages received from a partner and stored, by partner and receipt outcome",
    FAILED: "Messages given up for good, by route, partner and reason class",
    RETRIES: "Delivery attempts that failed and will be retried, by partner and reason class",
    DUPLICATES: "Messages received again (same sender and message id) and dropped, by partner",
    EVENTS: "Certificate events recorded in the store, by kind",
    CONSOLE_SIGN_INS: "Sign-ins to the officer console, by outcome (signed-in, failed, locked)",
    CONSOLE_REFUSALS: "Console requests refused, by reason (csrf, forbidden, conflict)",
    LATENCY: "Seconds from submission to the partner's receipt (or the hub's Delivered)",
    OUTBOX_DEPTH: "Messages in the outbox, not yet settled",
    OLDEST_UNDELIVERED: "Age in seconds of the oldest message in the outbox (0 when empty)",
    DIRECTORY_AGE: "Seconds since the trusted directory was published",
    DIRECTORY_EXPIRY: "Seconds until the trusted directory expires (negative: expired)",
    DIRECTORY_VERSION: "Version of the trusted directory",
    TIMESTAMP_AGE: "Seconds since the registry's timestamp was signed",
    TIMESTAMP_EXPIRY: "Seconds until the registry's timestamp expires (negative: expired)",
    KEY_EXPIRY: "Days until each of this node's keys listed in the directory stops being valid",
    TLS_EXPIRY: "Days until the TLS certificate this process presents expires",
    HUB_ENVELOPES: "Envelope events at the hub, by kind (delivered, acknowledged, expired, ...)",
    HUB_HELD: "Envelopes the hub holds, by state",
    HUB_HELD_BYTES: "Bytes of content the hub holds, by state",
    HUB_OLDEST_HELD: "Age in seconds of the oldest envelope the hub still holds content of",
    HUB_BALANCE: "Each NPPO's account balance at the hub, in minor units of its currency",
    REGISTRY_ACTIONS: "Actions appended to the registry's audit log, by action",
    REGISTRY_VERSION: "The newest published directory version",
    REGISTRY_DIRECTORY_EXPIRY: "Seconds until the published directory expires",
    REGISTRY_TIMESTAMP_EXPIRY: "Seconds until the signed timestamp expires",
}
