"""The compose topology's one-shot set-up: every identity, enrolment and configuration
file the long-running services need, made with the operator's own `ephyto` commands.

compose.yaml runs it as the `setup` service before anything else starts; it is safe to
run again (a second run changes nothing): each step looks at what is on disk first, and
`configure` writes the same file again for the same flags. Every setting (listen
addresses, the metrics listener, the database) is a flag of `node configure` or `hub
configure`: nothing here writes node.toml or hub.toml itself. No secret is copied into
them either: they name the secret files (`[api] token_file`, `database_password_file`),
which the services read from their own /run/secrets.

Everything that differs between the containers and a test that runs this on one machine
comes from the environment: where the state volumes and the secrets are mounted, and the
URLs at which the services reach one another.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class NodeSpec:
    """One NPPO's node in the topology: its volume, ports and where it stores."""

    country: str
    name: str
    exchange_port: int
    api_port: int
    metrics_port: int

    @property
    def volume(self) -> str:
        return f"node-{self.country.lower()}"

    @property
    def secret_prefix(self) -> str:
        return f"node_{self.country.lower()}"

    @property
    def endpoint_env(self) -> str:
        """The variable naming its direct endpoint (unset: the hub only)."""
        return f"EPHYTO_{self.country}_ENDPOINT"

    @property
    def database_env(self) -> str:
        """The variable naming its PostgreSQL database (unset: SQLite in its volume)."""
        return f"EPHYTO_{self.country}_DATABASE"


NODES = (
    NodeSpec("NL", "NPPO Netherlands", 8451, 8081, 9471),
    NodeSpec("KE", "NPPO Kenya", 8452, 8082, 9472),
    NodeSpec("US", "NPPO United States", 8453, 8083, 9473),
)
# Both hub processes are one hub: one identity, one database, behind one load balancer.
HUBS = (("hub-a", 8443, 9461), ("hub-b", 8444, 9462))
HUB_NAME = "Compose hub"
# Every process listens on all of its container's interfaces; compose publishes only
# the ports the firewall section of docs/operations.md lists.
ANY = "0.0.0.0"


def main() -> int:
    env = Environment.read()
    check_secrets(env)
    registry = env.state / "registry"
    anchor = registry / "maintainers" / "maintainers.json"
    hub_a = env.state / "hub-a"
    # Each `ephyto` command takes a second or more to start: what does not need another
    # step's result runs side by side.
    side_by_side(
        [lambda: anchor.exists() or ephyto("registry", "init", "--dir", registry)],
        [lambda: (hub_a / "hub.toml").exists() or ephyto(
            "hub", "init", "--dir", hub_a, "--name", HUB_NAME, "--endpoint", env.hub_endpoint)],
        *([partial(init_node, env.state / spec.volume, spec)] for spec in NODES),
    )  # fmt: skip
    # The registry's changes, one after another (it takes one at a time anyway).
    changed = False
    if not (registry / "hub.json").exists():
        changed = ephyto("registry", "set-hub", hub_a / "hub-request.json", "--dir", registry)
    for spec in NODES:
        if not (registry / "nppos" / f"{spec.country}.json").exists():
            request = env.state / spec.volume / "enrolment-request.json"
            changed = ephyto("registry", "add", request, "--dir", registry)
    if changed or not (registry / "current.json").exists():
        ephyto("registry", "publish", "--dir", registry)
    mirror(registry, env.state / "mirror")
    side_by_side(
        [lambda: configure_hubs(env, hub_a, anchor)],
        *([partial(configure_node, env, spec, env.state / spec.volume, anchor)] for spec in NODES),
    )  # fmt: skip
    print("setup: the registry, the hub and the nodes are configured", flush=True)
    return 0


def check_secrets(env: Environment) -> None:
    """Every secret the set-up will read, read before anything is made: a missing or bad
    one stops it with nothing changed."""
    env.secret("postgres_password")
    for spec in NODES:
        env.secret(f"{spec.secret_prefix}_key_passphrase")
        token = env.secret(f"{spec.secret_prefix}_api_token")
        # The node refuses a shorter api_token: better said here than at its start.
        if len(token) < 32 or not token.isprintable():
            raise SetupError(
                f"the secret {spec.secret_prefix}_api_token is not a token: 32 printable"
                " characters or more (make-secrets.sh makes one)"
            )


def init_node(directory: Path, spec: NodeSpec) -> None:
    """`ephyto node init`, with the direct endpoint its environment variable names (none:
    the node is reachable through the hub only)."""
    if (directory / "node.toml").exists():
        return
    endpoint = os.environ.get(spec.endpoint_env)
    ephyto("node", "init", "--country", spec.country, "--name", spec.name,
           *(("--endpoint", endpoint) if endpoint else ()), "--dir", directory)  # fmt: skip


@dataclass(frozen=True)
class Environment:
    """What compose.yaml (or a test) tells the set-up."""

    state: Path  # where the volumes are mounted, one directory each
    secrets: Path  # where the secret files are
    registry_url: str  # the directory as the nodes and the hub fetch it (the mirror)
    hub_endpoint: str  # where NPPOs reach the hub (the load balancer)
    hub_database: str  # the hubs' PostgreSQL URL, without its password
    hub_poll_seconds: int

    @staticmethod
    def read() -> Environment:
        def need(name: str) -> str:
            value = os.environ.get(name, "")
            if not value:
                raise SetupError(f"the environment variable {name} is not set")
            return value

        return Environment(
            state=Path(need("EPHYTO_STATE")),
            secrets=Path(need("EPHYTO_SECRETS")),
            registry_url=need("EPHYTO_REGISTRY_URL"),
            hub_endpoint=need("EPHYTO_HUB_ENDPOINT"),
            hub_database=need("EPHYTO_HUB_DATABASE"),
            hub_poll_seconds=int(os.environ.get("EPHYTO_HUB_POLL_SECONDS", "30")),
        )

    def secret(self, name: str) -> str:
        path = self.secrets / name
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SetupError(f"cannot read the secret {path}: {e.strerror}") from None

    def database(self, url: str) -> list[str]:
        """The flags that point a process at the PostgreSQL database `url` (no password in
        it): the password stays in its secret file, read by the process when it opens."""
        password = self.secrets / "postgres_password"
        return ["--database-url", url, "--database-password-file", str(password)]


def configure_hubs(env: Environment, hub_a: Path, anchor: Path) -> None:
    """hub-a as `hub init` made it, pointed at the registry; hub-b the same hub (same key,
    same database, a copy of its hub.toml) listening on its own port."""
    if not (hub_a / "maintainers.json").exists():
        ephyto("hub", "configure", "--dir", hub_a, "--registry", env.registry_url,
               "--anchor", anchor)  # fmt: skip
    for name, port, metrics in HUBS:
        directory = env.state / name
        if directory != hub_a:
            for part in ("keys", "maintainers.json", "hub.toml"):
                copy(hub_a / part, directory / part)
        ephyto("hub", "configure", "--dir", directory, "--listen", f"{ANY}:{port}",
               "--metrics", f"{ANY}:{metrics}", *env.database(env.hub_database))  # fmt: skip


def configure_node(env: Environment, spec: NodeSpec, directory: Path, anchor: Path) -> None:
    """Point the node at the registry, its listeners, its API token file and its database
    (flags of `node configure`), and protect its keys with its passphrase."""
    database = os.environ.get(spec.database_env)
    ephyto(
        "node", "configure", "--dir", directory,
        "--registry", env.registry_url, "--anchor", anchor,
        "--listen", f"{ANY}:{spec.exchange_port}",
        "--api", f"{ANY}:{spec.api_port}",
        "--metrics", f"{ANY}:{spec.metrics_port}",
        "--api-token-file", env.secrets / f"{spec.secret_prefix}_api_token",
        "--hub-poll-seconds", str(env.hub_poll_seconds),
        *(env.database(database) if database else ()),
    )  # fmt: skip
    if "passphrase_file" not in read_toml(directory / "node.toml")["keys"]:
        passphrase = env.secrets / f"{spec.secret_prefix}_key_passphrase"
        ephyto("node", "protect-keys", "--passphrase-file", passphrase, "--dir", directory)


def mirror(registry: Path, root: Path) -> None:
    """The static mirror's tree: links to exactly what `registry serve` serves, at the
    same URL paths, and nothing else of the registry (its keys stay unreachable)."""
    links = {
        "directory.json": registry / "current.json",
        "timestamp.json": registry / "timestamp.json",
        "directory": registry / "published",
        "codelists": registry / "published" / "codelists",
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, target in links.items():
        link = root / name
        # Relative, so that the tree works wherever both volumes are mounted side by side.
        relative = os.path.relpath(target, root)
        if not (link.is_symlink() and os.readlink(link) == relative):
            link.unlink(missing_ok=True)
            link.symlink_to(relative)


def ephyto(*words: str | Path) -> bool:
    """Run one `ephyto` command (True once done); SetupError with its message if it fails."""
    command = ["ephyto", *map(str, words)]
    print("$", " ".join(command[:3]), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SetupError(f"`{' '.join(command[:3])}` failed: {result.stderr.strip()}")
    return True


def side_by_side(*chains: Sequence[Callable[[], object]]) -> None:
    """Run the chains at once, each one's steps in order; the first failure is raised
    once all have ended."""
    with ThreadPoolExecutor(max_workers=len(chains)) as pool:
        done = [pool.submit(_in_order, chain) for chain in chains]
    for future in done:
        future.result()


def _in_order(chain: Sequence[Callable[[], object]]) -> None:
    for step in chain:
        step()


class SetupError(Exception):
    """A step failed: the message says which and why."""


def read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


def copy(source: Path, target: Path) -> None:
    """Copy a file or a folder (modes kept) unless it is there already."""
    if target.exists():
        return
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        sys.exit(f"setup: {e}")
