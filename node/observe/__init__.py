"""Logs, metrics and health of a running node, hub or registry (issue 12).

Pure parts: the metric names and labels (`names`), the reason classes of a failure
(`reasons`), a certificate event and a hub envelope event as one log line and the
counters they move (`event_lines`, `hub_lines`), the gauges as values (`gauges`), the
log formatters (`formatting`), the rate limit of repeated warnings (`ratelimit`), the
listen and log-format settings (`settings`) and the readiness verdict (`health`). Shell
parts: the logging set-up (`logsetup`), one process's metrics registry (`metrics`), the
metrics and health listener (`listener`), the tailer of the node's events (`tailer`),
the node's gauges and checks (`node_observer`) and the refused TLS clients' log line
(`tls_refusals`). The hub's and the registry's wiring are node/hub/observe.py and
registry/observe.py. Why the logs and counters follow the stores' records:
docs/adr/0012-logs-and-metrics-follow-the-stores.md.
"""
