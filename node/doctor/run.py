"""The shell of `ephyto doctor`: read the node's files, ask the network, hand values to checks.

Read-only: nothing in the node directory is written, not even a fresher directory (the
running node does that). The network checks run concurrently, each within `timeout`
seconds; the registry gets at least REGISTRY_TIMEOUT, since it sends a whole document.
"""

from __future__ import annotations

import asyncio
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.clock import Clock
from node.crypto.ids import key_id, tls_pin
from node.directory import Directory, DirectoryError, MaintainerSet, TrustedDirectory
from node.directory.refresh import load, load_timestamp, timestamp_path
from node.directory.signing import DEFAULT_MAX_BYTES
from node.doctor.checks import (
    DEFAULT_TIMEOUT,
    Finding,
    Outcome,
    OwnKeys,
    Target,
    anchor_finding,
    cached_directory,
    certificate_validity,
    clock_skew,
    connection,
    key_loaded,
    next_key_loaded,
    no_pin,
    own_entry,
    private_file_mode,
    problem,
    registry_answer,
    registry_settings,
    registry_timestamp,
    rotation_progress,
    targets,
    tls_rotation_progress,
)
from node.doctor.key_access import KeyAccess, KeyLoader, token_key
from node.doctor.process import node_process
from node.errors import ConfigError, EphytoError
from node.identity.config import CONFIG_FILE, NodeConfig, load_config
from node.identity.keyring import encryption_id, signing_id
from node.identity.keys import (
    load_certificate,
    load_encryption_key,
    load_signing_key,
    load_tls_key,
)
from node.identity.tls_choice import HeldTls, TlsIdentity, presented
from node.service import DIRECTORY_CACHE, read_anchor
from node.transport.client import pinned_context

REGISTRY_TIMEOUT: Final = 5.0
# What a partner's node answers without a pin check or side effect (node.web.exchange).
HEALTH_PATH: Final = "/ephyto/v1/health"
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class _Files:
    """What the local checks learned that the network checks need."""

    config: NodeConfig
    anchor: MaintainerSet | None
    directory: Directory | None
    # What the node presents now, as the running node chooses it (node.identity.tls_choice);
    # None when its TLS key and certificate do not load or do not belong together.
    tls: TlsIdentity | None


async def diagnose(
    node_dir: Path,
    *,
    clock: Clock,
    offline: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Finding]:
    """Every finding about the node in `node_dir`, in report order.

    Raises ConfigError when `node_dir` holds no node at all (a usage error); everything
    else, a broken node.toml included, is a finding.
    """
    config_path = node_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(
            f"{node_dir}: no node here (no {CONFIG_FILE}): pass --dir with a node's"
            " directory, or create one with `ephyto node init`"
        )
    try:
        config = load_config(config_path)
    except ConfigError as e:
        return [problem("config", str(e), f"correct {config_path}: the message names the key")]
    findings: list[Finding] = []
    files = _local_checks(config, config_path, clock.now(), findings)
    if offline:
        return findings
    jobs = [node_process(config, timeout)]  # is the node itself up and ready?
    if config.registry_url is not None and files.anchor is not None:
        jobs.append(_registry(config, config.registry_url, files, clock, timeout))
    if files.directory is not None and files.tls is not None:
        for target in targets(files.directory, config.country, clock.now()):
            jobs.append(_connect(target, files.tls, timeout))
    for found in await asyncio.gather(*jobs):
        findings.extend(found)
    return findings


# --- local: config, anchor, keys, certificate, cached directory ----------------------------


def _local_checks(
    config: NodeConfig, config_path: Path, now: datetime, findings: list[Finding]
) -> _Files:
    findings.append(registry_settings(config))
    if (mode := _mode(config_path)) is not None and (
        loose := private_file_mode("config file", str(config_path), mode)
    ) is not None:
        findings.append(loose)
    anchor = None
    if config.registry_anchor is not None:
        error = None
        try:
            anchor = read_anchor(config)
        except ConfigError as e:
            error = str(e)
        findings.append(anchor_finding(config, config.registry_anchor, anchor, error))

    # Key files are read as the node reads them at start: decrypted with the passphrase
    # [keys] names, the signing key from its token when [keys.signing_pkcs11] names one.
    # The passphrase's finding goes before the keys', though known only after them.
    access = KeyAccess.read(config)
    keys_at = len(findings)
    signing: Ed25519PrivateKey | None
    if (token := config.keys.signing_pkcs11) is not None:
        opened, signing = token_key(config, token)
        findings.append(opened)
    else:
        signing = _private_key(
            access, "signing key", config.keys.signing, load_signing_key, findings
        )
    encryption = _private_key(
        access, "encryption key", config.keys.encryption, load_encryption_key, findings
    )
    tls_key = _private_key(access, "TLS key", config.keys.tls_key, load_tls_key, findings)
    next_signing = next_encryption = None
    if config.keys.next_signing is not None:
        next_signing = _private_key(
            access, "next signing key", config.keys.next_signing, load_signing_key, findings,
            next_key_loaded,
        )  # fmt: skip
    if config.keys.next_encryption is not None:
        next_encryption = _private_key(
            access, "next encryption key", config.keys.next_encryption, load_encryption_key,
            findings, next_key_loaded,
        )  # fmt: skip
    current_tls = _tls_identity(
        access, config.keys.tls_certificate, config.keys.tls_key, tls_key, now, findings
    )
    next_tls = None
    next_tls_files = (config.keys.next_tls_certificate, config.keys.next_tls_key)
    if next_tls_files != (None, None):
        next_tls = _next_tls_identity(access, *next_tls_files, now, findings)
    findings[keys_at:keys_at] = access.findings()

    directory = None
    if anchor is not None:
        cache = config.path(DIRECTORY_CACHE)
        error_text = None
        try:
            directory = load(cache, anchor).current
        except DirectoryError as e:
            error_text = str(e)
        except OSError as e:
            error_text = _error_text(e, cache)
        findings.append(cached_directory(str(cache), directory, error_text, anchor, now))
        if directory is not None:
            stamp_path = timestamp_path(cache)
            stamp = load_timestamp(stamp_path, directory).current
            if (found := registry_timestamp(str(stamp_path), directory, stamp, now)) is not None:
                findings.append(found)
    if directory is not None:
        own = OwnKeys(
            signing_key_id=None
            if signing is None
            else key_id(signing.public_key().public_bytes_raw()),
            encryption_key_id=None
            if encryption is None
            else key_id(encryption.public_key().public_bytes_raw()),
            tls_pin=None if current_tls is None else current_tls.pin,
            next_signing_key_id=None if next_signing is None else signing_id(next_signing),
            next_encryption_key_id=None
            if next_encryption is None
            else encryption_id(next_encryption),
            next_tls_pin=None if next_tls is None else next_tls.pin,
        )
        findings.extend(own_entry(directory, config, own, now))
        if own.next_signing_key_id is not None and own.next_encryption_key_id is not None:
            pairs = (
                (own.signing_key_id, own.next_signing_key_id),
                (own.encryption_key_id, own.next_encryption_key_id),
            )
            old_ids = {old for old, new in pairs if old is not None and old != new}
            next_ids = {new for _, new in pairs}
            findings.append(rotation_progress(directory, config, old_ids, next_ids, now))
        if current_tls is not None and next_tls is not None:
            findings.append(
                tls_rotation_progress(directory, config, current_tls.pin, next_tls.pin, now)
            )
    shown = current_tls
    if current_tls is not None and directory is not None:
        entry = next((n for n in directory.nppos if n.country == config.country), None)
        if entry is not None:
            shown = presented(HeldTls(current_tls, next_tls), entry.tls_pins, now)
    return _Files(config, anchor, directory, shown)


def _tls_identity(
    access: KeyAccess,
    certificate: str,
    key: str,
    tls_key: ec.EllipticCurvePrivateKey | None,
    now: datetime,
    findings: list[Finding],
    *,
    next_: bool = False,
) -> TlsIdentity | None:
    """The finding of the certificate (the next one with `next_`); the identity when it
    and `tls_key` (loaded already) belong together and the certificate is valid."""
    config = access.config
    check = "next TLS certificate" if next_ else "TLS certificate"
    cert_path = config.path(certificate)
    try:
        loaded = load_certificate(cert_path.read_bytes(), str(cert_path))
    except (OSError, EphytoError) as e:
        error = _error_text(e, cert_path)
        findings.append(
            next_key_loaded(check, str(cert_path), error, None)
            if next_
            else problem(
                check, error, f"restore {cert_path} from this node's backup, with its TLS key"
            )
        )
        return None
    spki = None
    if tls_key is not None:
        spki = tls_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    found = certificate_validity(str(cert_path), loaded, spki, now, check)
    findings.append(found)
    if tls_key is None or found.status == "problem":
        return None
    key_path = config.path(key)
    return TlsIdentity(cert_path, key_path, tls_pin(loaded), access.password(key_path))


def _next_tls_identity(
    access: KeyAccess,
    certificate: str | None,
    key: str | None,
    now: datetime,
    findings: list[Finding],
) -> TlsIdentity | None:
    """The next TLS key and certificate node.toml names (a rotation of the TLS key)."""
    if certificate is None or key is None:
        findings.append(
            problem(
                "next TLS certificate",
                "node.toml names only one of next_tls_key and next_tls_certificate: the"
                " node cannot load the next TLS identity",
                "name both files of the rotation request the registry recorded in [keys]"
                " (keys/tls.next.key, keys/tls.next.crt), or neither",
            )
        )
        return None
    tls_key = _private_key(access, "next TLS key", key, load_tls_key, findings, next_key_loaded)
    return _tls_identity(access, certificate, key, tls_key, now, findings, next_=True)


def _private_key(
    access: KeyAccess,
    check: str,
    relative: str,
    loader: KeyLoader[_K],
    findings: list[Finding],
    finding: Callable[[str, str, str | None, int | None], Finding] = key_loaded,
) -> _K | None:
    """The key file's finding and key. An encrypted file the passphrase cannot open gets
    none (the passphrase's finding names it), only a warning when its mode is loose."""
    path = access.config.path(relative)
    try:
        key = access.open(path, path.read_bytes(), loader)
    except (OSError, EphytoError) as e:
        findings.append(finding(check, str(path), _error_text(e, path), None))
        return None
    mode = _mode(path)
    if key is None:
        if mode is not None and (loose := private_file_mode(check, str(path), mode)) is not None:
            findings.append(loose)
        return None
    findings.append(finding(check, str(path), None, mode))
    return key


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def _error_text(error: Exception, path: Path) -> str:
    if isinstance(error, FileNotFoundError):
        return f"{path}: missing"
    if isinstance(error, OSError):
        return f"{path}: {error.strerror or error}"
    return str(error)


# --- network: the registry, partners, the hub -------------------------------------------------


async def _registry(
    config: NodeConfig, url: str, files: _Files, clock: Clock, timeout: float
) -> list[Finding]:
    assert files.anchor is not None
    data, date, error = b"", None, None
    try:
        async with asyncio.timeout(max(timeout, REGISTRY_TIMEOUT)):
            data, date, error = await _fetch(url)
    except TimeoutError:
        error = f"{url} did not answer within {max(timeout, REGISTRY_TIMEOUT):g} s"
    except (aiohttp.ClientError, OSError) as e:
        error = f"{url}: {type(e).__name__}: {e}".rstrip(": ")
    now = clock.now()
    findings = []
    fetched, refused = None, None
    if error is None:
        # A fresh copy of the node's trust, updated in memory only: the same rules as the
        # node, without touching its cache.
        try:
            trusted = load(config.path(DIRECTORY_CACHE), files.anchor)
        except (DirectoryError, OSError):
            trusted = TrustedDirectory(files.anchor)
        try:
            fetched = trusted.update(data, now)
        except DirectoryError as e:
            refused = str(e)
    findings.append(registry_answer(url, files.directory, fetched, error, refused))
    if date is not None or error is None:
        findings.append(clock_skew(date, now))
    return findings


async def _fetch(url: str) -> tuple[bytes, datetime | None, str | None]:
    """The body, the answer's Date, and why the body is not a directory (None: it may be)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Accept": "application/json"}) as response,
    ):
        date = _http_date(response.headers.get("Date"))
        if response.status != 200:
            return b"", date, f"{url} answered HTTP {response.status}"
        chunks, size = [], 0
        while chunk := await response.content.read(64 * 1024):
            size += len(chunk)
            if size > DEFAULT_MAX_BYTES:
                return b"", date, f"{url} sent more than {DEFAULT_MAX_BYTES} bytes"
            chunks.append(chunk)
        return b"".join(chunks), date, None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return date if date.tzinfo is not None else None


async def _connect(target: Target, tls: TlsIdentity, timeout: float) -> list[Finding]:
    if not target.pins:
        return [no_pin(target)]
    try:
        context = pinned_context(target.pins, tls.certificate, tls.key, tls.password)
    except ConfigError as e:
        return [problem(target.check, str(e), "see the TLS key and certificate checks above")]
    outcome, reason = await _probe(target, context, timeout)
    return [connection(target, outcome, reason)]


async def _probe(target: Target, context: ssl.SSLContext, timeout: float) -> tuple[Outcome, str]:
    """Connect over TLS pinned to the target's pins, ask for one HTTP answer.

    Any HTTP status line means the partner's key is the listed one and it accepted our
    client certificate (with TLS 1.3 a refusal of our certificate arrives only after
    the handshake, as an alert instead of an answer).
    """
    handshake_done = False
    writer: asyncio.StreamWriter | None = None
    url = urlsplit(target.endpoint)
    path = url.path.rstrip("/") + ("/" if target.is_hub else HEALTH_PATH)
    request = (f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n").encode(
        "ascii", "replace"
    )
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                target.host,
                target.port,
                ssl=context,
                ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=timeout,
            )
            handshake_done = True
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
    except ssl.SSLCertVerificationError as e:
        return "pin mismatch", _reason(e)
    except TimeoutError:
        if handshake_done:
            return "unreachable", f"TLS connected, but no answer came within {timeout:g} s"
        return "unreachable", f"no TLS connection within {timeout:g} s"
    except (ssl.SSLError, ConnectionError) as e:
        if handshake_done:
            return "refused us", _reason(e)
        if isinstance(e, ssl.SSLError):
            return "tls failed", _reason(e)
        return "unreachable", _reason(e)
    except OSError as e:
        return "unreachable", _reason(e)
    finally:
        if writer is not None:
            await _close(writer, timeout)
    if line.startswith(b"HTTP/"):
        return "reachable", line.decode("ascii", "replace").strip()
    return "refused us", "the connection was closed without an answer"


async def _close(writer: asyncio.StreamWriter, timeout: float) -> None:
    writer.close()
    try:
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()


def _reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(error, ssl.SSLError) and not isinstance(error, ssl.SSLCertVerificationError):
        return error.reason or str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return error.strerror or str(error) or type(error).__name__
