"""Every table, imported so that Base.metadata is complete for Alembic and tests."""

from shared.models.api_key import ApiKey, KeyScope
from shared.models.area import Area, AreaType
from shared.models.audit_event import AuditEvent
from shared.models.job_execution import JobExecution
from shared.models.organisation import Organisation, OrganisationKind, OrganisationSector
from shared.models.outbox import OutboxMessage
from shared.models.population import (
    Population,
    PopulationDataset,
    PopulationGroupTotal,
    PrevalenceRate,
)
from shared.models.role import DemandDriver, RegistrationBody, Role, RoleSector

__all__ = [
    "ApiKey",
    "Area",
    "AreaType",
    "AuditEvent",
    "DemandDriver",
    "JobExecution",
    "KeyScope",
    "Organisation",
    "OrganisationKind",
    "OrganisationSector",
    "OutboxMessage",
    "Population",
    "PopulationDataset",
    "PopulationGroupTotal",
    "PrevalenceRate",
    "RegistrationBody",
    "Role",
    "RoleSector",
]
