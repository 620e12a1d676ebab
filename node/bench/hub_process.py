"""The hub process a hub benchmark runs against: restarted on another store, stopped,
and a throwaway PostgreSQL database for it (shell: processes and a database server)."""

from __future__ import annotations

import asyncio
import importlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from node.demo.network import EPHYTO, READY_TIMEOUT, DemoError, Network
from node.hub.config import CONFIG_FILE, dump_hub_config, load_hub_config

HUB_PROCESS = "hub"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


class PostgresUnavailable(DemoError):
    """No PostgreSQL run: the message says why (printed, not raised to the user)."""


def hub_pid(net: Network) -> int:
    """The running hub process's id; DemoError when none runs."""
    return _hub_process(net).pid


def restart_hub(net: Network, database_url: str) -> None:
    """Stop the hub, point its hub.toml at `database_url`, and serve it again (same port)."""
    stop_hub(net)
    hub_dir = net.workdir / "hub"
    path = hub_dir / CONFIG_FILE
    config = replace(load_hub_config(path), database_url=database_url)
    path.write_text(dump_hub_config(config), encoding="utf-8")
    log_path = net.workdir / f"hub-{config.database_url.split(':', 1)[0].split('+')[0]}.log"
    with log_path.open("wb") as log:
        restarted = subprocess.Popen(
            [*EPHYTO, "hub", "serve", "--dir", str(hub_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=net.workdir,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    net.processes.append((HUB_PROCESS, restarted))  # so that the network stops it too
    _wait_ready(log_path, restarted)


def stop_hub(net: Network) -> None:
    """Stop the running hub process, if any (it lets go of its database before a DROP)."""
    try:
        process = _hub_process(net)
    except DemoError:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def postgres_database(log: IO[str]) -> Iterator[str]:
    """A fresh database on the local PostgreSQL for one run, dropped afterwards.

    Raises PostgresUnavailable (before yielding) when asyncpg is not installed or the
    server does not answer.
    """
    try:
        asyncpg: Any = importlib.import_module("asyncpg")
    except ImportError:
        raise PostgresUnavailable(
            "asyncpg is not installed (pip install 'ephyto-exchange[postgres]')"
        ) from None
    name = f"ephyto_bench_{secrets.token_hex(6)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as e:
        raise PostgresUnavailable(
            f"PostgreSQL on {PG_HOST}:{PG_PORT} (user {PG_USER}) is not usable: {e}"
        ) from None
    log.write(f"created PostgreSQL database {name}\n")
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
        log.write(f"dropped PostgreSQL database {name}\n")


def _hub_process(net: Network) -> subprocess.Popen[bytes]:
    for name, process in reversed(net.processes):
        if name == HUB_PROCESS and process.poll() is None:
            return process
    raise DemoError("the hub is not running")


def _wait_ready(log_path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if any(line.startswith("hub ") and " ready: " in line for line in text.splitlines()):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    raise DemoError(f"the hub did not become ready: {' | '.join(tail)}")
