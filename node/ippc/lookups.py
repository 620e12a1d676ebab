"""The code-list look-ups: an empty request, a response repeating TNS-qualified entries."""

from __future__ import annotations

from dataclasses import dataclass, field

from node.ippc.codec import element
from node.ippc.codelists import (
    AdditionalDeclaration,
    Condition,
    IntendedUse,
    MeanOfTransport,
    PackageType,
    Pesticide,
    ProductDescription,
    Statement,
    TreatmentType,
    UnitMeasure,
)
from node.ippc.names import TNS


@dataclass(frozen=True, slots=True)
class GetAdditionalDeclarations:
    pass


@dataclass(frozen=True, slots=True)
class GetAdditionalDeclarationsResponse:
    entries: tuple[AdditionalDeclaration, ...] = field(
        default=(), metadata=element(TNS, "AdditionalDeclaration")
    )


@dataclass(frozen=True, slots=True)
class GetConditions:
    pass


@dataclass(frozen=True, slots=True)
class GetConditionsResponse:
    entries: tuple[Condition, ...] = field(default=(), metadata=element(TNS, "Condition"))


@dataclass(frozen=True, slots=True)
class GetIntendedUses:
    pass


@dataclass(frozen=True, slots=True)
class GetIntendedUsesResponse:
    entries: tuple[IntendedUse, ...] = field(default=(), metadata=element(TNS, "IntendedUse"))


@dataclass(frozen=True, slots=True)
class GetMeanOfTransports:
    pass


@dataclass(frozen=True, slots=True)
class GetMeanOfTransportsResponse:
    entries: tuple[MeanOfTransport, ...] = field(
        default=(), metadata=element(TNS, "MeanOfTransport")
    )


@dataclass(frozen=True, slots=True)
class GetPackageTypes:
    pass


@dataclass(frozen=True, slots=True)
class GetPackageTypesResponse:
    entries: tuple[PackageType, ...] = field(default=(), metadata=element(TNS, "PackageType"))


@dataclass(frozen=True, slots=True)
class GetPesticides:
    pass


@dataclass(frozen=True, slots=True)
class GetPesticidesResponse:
    entries: tuple[Pesticide, ...] = field(default=(), metadata=element(TNS, "Pesticide"))


@dataclass(frozen=True, slots=True)
class GetProductDescriptions:
    pass


@dataclass(frozen=True, slots=True)
class GetProductDescriptionsResponse:
    entries: tuple[ProductDescription, ...] = field(
        default=(), metadata=element(TNS, "ProductDescription")
    )


@dataclass(frozen=True, slots=True)
class GetStatements:
    pass


@dataclass(frozen=True, slots=True)
class GetStatementsResponse:
    entries: tuple[Statement, ...] = field(default=(), metadata=element(TNS, "Statement"))


@dataclass(frozen=True, slots=True)
class GetTreatmentTypes:
    pass


@dataclass(frozen=True, slots=True)
class GetTreatmentTypesResponse:
    entries: tuple[TreatmentType, ...] = field(default=(), metadata=element(TNS, "TreatmentType"))


@dataclass(frozen=True, slots=True)
class GetUnitMeasures:
    pass


@dataclass(frozen=True, slots=True)
class GetUnitMeasuresResponse:
    entries: tuple[UnitMeasure, ...] = field(default=(), metadata=element(TNS, "UnitMeasure"))
