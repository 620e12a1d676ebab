"""The shell of `ephyto hub init`: the hub's TLS key, certificate, config and request.

Built and checked in memory first, so bad input writes nothing; written like a node's
identity (node.identity.store): private files O_EXCL with mode 0600 from the start,
nothing overwritten, and a half-written identity removed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from node.crypto.ids import tls_pin
from node.hub.config import CONFIG_FILE, dump_hub_config, new_hub_config
from node.hub.request import build_hub_request
from node.identity.keys import TLS_CURVE, build_tls_certificate, certificate_pem, private_key_pem
from node.identity.store import DEFAULT_VALIDITY, IdentityExistsError, write_all

REQUEST_FILE = "hub-request.json"


@dataclass(frozen=True, slots=True)
class HubInitResult:
    """What `init_hub` wrote, and the pin the registry maintainer confirms."""

    directory: Path
    config: Path
    request: Path
    tls_key: Path
    certificate: Path
    tls_pin: str


def init_hub(directory: Path, *, name: str, endpoint: str, now: datetime) -> HubInitResult:
    """Create a hub identity in `directory`.

    Raises InputError for bad values (nothing written), IdentityExistsError if any of its
    files is already there, OSError if the directory cannot be written.
    """
    config = new_hub_config(directory, name=name, endpoint=endpoint)
    start = now.replace(microsecond=0)
    key = ec.generate_private_key(TLS_CURVE)
    certificate = build_tls_certificate(
        key,
        country=None,
        name=config.name,
        host=config.endpoint.host,
        not_before=start,
        not_after=start + DEFAULT_VALIDITY,
    )
    request = build_hub_request(
        key, certificate, name=config.name, endpoint=config.endpoint.url, created=start
    )
    # The config goes last: its presence marks a complete identity.
    files: list[tuple[Path, bytes, int]] = [
        (config.path(config.tls_key), private_key_pem(key), 0o600),
        (config.path(config.tls_certificate), certificate_pem(certificate), 0o644),
        (directory / REQUEST_FILE, request, 0o644),
        (directory / CONFIG_FILE, dump_hub_config(config).encode("utf-8"), 0o600),
    ]
    if existing := [path for path, _, _ in files if path.exists() or path.is_symlink()]:
        raise IdentityExistsError(
            f"{existing[0]} already exists: {directory} holds a hub identity, "
            "which is never overwritten (choose another --dir)"
        )
    write_all(directory, files)
    return HubInitResult(
        directory=directory,
        config=files[3][0],
        request=files[2][0],
        tls_key=files[0][0],
        certificate=files[1][0],
        tls_pin=tls_pin(certificate),
    )
