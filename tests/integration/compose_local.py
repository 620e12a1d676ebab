"""compose/compose.yaml's services run as local processes, each command exactly as the
file writes it (no container engine on these machines).

What changes between a container and this machine, and nothing else:

- **Executables**: the image's `ephyto` and `python` are this virtualenv's; any other
  first word (`haproxy`, `bash`) is looked up on PATH.
- **Paths**: each container path mounted into a service becomes a temporary directory:
  `/var/lib/ephyto` (the image's WORKDIR, under which every volume is mounted at
  `/var/lib/ephyto/<volume>`) is `<root>/volumes`, so volume `<v>` is
  `<root>/volumes/<v>`; `/run/secrets` is `<root>/secrets`; a bind mount is its file or
  folder under compose/ (a file holding a service's host name is copied, rewritten).
  A container path left in a command after that stops the test: nothing may touch
  this machine's /var/lib or /run.
- **Host names**: a service name written as a host (`hub-lb:9443`, `@postgres:5432`,
  `//registry-mirror:8001`) is 127.0.0.1, in arguments, environment values and mounted
  config files. Every service listens on a port of its own, so nothing else changes.
- **Environment**: the image's ENV (from the Dockerfile), then the service's
  `environment`, then the test's `overrides` of variables the service sets (the
  databases it made on the local PostgreSQL, a shorter hub poll interval); PATH and HOME
  as a container would have them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
DOCKERFILE = COMPOSE_DIR.parent / "Dockerfile"
IMAGE = "ephyto-exchange:latest"
STATE = "/var/lib/ephyto"
SECRETS = "/run/secrets"
LOCAL = "127.0.0.1"
# Paths that would be this machine's own if a mapping were missed.
_CONTAINER_ROOTS = ("/var/lib/", "/run/", "/opt/", "/usr/local/etc/", "/etc/")


class ComposeRunError(AssertionError):
    """A service did not start or become healthy, or a command cannot be mapped."""


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments) in order: comments dropped, continued
    lines joined, as docker reads it."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    env: dict[str, str] = {}
    for word, rest in dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if word == "FROM":
            env = {}
        elif word == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@dataclass
class Local:
    """The services of one compose file, as processes under `root`."""

    compose: dict[str, Any]
    root: Path
    overrides: Mapping[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # What each service's health check said last, for a failure's message.
    last_probe: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = sorted(self.compose["services"], key=len, reverse=True)
        (self.root / "volumes").mkdir(parents=True, exist_ok=True)
        for volume in self.compose.get("volumes") or {}:
            (self.root / "volumes" / volume).mkdir(exist_ok=True)

    def service(self, name: str) -> dict[str, Any]:
        service: dict[str, Any] = self.compose["services"][name]
        return service

    def argv(self, name: str) -> list[str]:
        """The service's entrypoint and command, mapped to this machine."""
        service = self.service(name)
        entrypoint = service.get("entrypoint")
        if entrypoint is None:
            entrypoint = ["ephyto"] if service["image"] == IMAGE else []
        return self.command(name, [*entrypoint, *service.get("command", [])])

    def command(self, name: str, words: list[str]) -> list[str]:
        mapped = [self._executable(words[0]), *(self.translate(name, w) for w in words[1:])]
        for word in mapped[1:]:
            if word.startswith(_CONTAINER_ROOTS) and not word.startswith(str(self.root)):
                raise ComposeRunError(f"{name}: {word!r} is a container path with no mount")
        return mapped

    def env(self, name: str) -> dict[str, str]:
        service = self.service(name)
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(self.root / "volumes"),
            "LANG": "C.UTF-8",
        }
        if service["image"] == IMAGE:
            env |= image_env()
        for key, value in (service.get("environment") or {}).items():
            env[key] = self.translate(name, str(value))
        return env | {k: v for k, v in self.overrides.items() if k in env}

    def translate(self, name: str, text: str) -> str:
        """`text` with the service's container paths and every service host name mapped."""
        for container, host in sorted(self.mounts(name).items(), key=lambda m: -len(m[0])):
            text = re.sub(rf"(?<![\w./-]){re.escape(container)}(?![\w.-])", str(host), text)
        return self.hosts(text)

    def hosts(self, text: str) -> str:
        for service in self.names:
            text = re.sub(rf"(?<![\w.-]){re.escape(service)}(?=:\d)", LOCAL, text)
        return text

    def mounts(self, name: str) -> dict[str, Path]:
        """Container path -> path here, for every volume, bind mount and secret."""
        service = self.service(name)
        mounts: dict[str, Path] = {}
        if service["image"] == IMAGE:
            mounts[STATE] = self.root / "volumes"
        if service.get("secrets"):
            mounts[SECRETS] = self.root / "secrets"
        for spec in service.get("volumes", []):
            source, target = spec.split(":")[:2]
            if source.startswith("."):
                mounts[target] = self._bind(name, (COMPOSE_DIR / source).resolve())
            else:
                mounts[target] = self.root / "volumes" / source
        return mounts

    def start(self, name: str) -> None:
        log = (self.root / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            self.argv(name),
            env=self.env(name),
            cwd=self.root / "volumes",
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: HAProxy's workers and every child go with it.
            start_new_session=True,
        )
        log.close()

    def run(self, name: str) -> subprocess.CompletedProcess[str]:
        """Run a one-shot service to its end."""
        return subprocess.run(
            self.argv(name),
            env=self.env(name),
            cwd=self.root / "volumes",
            capture_output=True,
            text=True,
            timeout=300,
        )

    def healthy(self, name: str) -> bool:
        """Whether the service's own health check passes now."""
        test = self.service(name)["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: a health check in exec form is what this runs"
        words = self.command(name, list(test[1:]))
        try:
            result = subprocess.run(words, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            self.last_probe[name] = "the health check timed out"
            return False
        said = (result.stdout + result.stderr).strip().splitlines()[-1:]
        self.last_probe[name] = f"exit {result.returncode} {' '.join(said)}"
        return result.returncode == 0

    def await_healthy(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy(name):
            process = self.processes[name]
            if process.poll() is not None:
                raise ComposeRunError(
                    f"{name} exited ({process.returncode}) before it was healthy: {self.tail(name)}"
                )
            if time.monotonic() > deadline:
                raise ComposeRunError(
                    f"{name} not healthy in {timeout:.0f} s (health check:"
                    f" {self.last_probe[name]}): {self.tail(name)}"
                )
            time.sleep(0.5)

    def kill(self, name: str) -> None:
        """SIGKILL the service's whole process group (HAProxy's workers, a node's children)."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def kill_all(self) -> None:
        for name in self.processes:
            self.kill(name)

    def tail(self, name: str) -> str:
        path = self.root / f"{name}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-5:])

    def _executable(self, word: str) -> str:
        if word == "ephyto":
            return str(Path(sys.executable).with_name("ephyto"))
        if word == "python":
            return sys.executable
        found = shutil.which(word)
        if found is None:
            raise ComposeRunError(f"{word} is not installed here")
        return found

    def _bind(self, name: str, source: Path) -> Path:
        """A bound folder as it is; a bound file copied with the host names mapped."""
        if source.is_dir():
            return source
        copy = self.root / "binds" / name / source.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(self.hosts(source.read_text(encoding="utf-8")), encoding="utf-8")
        return copy
