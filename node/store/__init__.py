"""The node's durable store: messages in and out, the outbox, receipts and events."""
