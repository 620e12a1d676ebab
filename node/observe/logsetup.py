"""The logging of a service process (shell): one handler on stderr, text or JSON lines,
repeated warnings rate-limited (node.observe.ratelimit)."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from node.observe.formatting import JsonFormatter, TextFormatter
from node.observe.ratelimit import RateLimitFilter
from node.observe.settings import LogFormat


def configure_logging(
    *, verbose: bool, log_format: LogFormat = "text", stream: TextIO | None = None
) -> logging.Handler | None:
    """Log to `stream` (stderr) at INFO (DEBUG when `verbose`) in `log_format`; the
    handler added, or None when the root logger had one already (as `basicConfig`, so
    that a caller who set up logging, a test harness say, keeps its own)."""
    # A line per job run every few seconds says nothing; failures are still logged.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Alembic, imported when a store is first checked, lists its plugins at INFO.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RateLimitFilter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
