"""Entries of the hub's harmonised code-list look-ups (GetAdditionalDeclarations...).

Fields are declared in the WSDL's sequence order, which is the order they are written.
Every entry's children are unqualified in the WSDL; `active` is the only mandatory one
(and `level` of a treatment type, `docTypeOnly` of a statement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from node.ippc.codec import element
from node.ippc.names import UNQUALIFIED as U


@dataclass(frozen=True, slots=True)
class AdditionalDeclaration:
    active: bool = field(metadata=element(U, "active"))
    additional_code: str | None = field(default=None, metadata=element(U, "additionalCode"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    optional_text: str | None = field(default=None, metadata=element(U, "optionalText"))
    text: str | None = field(default=None, metadata=element(U, "text"))


@dataclass(frozen=True, slots=True)
class Condition:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    name: str | None = field(default=None, metadata=element(U, "name"))


@dataclass(frozen=True, slots=True)
class IntendedUse:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    name: str | None = field(default=None, metadata=element(U, "name"))


@dataclass(frozen=True, slots=True)
class MeanOfTransport:
    active: bool = field(metadata=element(U, "active"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    mode_code: int | None = field(default=None, metadata=element(U, "modeCode"))
    used_transport_mean: str | None = field(default=None, metadata=element(U, "usedTransportMean"))


@dataclass(frozen=True, slots=True)
class PackageType:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    description: str | None = field(default=None, metadata=element(U, "description"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))


@dataclass(frozen=True, slots=True)
class Pesticide:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    description: str | None = field(default=None, metadata=element(U, "description"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))


@dataclass(frozen=True, slots=True)
class ProductDescription:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    name: str | None = field(default=None, metadata=element(U, "name"))


# Keyword-only: the codec writes fields in declaration order, which must be the WSDL's
# sequence, and here a mandatory field follows optional ones.
@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    doc_type_only: int = field(metadata=element(U, "docTypeOnly"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    text: str | None = field(default=None, metadata=element(U, "text"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TreatmentType:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    description: str | None = field(default=None, metadata=element(U, "description"))
    lang: str | None = field(default=None, metadata=element(U, "lang"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    level: int = field(metadata=element(U, "level"))
    parent_code: str | None = field(default=None, metadata=element(U, "parentCode"))


class UnitMeasureType(StrEnum):
    WEIGHT = "WEIGHT"
    VOLUME = "VOLUME"
    DURATION = "DURATION"
    TEMPERATURE = "TEMPERATURE"
    CONCENTRATION = "CONCENTRATION"
    AREA = "AREA"
    DISTANCE = "DISTANCE"


@dataclass(frozen=True, slots=True)
class UnitMeasure:
    active: bool = field(metadata=element(U, "active"))
    code: str | None = field(default=None, metadata=element(U, "code"))
    last_modified: datetime | None = field(default=None, metadata=element(U, "lastModified"))
    last_modified_by: str | None = field(default=None, metadata=element(U, "lastModifiedBy"))
    name: str | None = field(default=None, metadata=element(U, "name"))
    symbol: str | None = field(default=None, metadata=element(U, "symbol"))
    type: UnitMeasureType | None = field(default=None, metadata=element(U, "type"))


CodeListEntry = (
    AdditionalDeclaration
    | Condition
    | IntendedUse
    | MeanOfTransport
    | PackageType
    | Pesticide
    | ProductDescription
    | Statement
    | TreatmentType
    | UnitMeasure
)
