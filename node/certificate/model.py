"""The typed model of a phytosanitary certificate (ISPM 12, as an ePhyto).

The model mirrors the UN/CEFACT SPSCertificate structure, so that XML round trips
lose nothing; `node.certificate.ispm12` reads it as the boxes of the ISPM 12 model
certificates 851 and 657. Everything here is frozen: a certificate is a value.
Optional text is `None` when absent and repeated elements are tuples (empty when absent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

PHYTOSANITARY = "851"
REEXPORT = "657"


@dataclass(frozen=True, slots=True)
class Text:
    """Text with an optional language (ISO 639-1), e.g. a name given in Chinese."""

    value: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Measure:
    """A decimal amount with a UN Rec 20 unit, e.g. 1000 KGM."""

    value: Decimal
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """An SPSNote: an IPPC tag acronym (ADEDL, DMCL, RPCRF, ...) and its content."""

    subject: str | None
    contents: tuple[Text, ...] = ()
    content_codes: tuple[str, ...] = ()
    subject_code: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; ePhytos mostly use the five free lines."""

    postcode: str | None = None
    line_one: str | None = None
    line_two: str | None = None
    line_three: str | None = None
    line_four: str | None = None
    line_five: str | None = None
    city_name: str | None = None
    country_id: str | None = None
    country_name: str | None = None
    country_subdivision_name: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """An NPPO, consignor, consignee or officer's organisation."""

    id: str | None = None
    name: Text | None = None
    role_code: str | None = None
    address: Address | None = None
    person_name: Text | None = None


@dataclass(frozen=True, slots=True)
class Location:
    """A place: place of issue, point of entry, place of examination."""

    id: str | None = None
    names: tuple[Text, ...] = ()


@dataclass(frozen=True, slots=True)
class Country:
    """A country (ISO 3166-1 alpha-2) and optionally named areas within it."""

    id: str
    names: tuple[Text, ...] = ()
    subdivisions: tuple[Text, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """Binary content of a referenced document (Base64 on the wire)."""

    data: bytes
    mime_code: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class ReferencedDocument:
    """A document the certificate refers to: an import permit, the original certificate."""

    issue_datetime: datetime | None = None
    type_code: str | None = None
    relationship_type_code: str | None = None
    id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    information: Text | None = None


@dataclass(frozen=True, slots=True)
class Clause:
    """A certifying statement, by its harmonised ID, with optional text."""

    id: str
    contents: tuple[Text, ...] = ()


@dataclass(frozen=True, slots=True)
class Authentication:
    """Who certified, where and when: place of issue, authorised officer, statements."""

    issue_location: Location
    officer_name: Text | None = None
    actual_datetime: datetime | None = None
    provider_name: Text | None = None
    clauses: tuple[Clause, ...] = ()


@dataclass(frozen=True, slots=True)
class TransportMovement:
    """Declared means of conveyance: UN Rec 19 mode, vessel or flight, its name."""

    mode_code: str
    id: str | None = None
    means_name: Text | None = None


@dataclass(frozen=True, slots=True)
class TransportEquipment:
    """A container and its seals."""

    id: str | None = None
    seal_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Classification:
    """A classification of a line item: HS code, IPPC commodity class or condition."""

    system_name: str
    class_code: str | None = None
    class_names: tuple[Text, ...] = ()


@dataclass(frozen=True, slots=True)
class Package:
    """Number and kind of packages (UN Rec 21), with optional shipping marks."""

    level_code: str
    type_code: str
    quantity: Decimal
    marks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessCharacteristic:
    """One treatment detail: a TT* tag acronym in the first description, then values."""

    descriptions: tuple[Text, ...]
    value: Measure | None = None


@dataclass(frozen=True, slots=True)
class Treatment:
    """A treatment (AppliedSPSProcess): when, for how long, and its TT* characteristics."""

    type_code: str
    start: datetime | None = None
    end: datetime | None = None
    duration: Measure | None = None
    characteristics: tuple[ProcessCharacteristic, ...] = ()


@dataclass(frozen=True, slots=True)
class TradeLineItem:
    """One commodity in the consignment: name of produce, botanical name, quantity."""

    sequence: int
    descriptions: tuple[Text, ...]
    common_names: tuple[Text, ...] = ()
    scientific_names: tuple[Text, ...] = ()
    production_batch_ids: tuple[str, ...] = ()
    intended_uses: tuple[Text, ...] = ()
    net_weight: Measure | None = None
    gross_weight: Measure | None = None
    net_volume: Measure | None = None
    gross_volume: Measure | None = None
    notes: tuple[Note, ...] = ()
    classifications: tuple[Classification, ...] = ()
    packages: tuple[Package, ...] = ()
    origin_countries: tuple[Country, ...] = ()
    origin_locations: tuple[Location, ...] = ()
    treatments: tuple[Treatment, ...] = ()


@dataclass(frozen=True, slots=True)
class Consignment:
    """Section I of the model certificate: the parties, the route and the goods."""

    consignor: Party
    consignee: Party
    export_country: Country
    import_country: Country
    examination_location: Location
    items: tuple[TradeLineItem, ...]
    reexport_countries: tuple[Country, ...] = ()
    transit_countries: tuple[Country, ...] = ()
    loading_location: Location | None = None
    unloading_location: Location | None = None
    transport_movements: tuple[TransportMovement, ...] = ()
    transport_equipment: tuple[TransportEquipment, ...] = ()


@dataclass(frozen=True, slots=True)
class Certificate:
    """A phytosanitary (851) or re-export (657) certificate as exchanged."""

    number: str
    type_code: str
    status_code: str
    issue_datetime: datetime
    issuer: Party
    signatories: tuple[Authentication, ...]
    consignment: Consignment
    names: tuple[Text, ...] = ()
    descriptions: tuple[Text, ...] = ()
    notes: tuple[Note, ...] = field(default=())
    references: tuple[ReferencedDocument, ...] = ()

    @property
    def is_reexport(self) -> bool:
        return self.type_code == REEXPORT

    def notes_on(self, subject: str) -> tuple[Note, ...]:
        """Document-level notes with this IPPC tag acronym, in document order."""
        return tuple(n for n in self.notes if n.subject == subject)
