"""The headers of the tables every run writes (pure, no dependencies).

One place for both their writer (node/study/simulate.py, for either engine) and their
reader (node/study/run_files.py, which the report uses without importing SimPy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

RUN_TABLES: Final[Mapping[str, tuple[str, ...]]] = {
    "messages.csv": ("id", "from", "to", "submitted", "delivered", "route", "attempts"),
    "pairs.csv": (
        "origin",
        "destination",
        "route",
        "certificates",
        "undelivered",
        "p50_seconds",
        "p95_seconds",
        "p99_seconds",
        "share_within_1h",
    ),
    "outages.csv": (
        "party",
        "start_hours",
        "duration_hours",
        "certificates_affected",
        "certificates_delayed",
        "delay_p50_seconds",
        "delay_p95_seconds",
        "delay_max_seconds",
        "pairs_affected",
        "drain_hours",
    ),
    "hub_holdings.csv": ("hour", "envelopes_held"),
    "costs.csv": (
        "country",
        "runs_node",
        "fee_model",
        "currency",
        "hub_envelopes_sent",
        "hub_fees",
        "envelopes_past_plan_cap",
        "node_running_cost",
        "node_currency",
    ),
}
