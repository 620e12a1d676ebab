"""The UN/CEFACT D17A namespaces of an ePhyto SPSCertificate."""

from typing import Final

RSM: Final = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM: Final = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
UDT: Final = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"
QDT: Final = "urn:un:unece:uncefact:data:standard:QualifiedDataType:21"

NSMAP: Final[dict[str, str]] = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
PREFIX_BY_NAMESPACE: Final[dict[str, str]] = {v: k for k, v in NSMAP.items()}

ROOT_TAG: Final = f"{{{RSM}}}SPSCertificate"


def ram(local: str) -> str:
    """Clark name of a ram: element."""
    return f"{{{RAM}}}{local}"


def udt(local: str) -> str:
    """Clark name of a udt: element."""
    return f"{{{UDT}}}{local}"


def rsm(local: str) -> str:
    """Clark name of a rsm: element."""
    return f"{{{RSM}}}{local}"
