"""Namespaces and SOAP actions of the IPPC Hub `DeliveryService` contract (SOAP 1.1)."""

from __future__ import annotations

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TNS = "http://ephyto.ippc.int/"
HUB = "http://ephyto.ippc.int/HUB.Entities"
UNQUALIFIED = ""
SPS_CERTIFICATE = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
SPS_ACKNOWLEDGEMENT = "urn:un:unece:uncefact:data:standard:SPSAcknowledgement:17"

SERVICE_PATH = "/hub/DeliveryService"
"""Where the service is on a hub's host: the IPPC Hub's path, and ours, so that a hub
listed in the directory by its `https://host:port` is reached the same way."""

CONTENT_TYPE = "text/xml; charset=utf-8"
"""The HTTP Content-Type of every SOAP 1.1 message, request, response or fault."""

_ACTION_BASE = "http://ephyto.ippc.int/IDeliveryService/"
# The binding gives this one operation the action of an older name; clients built from
# the WSDL send it, so ours must too.
_ACTION_EXCEPTIONS = {"AdvancedAcknowledgeEnvelopeReceipt": "NegativeAcknowledgeEnvelopeReceipt"}


def soap_action(operation: str) -> str:
    """The SOAPAction URI the WSDL's binding gives `operation`, bare: the HTTP header
    carries it in double quotes (SOAP 1.1 section 6.1.1)."""
    return _ACTION_BASE + _ACTION_EXCEPTIONS.get(operation, operation)
