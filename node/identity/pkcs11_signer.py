"""The node's Ed25519 signing key in a PKCS#11 token (an HSM, a smart card, SoftHSM2).

`open_token_key` logs in to the token named in `[keys.signing_pkcs11]` and returns a
`TokenSigningKey`: an `Ed25519PrivateKey` whose `sign` asks the token (CKM_EDDSA) and whose
private bytes cannot be had. It is the seam: everything that signs (envelopes, receipts,
responses, rotation and endpoint-change requests) is written against cryptography's
`Ed25519PrivateKey` interface, `sign(data) -> bytes` and `public_key()`, so a token key
goes wherever a key file's key went, with no change to the callers.

python-pkcs11 is an optional dependency (the `hsm` extra): it is imported only here, and
only when node.toml names a token. Its errors are translated once, here, into
TokenKeyError (a ConfigError at start, an EphytoError when a signature fails later).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    KeySerializationEncryption,
    PrivateFormat,
)
from cryptography.utils import Buffer

from node.errors import ConfigError
from node.identity.passphrase import read_secret
from node.identity.protection import Pkcs11KeyRef

if TYPE_CHECKING:
    import pkcs11

# Signed at log-in and verified with the public key object: a public key stored under the
# label that is not the private key's would otherwise sign envelopes nobody can verify.
_PROBE = b"ephyto: does the token's key pair match?"
_ED25519_POINT_DER = b"\x04\x20"  # an OCTET STRING of 32 bytes: how tokens give CKA_EC_POINT


class TokenKeyError(ConfigError):
    """The token, its PIN or the key in it cannot be used; the message says which."""


class TokenSigningKey(Ed25519PrivateKey):
    """An Ed25519 key that lives in a PKCS#11 token: it signs there and never leaves it.

    One session, kept open while the node runs; a lock serialises signatures because a
    PKCS#11 session does one operation at a time.
    """

    def __init__(self, session: pkcs11.Session, key: pkcs11.SignMixin, public: bytes, name: str):
        self._session, self._key, self._name = session, key, name
        self._public = Ed25519PublicKey.from_public_bytes(public)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """`token "LABEL" key "LABEL"`, for messages."""
        return self._name

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, data: Buffer) -> bytes:
        """The token's Ed25519 signature of `data`; TokenKeyError when the token fails
        (removed, logged out): the caller's attempt fails as any I/O failure does."""
        import pkcs11

        try:
            with self._lock:
                signature = self._key.sign(bytes(data), mechanism=pkcs11.Mechanism.EDDSA)
        except pkcs11.PKCS11Error as e:
            raise TokenKeyError(
                f"{self._name}: the token did not sign: {token_error_text(e)}"
            ) from None
        return bytes(signature)

    def private_bytes(
        self,
        encoding: Encoding,
        format: PrivateFormat,
        encryption_algorithm: KeySerializationEncryption,
    ) -> bytes:
        self._refuse_export()

    def private_bytes_raw(self) -> bytes:
        self._refuse_export()

    def __copy__(self) -> TokenSigningKey:
        return self  # one key in one token: a copy is the same key

    def __deepcopy__(self, memo: dict[int, Any]) -> TokenSigningKey:
        return self

    def _refuse_export(self) -> NoReturn:
        raise TokenKeyError(f"{self._name}: the signing key is in a token and never leaves it")


def open_token_key(
    ref: Pkcs11KeyRef, *, base: Path, environ: Mapping[str, str] | None = None
) -> TokenSigningKey:
    """Log in to the token `ref` names (the PIN read from its source, relative files from
    `base`) and find its Ed25519 key pair by label.

    TokenKeyError when python-pkcs11 is not installed, the module does not load, the
    token, the PIN or the key is wrong, or the key pair does not sign and verify.
    """
    try:
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
    except ImportError:
        raise TokenKeyError(
            "node.toml names [keys.signing_pkcs11] but python-pkcs11 is not installed:"
            " pip install 'ephyto-exchange[hsm]'"
        ) from None
    name = f'PKCS#11 token "{ref.token}" key "{ref.key_label}"'
    pin = read_secret(ref.pin, prefix="pin", base=base, environ=environ)
    try:
        library = pkcs11.lib(ref.module)
    except pkcs11.PKCS11Error as e:
        raise TokenKeyError(
            f"{name}: cannot load the module {ref.module}: {token_error_text(e)}"
        ) from None
    try:
        token = library.get_token(token_label=ref.token)
        session = _log_in(token, pin.decode("utf-8", "surrogateescape"))
        private = session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC_EDWARDS, label=ref.key_label
        )
        public = session.get_key(
            object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC_EDWARDS, label=ref.key_label
        )
        point = public[Attribute.EC_POINT]
    except pkcs11.NoSuchToken:
        raise TokenKeyError(f"{name}: no token with that label in {ref.module}") from None
    except pkcs11.NoSuchKey:
        raise TokenKeyError(
            f"{name}: the token holds no Ed25519 private and public key with that label"
        ) from None
    except pkcs11.MultipleTokensReturned:
        raise TokenKeyError(f"{name}: more than one token has that label") from None
    except pkcs11.MultipleObjectsReturned:
        raise TokenKeyError(f"{name}: more than one key of a kind has that label") from None
    except pkcs11.PKCS11Error as e:
        raise TokenKeyError(f"{name}: {token_error_text(e)}") from None
    signer = cast("pkcs11.SignMixin", private)  # a private key object signs
    key = TokenSigningKey(session, signer, _raw_point(bytes(point), name), name)
    try:
        key.public_key().verify(key.sign(_PROBE), _PROBE)
    except InvalidSignature:
        raise TokenKeyError(
            f"{name}: the private and public key with that label are not one key pair"
        ) from None
    return key


def _log_in(token: pkcs11.Token, pin: str) -> pkcs11.Session:
    """A session logged in as the user. PKCS#11 logs in a process once per token: a second
    key from the same token (after a reload) shares that login, and needs no PIN."""
    import pkcs11

    try:
        return token.open(user_pin=pin)
    except pkcs11.UserAlreadyLoggedIn:
        return token.open()


def _raw_point(point: bytes, name: str) -> bytes:
    """The 32 bytes of an Ed25519 CKA_EC_POINT: DER-wrapped by most tokens, raw by some."""
    if len(point) == 34 and point.startswith(_ED25519_POINT_DER):
        point = point[2:]
    if len(point) == 32:
        try:
            Ed25519PublicKey.from_public_bytes(point)
        except ValueError:
            pass
        else:
            return point
    raise TokenKeyError(f"{name}: the public key is not an Ed25519 point (a key of another curve?)")


def token_error_text(error: Exception) -> str:
    """A PKCS#11 error as one line: its message, or what its name (PinIncorrect...) says."""
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    name = type(error).__name__
    return f"{_SAID.get(name, 'the token refused')} ({name})"


_SAID = {
    "PinIncorrect": "the PIN is wrong",
    "PinLocked": "the PIN is locked (too many wrong PINs): the token's officer must unlock it",
    "PinExpired": "the PIN has expired: set a new one",
    "PinLenRange": "the PIN is too short or too long for this token",
    "TokenNotPresent": "the token is not present",
    "DeviceRemoved": "the token was removed",
    "UserPinNotInitialized": "the token's user PIN was never set",
}
