"""The directory's content: NPPOs, their keys and endpoints, the hub, the maintainers.

Pure: values in, values or a DirectoryError out. `Directory.from_plain` is the one
strict parser (every field, type and shape; docs/protocol.md, Part C); a model
built by hand is checked by parsing its `to_plain()` before it is signed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeVar, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node.codelists.lists import version_key
from node.crypto.canonical import canonical_bytes
from node.crypto.ids import tls_pin
from node.directory.errors import (
    KeyNotValid,
    MalformedDirectory,
    NppoNotActive,
    UnknownKey,
    UnknownNppo,
)
from node.directory.fields import (
    _COUNTRY_RE,
    _NAME_RE,
    _PIN_RE,
    _SCHEMA_RE,
    _aware,
    _b64d,
    _b64e,
    _int,
    _items,
    _keyid,
    _list,
    _name,
    _obj,
    _shown,
    _str,
    _time,
    _time_text,
    _unique,
    _url,
    _validity,
    load_canonical_json,
)
from node.errors import InputError

FORMAT: Final = 1
Status = Literal["active", "suspended", "revoked"]
KeyKind = Literal["signing", "encryption"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MaintainerKey:
    """One registry maintainer's Ed25519 key, which signs the directory."""

    name: str
    key_id: str
    public_key: bytes

    def ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)


@dataclass(frozen=True, slots=True)
class MaintainerSet:
    """The maintainers' keys and how many distinct ones must sign (the threshold)."""

    threshold: int
    keys: tuple[MaintainerKey, ...]

    def key(self, key_id_: str) -> MaintainerKey | None:
        return next((k for k in self.keys if k.key_id == key_id_), None)

    @classmethod
    def from_plain(cls, value: object, path: str = "maintainers") -> MaintainerSet:
        """Parse `{"threshold", "keys"}` (also an operator's trust anchor); MalformedDirectory."""
        doc = _obj(value, path, {"threshold", "keys"})
        keys = tuple(
            _maintainer_key(item, f"{path}.keys[{i}]")
            for i, item in enumerate(_list(doc["keys"], f"{path}.keys"))
        )
        _unique([k.key_id for k in keys], f"{path}.keys", "key id")
        threshold = _int(doc["threshold"], f"{path}.threshold", 1, 255)
        if threshold > len(keys):
            raise MalformedDirectory(f"{path}.threshold: {threshold} is more than {len(keys)} keys")
        return cls(threshold, keys)

    def to_plain(self) -> dict[str, Any]:
        keys = [
            {"name": k.name, "keyid": k.key_id, "public_key": _b64e(k.public_key)}
            for k in self.keys
        ]
        return {"threshold": self.threshold, "keys": keys}


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """An NPPO's signing (Ed25519) or encryption (X25519) public key and its validity."""

    kind: KeyKind
    public_key: bytes
    key_id: str
    valid_from: datetime
    valid_until: datetime

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= _aware(at) < self.valid_until

    def ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def x25519(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.public_key)


@dataclass(frozen=True, slots=True)
class TlsPin:
    """A TLS certificate pin (`sha256:<hex>` of the SPKI), its validity, and the certificate.

    The pin is the authority. The certificate (PEM) is there because a TLS server can
    only accept a self-signed client certificate it holds as a trust anchor: Python's
    ssl has no "request any certificate" mode, so nodes load these as anchors and then
    check the pin. Its SPKI must hash to the pin.
    """

    pin: str
    valid_from: datetime
    valid_until: datetime
    certificate: bytes | None = None

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= _aware(at) < self.valid_until


_Windowed = TypeVar("_Windowed", KeyEntry, TlsPin)


def switch_time(new: KeyEntry | TlsPin, old: KeyEntry | TlsPin) -> datetime:
    """Halfway through the overlap of `old` and its successor `new`: when the successor
    takes over (docs/protocol.md, Part B, "Which key is in use during the overlap")."""
    return new.valid_from + (old.valid_until - new.valid_from) / 2


def in_use(entries: Iterable[_Windowed], at: datetime) -> _Windowed | None:
    """Of `entries` (one kind of key, or TLS pins, of one NPPO) valid at `at`, the one in
    use: the newest, once halfway through its overlap with the one before; that one
    until then. None when none is valid.

    Why not the newest at once: each node refreshes its directory on its own schedule, so
    when a rotation is published some partners know the new key and some do not yet, and
    the rotating node itself may not hold it yet. Using the old key through the first half
    of the overlap gives every party half the overlap to refresh; the old key stays valid
    to the end, so a party that switches late is still understood.
    """
    valid = sorted((e for e in entries if e.valid_at(at)), key=lambda e: e.valid_from)
    if not valid:
        return None
    newest = valid[-1]
    if len(valid) > 1 and _aware(at) < switch_time(newest, valid[-2]):
        return valid[-2]
    return newest


@dataclass(frozen=True, slots=True)
class NppoEntry:
    """One NPPO: who it is, whether it is trusted, how to reach it, its keys."""

    country: str
    name: str
    status: Status
    endpoint: str | None  # None: hub only
    keys: tuple[KeyEntry, ...]
    tls_pins: tuple[TlsPin, ...]
    schema_versions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HubEntry:
    """The hub every NPPO can reach and relay through."""

    name: str
    endpoint: str
    tls_pins: tuple[TlsPin, ...]


@dataclass(frozen=True, slots=True)
class CodeListFile:
    """Where a node checks a code list it fetches: the file's SHA-256 and length.

    The version is the directory's `code_lists` entry of the same name; the registry
    serves the file at /codelists/<name>/<version>.json (docs/protocol.md, Part F).
    """

    name: str
    sha256: str  # lowercase hex
    length: int


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """An SPSCertificate schema version the network accepts, and its transition dates.

    In force from `valid_from`; retired at `valid_until` (None: no end announced).
    """

    version: str
    valid_from: datetime
    valid_until: datetime | None

    def in_force(self, at: datetime) -> bool:
        return self.valid_from <= _aware(at) and (
            self.valid_until is None or _aware(at) < self.valid_until
        )


@dataclass(frozen=True, slots=True)
class Directory:
    """The content of one directory version (the "signed" part); lookups refuse untrusted peers.

    Lookups do not look at the directory's own expiry: TrustedDirectory.usable does.
    """

    version: int
    issued: datetime
    expires: datetime
    maintainers: MaintainerSet
    nppos: tuple[NppoEntry, ...]  # ascending country
    hub: HubEntry | None
    code_lists: tuple[tuple[str, str], ...]  # (name, version), ascending name
    format: int = FORMAT
    # The optional members (docs/protocol.md, Part C): absent from the wire when empty.
    timestamp_keys: MaintainerSet | None = None  # who signs timestamp.json; None: no role
    code_list_files: tuple[CodeListFile, ...] = ()  # ascending name, each in code_lists
    schemas: tuple[SchemaVersion, ...] = ()  # network-wide; () sets no constraint

    def nppo(self, country: str) -> NppoEntry:
        """The entry for `country`; UnknownNppo."""
        for entry in self.nppos:
            if entry.country == country:
                return entry
        raise UnknownNppo(f"no NPPO {country!r} in directory version {self.version}")

    def active_nppo(self, country: str) -> NppoEntry:
        """The entry for `country` if it is active; UnknownNppo, NppoNotActive."""
        entry = self.nppo(country)
        if entry.status != "active":
            raise NppoNotActive(
                f"NPPO {country} is {entry.status} in directory version {self.version}"
            )
        return entry

    def signing_key(self, country: str, key_id_: str, at: datetime) -> Ed25519PublicKey:
        """The Ed25519 key `key_id_` of active `country`, valid at `at`; UntrustedPeer."""
        entry = self.active_nppo(country)
        key = next((k for k in entry.keys if k.kind == "signing" and k.key_id == key_id_), None)
        if key is None:
            raise UnknownKey(f"NPPO {country} has no signing key {key_id_!r}")
        if not key.valid_at(at):
            raise KeyNotValid(
                f"NPPO {country} signing key {key_id_} is valid from {_time_text(key.valid_from)}"
                f" until {_time_text(key.valid_until)}, not at {_shown(at)}"
            )
        return key.ed25519()

    def encryption_key(self, country: str, at: datetime) -> KeyEntry:
        """The X25519 key of active `country` to seal to at `at` (`in_use`: during a
        rotation the old key until halfway through the overlap, then the new one, so the
        old one can retire); UntrustedPeer."""
        entry = self.active_nppo(country)
        key = in_use((k for k in entry.keys if k.kind == "encryption"), at)
        if key is None:
            raise KeyNotValid(f"NPPO {country} has no encryption key valid at {_shown(at)}")
        return key

    def tls_pins(self, country: str, at: datetime) -> frozenset[str]:
        """The TLS pins of active `country` valid at `at` (at least one); UntrustedPeer."""
        pins = frozenset(p.pin for p in self.active_nppo(country).tls_pins if p.valid_at(at))
        if not pins:
            raise KeyNotValid(f"NPPO {country} has no TLS pin valid at {_shown(at)}")
        return pins

    def nppo_for_tls_pin(self, pin: str, at: datetime) -> NppoEntry:
        """The active NPPO whose TLS pin valid at `at` is `pin` (a TLS client); UntrustedPeer."""
        for entry in self.nppos:
            if any(p.pin == pin and p.valid_at(at) for p in entry.tls_pins):
                if entry.status != "active":
                    raise NppoNotActive(f"NPPO {entry.country} is {entry.status}")
                return entry
        raise UnknownKey(f"no NPPO has TLS pin {pin!r} valid at {_shown(at)}")

    def tls_certificates(self, at: datetime) -> tuple[bytes, ...]:
        """PEM certificates of active NPPOs and the hub whose pins are valid at `at`.

        These become the TLS trust anchors of a node's exchange endpoint; the handler
        still checks the pin, so this only widens who may complete a handshake.
        """
        pins = [p for n in self.nppos if n.status == "active" for p in n.tls_pins]
        if self.hub is not None:
            pins += self.hub.tls_pins
        return tuple(p.certificate for p in pins if p.certificate and p.valid_at(at))

    def hub_tls_pins(self, at: datetime) -> frozenset[str]:
        """The hub's TLS pins valid at `at`; UntrustedPeer when there is no hub or no pin."""
        pins = frozenset(p.pin for p in self.hub.tls_pins if p.valid_at(at)) if self.hub else None
        if not pins:
            raise KeyNotValid(f"directory version {self.version} has no hub TLS pin valid then")
        return pins

    def code_list_versions(self) -> dict[str, str]:
        return dict(self.code_lists)

    @classmethod
    def from_signed_bytes(cls, data: bytes) -> Directory:
        """Parse the exact bytes of "signed"; MalformedDirectory, also when not canonical."""
        value = load_canonical_json(data, '"signed"')
        return cls.from_plain(value)

    @classmethod
    def from_plain(cls, value: object) -> Directory:
        """Parse the "signed" object strictly; MalformedDirectory naming the field."""
        p = "signed"
        present = set(value) & _OPTIONAL_FIELDS if isinstance(value, dict) else set()
        doc = _obj(value, p, set(_DIRECTORY_FIELDS) | present)
        fmt = _int(doc["format"], f"{p}.format", 0, 2**31)
        if fmt != FORMAT:
            raise MalformedDirectory(f"{p}.format: {fmt} is not the supported format {FORMAT}")
        issued, expires = _time(doc["issued"], f"{p}.issued"), _time(doc["expires"], f"{p}.expires")
        if expires <= issued:
            raise MalformedDirectory(f"{p}.expires: not after issued")
        nppos = _items(doc["nppos"], f"{p}.nppos", _nppo)
        countries = [n.country for n in nppos]
        _unique(countries, f"{p}.nppos", "country")
        if countries != sorted(countries):
            raise MalformedDirectory(f"{p}.nppos: not in ascending country order")
        # A TLS client is identified by its pin: one pin must name one NPPO.
        _unique([t.pin for n in nppos for t in n.tls_pins], f"{p}.nppos", "TLS pin")
        hub = None if doc["hub"] is None else _hub(doc["hub"], f"{p}.hub")
        code_lists = _obj(doc["code_lists"], f"{p}.code_lists", set(), any_keys=True)
        timestamp_keys = None
        if "timestamp_keys" in doc:
            timestamp_keys = MaintainerSet.from_plain(doc["timestamp_keys"], f"{p}.timestamp_keys")
        for name, version in code_lists.items():
            if not _NAME_RE.fullmatch(name):
                raise MalformedDirectory(f"{p}.code_lists: {name!r} is not a code list name")
            try:
                version_key(_str(version, f"{p}.code_lists.{name}", 32))
            except InputError as exc:
                raise MalformedDirectory(f"{p}.code_lists.{name}: {exc}") from None
        return cls(
            version=_int(doc["version"], f"{p}.version", 1, 2**63 - 1),
            issued=issued,
            expires=expires,
            maintainers=MaintainerSet.from_plain(doc["maintainers"], f"{p}.maintainers"),
            nppos=nppos,
            hub=hub,
            code_lists=tuple(sorted(code_lists.items())),
            format=fmt,
            timestamp_keys=timestamp_keys,
            code_list_files=_code_list_files(doc, p, set(code_lists)),
            schemas=_schemas(doc, p),
        )

    def to_plain(self) -> dict[str, Any]:
        hub = self.hub
        return {
            "format": self.format,
            "version": self.version,
            "issued": _time_text(self.issued),
            "expires": _time_text(self.expires),
            "maintainers": self.maintainers.to_plain(),
            "nppos": [_nppo_plain(n) for n in self.nppos],
            "hub": None
            if hub is None
            else {
                "name": hub.name,
                "endpoint": hub.endpoint,
                "tls_pins": _pins_plain(hub.tls_pins),
            },
            "code_lists": dict(self.code_lists),
        } | self._optional_plain()

    def _optional_plain(self) -> dict[str, Any]:
        optional: dict[str, Any] = {}
        if self.timestamp_keys is not None:
            optional["timestamp_keys"] = self.timestamp_keys.to_plain()
        if self.code_list_files:
            optional["code_list_files"] = {
                f.name: {"sha256": f.sha256, "length": f.length} for f in self.code_list_files
            }
        if self.schemas:
            optional["schemas"] = [
                {
                    "version": s.version,
                    "valid_from": _time_text(s.valid_from),
                    "valid_until": None if s.valid_until is None else _time_text(s.valid_until),
                }
                for s in self.schemas
            ]
        return optional

    def to_signed_bytes(self) -> bytes:
        """The canonical bytes of "signed" (what the maintainers sign)."""
        return canonical_bytes(self.to_plain())


_DIRECTORY_FIELDS: Final = (
    "format", "version", "issued", "expires", "maintainers", "nppos", "hub", "code_lists"
)  # fmt: skip
# Optional: a directory without them is still format 1 (and the test vector has none).
# When present they must not be empty, so each content has one byte form.
_OPTIONAL_FIELDS: Final = frozenset({"timestamp_keys", "code_list_files", "schemas"})
# A code list file is at most node.codelists.lists.MAX_BYTES; this bound only stops nonsense.
_MAX_CODE_LIST_LENGTH: Final = 16 * 1024 * 1024
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_NPPO_FIELDS: Final = frozenset(
    {"country", "name", "status", "endpoint", "keys", "tls_pins", "schema_versions"}
)
_KEY_FIELDS: Final = frozenset({"kind", "keyid", "public_key", "valid_from", "valid_until"})
_STATUSES: Final = ("active", "suspended", "revoked")
_KINDS: Final = ("signing", "encryption")


def _maintainer_key(value: object, path: str) -> MaintainerKey:
    doc = _obj(value, path, {"name", "keyid", "public_key"})
    public_key = _b64d(doc["public_key"], f"{path}.public_key", 32)
    return MaintainerKey(
        _name(doc["name"], f"{path}.name"), _keyid(doc, path, public_key), public_key
    )


def _nppo(value: object, path: str) -> NppoEntry:
    doc = _obj(value, path, set(_NPPO_FIELDS))
    country = _str(doc["country"], f"{path}.country", 2)
    if not _COUNTRY_RE.fullmatch(country):
        raise MalformedDirectory(f"{path}.country: {country!r} is not an ISO 3166-1 alpha-2 code")
    status = _str(doc["status"], f"{path}.status", 16)
    if status not in _STATUSES:
        raise MalformedDirectory(f"{path}.status: {status!r} is not one of {', '.join(_STATUSES)}")
    endpoint = None if doc["endpoint"] is None else _url(doc["endpoint"], f"{path}.endpoint")
    keys = _items(doc["keys"], f"{path}.keys", _key)
    _unique([k.key_id for k in keys], f"{path}.keys", "key id")
    pins = _items(doc["tls_pins"], f"{path}.tls_pins", _pin)
    if endpoint is not None and not pins:
        raise MalformedDirectory(f"{path}.tls_pins: a direct endpoint needs at least one pin")
    schemas = _items(doc["schema_versions"], f"{path}.schema_versions", _schema)
    _unique(list(schemas), f"{path}.schema_versions", "version")
    name = _name(doc["name"], f"{path}.name")
    return NppoEntry(country, name, cast(Status, status), endpoint, keys, pins, schemas)


def _key(value: object, path: str) -> KeyEntry:
    doc = _obj(value, path, set(_KEY_FIELDS))
    kind = _str(doc["kind"], f"{path}.kind", 16)
    if kind not in _KINDS:
        raise MalformedDirectory(f"{path}.kind: {kind!r} is not one of {', '.join(_KINDS)}")
    public_key = _b64d(doc["public_key"], f"{path}.public_key", 32)
    valid_from, valid_until = _validity(doc, path)
    return KeyEntry(
        cast(KeyKind, kind), public_key, _keyid(doc, path, public_key), valid_from, valid_until
    )


def _pin(value: object, path: str) -> TlsPin:
    fields = {"pin", "valid_from", "valid_until"}
    if isinstance(value, dict) and "certificate" in value:
        fields.add("certificate")
    doc = _obj(value, path, fields)
    pin = _str(doc["pin"], f"{path}.pin", 71)
    if not _PIN_RE.fullmatch(pin):
        raise MalformedDirectory(f"{path}.pin: {pin!r} is not 'sha256:' and 64 lowercase hex")
    certificate = None
    if "certificate" in doc:
        certificate = _certificate(doc["certificate"], f"{path}.certificate", pin)
    return TlsPin(pin, *_validity(doc, path), certificate=certificate)


def _certificate(value: object, path: str, pin: str) -> bytes:
    """A PEM certificate whose SPKI hashes to `pin`."""
    text = _str(value, path, 8192)
    try:
        certificate = x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise MalformedDirectory(f"{path}: not a PEM X.509 certificate") from None
    if tls_pin(certificate) != pin:
        raise MalformedDirectory(f"{path}: the certificate does not match pin {pin}")
    return text.encode("ascii")


def _hub(value: object, path: str) -> HubEntry:
    doc = _obj(value, path, {"name", "endpoint", "tls_pins"})
    pins = _items(doc["tls_pins"], f"{path}.tls_pins", _pin)
    if not pins:
        raise MalformedDirectory(f"{path}.tls_pins: the hub needs at least one pin")
    return HubEntry(
        _name(doc["name"], f"{path}.name"), _url(doc["endpoint"], f"{path}.endpoint"), pins
    )


def _schema(value: object, path: str) -> str:
    text = _str(value, path, 32)
    if not _SCHEMA_RE.fullmatch(text):
        raise MalformedDirectory(f"{path}: {text!r} is not a schema version")
    return text


def _code_list_files(doc: dict[str, Any], p: str, names: set[str]) -> tuple[CodeListFile, ...]:
    if "code_list_files" not in doc:
        return ()
    path = f"{p}.code_list_files"
    files = _obj(doc["code_list_files"], path, set(), any_keys=True)
    if not files:
        raise MalformedDirectory(f"{path}: empty (omit the member instead)")
    parsed = []
    for name, value in sorted(files.items()):
        if name not in names:
            raise MalformedDirectory(f"{path}: {name!r} has no version in {p}.code_lists")
        entry = _obj(value, f"{path}.{name}", {"sha256", "length"})
        digest = _str(entry["sha256"], f"{path}.{name}.sha256", 64)
        if not _SHA256_RE.fullmatch(digest):
            raise MalformedDirectory(f"{path}.{name}.sha256: not 64 lowercase hex digits")
        length = _int(entry["length"], f"{path}.{name}.length", 1, _MAX_CODE_LIST_LENGTH)
        parsed.append(CodeListFile(name, digest, length))
    return tuple(parsed)


def _schemas(doc: dict[str, Any], p: str) -> tuple[SchemaVersion, ...]:
    if "schemas" not in doc:
        return ()
    path = f"{p}.schemas"
    schemas = _items(doc["schemas"], path, _schema_version)
    if not schemas:
        raise MalformedDirectory(f"{path}: empty (omit the member instead)")
    _unique([s.version for s in schemas], path, "version")
    return schemas


def _schema_version(value: object, path: str) -> SchemaVersion:
    doc = _obj(value, path, {"version", "valid_from", "valid_until"})
    start = _time(doc["valid_from"], f"{path}.valid_from")
    end = None if doc["valid_until"] is None else _time(doc["valid_until"], f"{path}.valid_until")
    if end is not None and end <= start:
        raise MalformedDirectory(f"{path}.valid_until: not after valid_from")
    return SchemaVersion(_schema(doc["version"], f"{path}.version"), start, end)


def _nppo_plain(n: NppoEntry) -> dict[str, Any]:
    keys = [
        {
            "kind": k.kind,
            "keyid": k.key_id,
            "public_key": _b64e(k.public_key),
            "valid_from": _time_text(k.valid_from),
            "valid_until": _time_text(k.valid_until),
        }
        for k in n.keys
    ]
    return {
        "country": n.country,
        "name": n.name,
        "status": n.status,
        "endpoint": n.endpoint,
        "keys": keys,
        "tls_pins": _pins_plain(n.tls_pins),
        "schema_versions": list(n.schema_versions),
    }


def _pins_plain(pins: Iterable[TlsPin]) -> list[dict[str, str]]:
    return [
        {
            "pin": p.pin,
            "valid_from": _time_text(p.valid_from),
            "valid_until": _time_text(p.valid_until),
        }
        | ({} if p.certificate is None else {"certificate": p.certificate.decode("ascii")})
        for p in pins
    ]
