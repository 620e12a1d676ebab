"""The logging and metrics options of `ephyto registry serve`: `--metrics HOST:PORT`
(/metrics and /health/*, node.observe.listener) and `--log-format text|json`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from node.errors import InputError
from node.observe.settings import LOG_FORMATS, parse_listen, parse_log_format

if TYPE_CHECKING:
    from aiohttp import web


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve /metrics, /health/live and /health/ready on this address of their own"
        " (default: off; keep it on loopback or a monitoring network)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="log lines as text (default) or one JSON object per line, for log shippers",
    )


def observed(args: argparse.Namespace, app: web.Application) -> Callable[[], str | None]:
    """Set up logging, and the observer on `app` when --metrics is given; a callable
    saying where it answers once the app runs (None without --metrics). InputError for
    a --metrics that is not HOST:PORT."""
    from node.clock import SystemClock  # the serving shell: loaded when serving only
    from node.observe.logsetup import configure_logging
    from registry.observe import RegistryObserver

    configure_logging(verbose=False, log_format=parse_log_format(args.log_format))
    if args.metrics is None:
        return lambda: None
    try:
        listen = parse_listen(args.metrics)
    except InputError as e:
        raise InputError(f"--metrics: {e}") from None
    observer = RegistryObserver(args.directory, listen, SystemClock())
    app.cleanup_ctx.append(observer.context())

    def where() -> str | None:
        urls = observer.urls
        return None if urls is None else f"metrics {urls.metrics}, ready {urls.ready}"

    return where
