"""Whether the node process answers (`ephyto doctor`): `GET /health/ready` on the node's
own metrics listener (`[metrics] listen` in node.toml; node.observe.listener).

`process_finding` is pure (what was asked, what came back, in; a finding out);
`node_process` asks.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import aiohttp

from node.doctor.checks import Finding, ok, problem, warning
from node.identity.config import NodeConfig
from node.observe.listener import READY_PATH
from node.observe.settings import ListenAddress

CHECK: Final = "process"
_MAX_BODY: Final = 64 * 1024
# A listener on every interface is asked on loopback.
_LOOPBACK: Final = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def ready_url(listen: ListenAddress) -> str:
    """The readiness URL of a listener bound to `listen`."""
    host = _LOOPBACK.get(listen.host, listen.host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{listen.port}{READY_PATH}"


def process_finding(
    listen: ListenAddress | None,
    url: str | None,
    status: int | None,
    body: Any,
    error: str | None,
    start: str,
) -> Finding:
    """What the answer (or its absence) says of the node process. `start` is the command
    that starts the node, for the action."""
    if listen is None:
        # Off is a choice the operator made (it is the default): said, not warned about.
        return ok(
            CHECK,
            "not asked: node.toml sets no [metrics] listen (with one, doctor asks the running"
            " node whether it is ready; docs/operations.md, Monitoring)",
        )
    if listen.port == 0:
        return warning(
            CHECK,
            f"[metrics] listen is {listen}: the port changes at each start, so the node"
            " cannot be found to ask",
            "set a fixed port in [metrics] listen and restart the node",
        )
    if error is not None:
        return problem(
            CHECK,
            f"the node process does not answer at {url}: {error}",
            f"start it (`{start}`), or read its log to see why it stopped",
        )
    failing = body.get("failing") if isinstance(body, dict) else None
    checks = body.get("checks") if isinstance(body, dict) else None
    if status == 200 and isinstance(checks, dict):
        return ok(CHECK, f"the node process answers at {url} and is ready")
    if status == 503 and isinstance(failing, list) and isinstance(checks, dict):
        why = "; ".join(
            f"{name}: {_detail(checks.get(name))}" for name in failing if isinstance(name, str)
        )
        return problem(
            CHECK,
            f"the node process answers at {url} but is not ready: {why or 'no reason given'}",
            "fix what the failing checks name (the findings above say more)",
        )
    return problem(
        CHECK,
        f"something that is not the node's health endpoint answers at {url} (HTTP {status})",
        "check [metrics] listen in node.toml: another program may hold that port",
    )


async def node_process(config: NodeConfig, timeout: float) -> list[Finding]:
    """Ask the running node whether it is ready; one finding."""
    start = f"ephyto node serve --dir {config.directory}"
    listen = config.metrics_listen
    if listen is None or listen.port == 0:
        return [process_finding(listen, None, None, None, None, start)]
    url = ready_url(listen)
    status, body, error = None, None, None
    try:
        async with asyncio.timeout(timeout):
            status, body = await _get(url)
    except TimeoutError:
        error = f"no answer within {timeout:g} s"
    except (aiohttp.ClientError, OSError) as e:
        error = f"{type(e).__name__}: {e}".rstrip(": ")[:300]
    return [process_finding(listen, url, status, body, error, start)]


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        data = await response.content.read(_MAX_BODY)
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, None


def _detail(check: Any) -> str:
    detail = check.get("detail") if isinstance(check, dict) else None
    return str(detail)[:300] if detail else "failed"
