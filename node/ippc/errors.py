"""Errors of the SOAP layer, split by what the caller does next."""

from __future__ import annotations

from enum import StrEnum

from node.errors import EphytoError, InputError


class FaultCode(StrEnum):
    """The SOAP 1.1 fault codes (SOAP 1.1 section 4.4.1), local names in the envelope namespace."""

    VERSION_MISMATCH = "VersionMismatch"
    MUST_UNDERSTAND = "MustUnderstand"
    CLIENT = "Client"
    SERVER = "Server"


class SoapError(InputError):
    """The bytes are not an acceptable message of the contract; nothing of them was used.

    `fault_code` is what a server answers with: Client for a bad request, VersionMismatch
    for a SOAP 1.2 envelope, MustUnderstand for a header we cannot honour, Server when
    our own values cannot be rendered.
    """

    def __init__(self, fault_code: FaultCode, reason: str) -> None:
        super().__init__(" ".join(reason.split()))
        self.fault_code = fault_code

    @property
    def reason(self) -> str:
        return str(self)


class HubFault(EphytoError):
    """The hub answered with a SOAP Fault: the request was refused, as `message` says."""

    def __init__(self, fault_code: str, reason: str, message: str | None) -> None:
        super().__init__(message or reason)
        self.fault_code = fault_code
        self.reason = reason
        self.message = message
