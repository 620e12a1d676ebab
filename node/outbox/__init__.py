"""Delivery decisions for outbound messages (pure): when to retry, what is permanent."""
