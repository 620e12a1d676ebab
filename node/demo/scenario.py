"""What the demo sends (pure): the bundled samples, routed between the demo's countries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Certificate, Country, Text
from node.samples import sample_model_bytes

COUNTRIES = ("NL", "KE", "US")
# The full demo adds an NPPO without a direct endpoint: reachable through the hub only.
HUB_ONLY = "CL"
# A partner whose node is down when the first certificate is sent to it: it falls back.
LATE = "US"
NAMES = {
    "NL": "Netherlands Food and Consumer Product Safety Authority (NVWA)",
    "KE": "Kenya Plant Health Inspectorate Service (KEPHIS)",
    "US": "USDA Animal and Plant Health Inspection Service (APHIS)",
    "CL": "Servicio Agricola y Ganadero (SAG)",
}

Action = Literal["submit", "withdraw", "replace"]


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the demo asks a node's API to do."""

    action: Action
    sender: str
    certificate: Certificate | None = None
    target: str | None = None  # the certificate number a withdrawal or replacement acts on
    reason: str = ""


def routed(cert: Certificate, *, exporter: str, importer: str, number: str) -> Certificate:
    """`cert` as sent from `exporter` to `importer` under a new number."""
    consignment = replace(
        cert.consignment,
        export_country=Country(exporter),
        import_country=Country(importer),
    )
    return replace(cert, number=number, consignment=consignment)


def first_step() -> Step:
    """Sent while the LATE partner is down: direct fails, the hub takes it."""
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    return Step("submit", "NL", routed(phyto, exporter="NL", importer=LATE, number="NL-DEMO-0000"))


def hub_steps() -> list[Step]:
    """To and from the hub-only NPPO: inbound through the hub, outbound direct."""
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    return [
        Step(
            "submit", "KE", routed(phyto, exporter="KE", importer=HUB_ONLY, number="KE-DEMO-0100")
        ),
        Step(
            "submit",
            HUB_ONLY,
            routed(phyto, exporter=HUB_ONLY, importer="NL", number="CL-DEMO-0001"),
        ),
    ]


def steps() -> list[Step]:
    """Certificates among NL, KE and US, a re-export, a withdrawal and a replacement."""
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    reexport = certificate_from_json(sample_model_bytes("reexport"))
    # The re-export's origin note names the country the goods first came from.
    reexport_notes = tuple(
        replace(n, contents=(Text("KE"),)) if n.subject == "RPCCO" else n
        for n in reexport.consignment.items[0].notes
    )
    reexport = replace(
        reexport,
        consignment=replace(
            reexport.consignment,
            items=(replace(reexport.consignment.items[0], notes=reexport_notes),),
        ),
    )
    return [
        Step("submit", "NL", routed(phyto, exporter="NL", importer="KE", number="NL-DEMO-0001")),
        Step("submit", "KE", routed(phyto, exporter="KE", importer="US", number="KE-DEMO-0001")),
        Step("submit", "US", routed(reexport, exporter="US", importer="NL", number="US-DEMO-0001")),
        Step("submit", "NL", routed(phyto, exporter="NL", importer="US", number="NL-DEMO-0002")),
        Step("withdraw", "NL", target="NL-DEMO-0002"),
        Step(
            "submit",
            "KE",
            routed(phyto, exporter="KE", importer="NL", number="KE-DEMO-0002"),
        ),
        Step(
            "replace",
            "KE",
            routed(phyto, exporter="KE", importer="NL", number="KE-DEMO-0003"),
            target="KE-DEMO-0002",
            reason="Change in consignee",
        ),
    ]


@dataclass(frozen=True, slots=True)
class Answer:
    """The importer's answer to a certificate it received, sent back to its exporter."""

    importer: str
    exporter: str
    number: str
    decision: Literal["accepted", "rejected", "correction-requested"]
    reason: str | None = None  # with "rejected"
    text: str | None = None  # with "correction-requested"

    def body(self) -> dict[str, str]:
        """The request body of the importer's response API (docs/openapi.yaml)."""
        extra = {"reason": self.reason, "text": self.text}
        return {"decision": self.decision} | {k: v for k, v in extra.items() if v is not None}


# Between two direct nodes: responses do not go through the hub yet.
ANSWER = Answer("KE", "NL", "NL-DEMO-0001", "rejected", reason="Live thrips found on inspection")
# (exporter, number) of the certificate the demo withdraws: its importer links the two.
WITHDRAWN = ("NL", "NL-DEMO-0002")


def split(steps: list[Step], country: str) -> tuple[list[Step], list[Step]]:
    """The steps that can go while `country` is down, and those that need it up (sent by it,
    to it, or acting on a certificate sent to it); each list in the order given."""
    needs: list[Step] = []
    rest: list[Step] = []
    needing: set[str] = set()  # numbers of the certificates that go to or from `country`
    for step in steps:
        cert = step.certificate
        touches = (
            step.sender == country
            or step.target in needing
            or (cert is not None and cert.consignment.import_country.id == country)
        )
        if touches and cert is not None:
            needing.add(cert.number)
        (needs if touches else rest).append(step)
    return rest, needs
