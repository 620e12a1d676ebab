"""The directory's content: NPPOs, their keys and endpoints, the hub, the maintainers.

Pure: values in, values or a DirectoryError out. `Directory.from_plain` is the one
strict parser (every field, type and shape; docs/protocol.md, Part C); a model
built by hand is checked by parsing its `to_plain()` before it is signed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node.codelists.lists import version_key
from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import key_id, tls_pin
from node.errors import InputError

FORMAT: Final = 1
Status = Literal["active", "suspended", "revoked"]
KeyKind = Literal["signing", "encryption"]

_T = TypeVar("_T")


class DirectoryError(InputError):
    """A directory, or a peer judged by it, cannot be trusted; nothing was changed."""


class MalformedDirectory(DirectoryError):
    """The document is not a well-formed directory (JSON, canonical form, fields)."""


class TooLarge(MalformedDirectory):
    """The document is larger than the configured limit; it was not parsed."""


class BadSignature(DirectoryError):
    """The maintainers' signatures do not vouch for this document."""


class ThresholdNotMet(BadSignature):
    """Fewer distinct maintainers than the threshold signed the document."""


class RotationGap(ThresholdNotMet):
    """A new maintainer set the trusted one did not sign: walk the versions in between."""


class RollbackError(DirectoryError):
    """The version is older than the trusted one, or equal with different content."""


class ExpiredError(DirectoryError):
    """The directory is past its expiry: refresh it from the registry."""


class NoTrustedDirectory(DirectoryError):
    """No directory has been trusted yet: fetch one from the registry."""


class UntrustedPeer(DirectoryError):
    """The directory does not vouch for this NPPO or key now: refuse the peer."""


class UnknownNppo(UntrustedPeer):
    """No NPPO with this country code is in the directory."""


class NppoNotActive(UntrustedPeer):
    """The NPPO is suspended or revoked."""


class UnknownKey(UntrustedPeer):
    """The NPPO has no key with this id and kind."""


class KeyNotValid(UntrustedPeer):
    """The key, or every key of this kind, is outside its validity period at that time."""


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
        """The newest X25519 key of active `country` valid at `at`; UntrustedPeer."""
        entry = self.active_nppo(country)
        valid = [k for k in entry.keys if k.kind == "encryption" and k.valid_at(at)]
        if not valid:
            raise KeyNotValid(f"NPPO {country} has no encryption key valid at {_shown(at)}")
        # During a rotation two keys overlap: seal to the newer so the old one can retire.
        return max(valid, key=lambda k: (k.valid_from, k.key_id))

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
        doc = _obj(value, p, set(_DIRECTORY_FIELDS))
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
        }

    def to_signed_bytes(self) -> bytes:
        """The canonical bytes of "signed" (what the maintainers sign)."""
        return canonical_bytes(self.to_plain())


def load_canonical_json(data: bytes, what: str) -> Any:
    """Parse `data` as JSON that must be canonical; MalformedDirectory naming `what`."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
        encoded = canonical_bytes(value)
    except (ValueError, RecursionError, CanonicalJsonError) as exc:
        raise MalformedDirectory(f"{what} is not JSON that canonical form allows: {exc}") from None
    # Signatures cover bytes: one content must have one byte form, or "what was signed" is moot.
    if encoded != data:
        raise MalformedDirectory(f"{what} is not in canonical JSON form (sorted keys, no spaces)")
    return value


_DIRECTORY_FIELDS: Final = (
    "format", "version", "issued", "expires", "maintainers", "nppos", "hub", "code_lists"
)  # fmt: skip
_NPPO_FIELDS: Final = frozenset(
    {"country", "name", "status", "endpoint", "keys", "tls_pins", "schema_versions"}
)
_KEY_FIELDS: Final = frozenset({"kind", "keyid", "public_key", "valid_from", "valid_until"})
_STATUSES: Final = ("active", "suspended", "revoked")
_KINDS: Final = ("signing", "encryption")
_COUNTRY_RE: Final = re.compile(r"[A-Z]{2}")
_KEYID_RE: Final = re.compile(r"[0-9a-f]{32}")
_PIN_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SCHEMA_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# https only; a host name, IPv4 or [IPv6], an optional port and path; no user, query or
# fragment, so two nodes never read one endpoint differently.
_URL_RE: Final = re.compile(
    r"https://(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
)
_LABEL_RE: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


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


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate object key")
    return result


def _obj(value: object, path: str, fields: set[str], any_keys: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedDirectory(f"{path}: expected an object")
    if not any_keys:
        if missing := sorted(fields - value.keys()):
            raise MalformedDirectory(f"{path}: missing field {missing[0]!r}")
        if unknown := sorted(value.keys() - fields):
            raise MalformedDirectory(f"{path}: unknown field {unknown[0]!r}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedDirectory(f"{path}: expected an array")
    return value


def _items(value: object, path: str, parse: Callable[[object, str], _T]) -> tuple[_T, ...]:
    return tuple(parse(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path)))


def _unique(values: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise MalformedDirectory(f"{path}: duplicate {what} {value!r}")
        seen.add(value)


def _str(value: object, path: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise MalformedDirectory(f"{path}: expected a string")
    if not value or len(value) > max_len:
        raise MalformedDirectory(f"{path}: must be 1 to {max_len} characters")
    return value


def _name(value: object, path: str) -> str:
    text = _str(value, path, 256)
    # Names are shown to officers and in logs: no control characters, no padding.
    if text.strip() != text or any(unicodedata.category(c) == "Cc" for c in text):
        raise MalformedDirectory(f"{path}: control characters or surrounding spaces")
    return text


def _int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedDirectory(f"{path}: expected an integer")
    if not low <= value <= high:
        raise MalformedDirectory(f"{path}: {value} is outside {low}..{high}")
    return value


def _url(value: object, path: str) -> str:
    url = _str(value, path, 2048)
    match = _URL_RE.fullmatch(url)
    if match is None:
        raise MalformedDirectory(
            f"{path}: {url!r} is not an https URL without user, query or fragment"
        )
    host, port = match["host"], match["port"]
    if not host.startswith("[") and not all(_LABEL_RE.fullmatch(x) for x in host.split(".")):
        raise MalformedDirectory(f"{path}: {host!r} is not a host name")
    if port is not None and not 1 <= int(port) <= 65535:
        raise MalformedDirectory(f"{path}: port {port} is outside 1..65535")
    return url


def _time(value: object, path: str) -> datetime:
    text = _str(value, path, 64)
    try:
        if not _TIME_RE.fullmatch(text):
            raise ValueError
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise MalformedDirectory(f"{path}: {text!r} is not YYYY-MM-DDTHH:MM:SSZ (UTC)") from None


def _validity(doc: dict[str, Any], path: str) -> tuple[datetime, datetime]:
    start, end = (
        _time(doc["valid_from"], f"{path}.valid_from"),
        _time(doc["valid_until"], f"{path}.valid_until"),
    )
    if end <= start:
        raise MalformedDirectory(f"{path}.valid_until: not after valid_from")
    return start, end


def _keyid(doc: dict[str, Any], path: str, public_key: bytes) -> str:
    text = _str(doc["keyid"], f"{path}.keyid", 32)
    if not _KEYID_RE.fullmatch(text):
        raise MalformedDirectory(f"{path}.keyid: {text!r} is not 32 lowercase hex digits")
    if text != key_id(public_key):
        raise MalformedDirectory(f"{path}.keyid: {text} is not the key id of public_key")
    return text


def _b64d(value: object, path: str, size: int) -> bytes:
    text = _str(value, path, 4 * ((size + 2) // 3))
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    # Only the one padded standard form, so equal keys are equal strings.
    if len(raw) != size or _b64e(raw) != text:
        raise MalformedDirectory(f"{path}: not standard padded base64 of {size} bytes")
    return raw


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a naive datetime cannot be compared with directory times (UTC)")
    return at


def _time_text(at: datetime) -> str:
    if at.microsecond:
        # The wire form has whole seconds; dropping the rest would sign another time.
        raise ValueError(f"directory times are whole seconds, not {at.isoformat()}")
    return _shown(at)


def _shown(at: datetime) -> str:
    return _aware(at).astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
