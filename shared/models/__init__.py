"""Every table, imported so that Base.metadata is complete for Alembic and tests."""

from shared.models.agreement import Agreement, AgreementMode, AgreementStatus
from shared.models.agreement_party import AgreementParty
from shared.models.agreement_scope import AgreementScope
from shared.models.api_key import ApiKey, KeyScope
from shared.models.area import Area, AreaType
from shared.models.audit_event import AuditEvent
from shared.models.deployment import Deployment, DeploymentStatus
from shared.models.job_execution import JobExecution
from shared.models.organisation import Organisation, OrganisationKind, OrganisationSector
from shared.models.outbox import OutboxMessage
from shared.models.population import (
    Population,
    PopulationDataset,
    PopulationGroupTotal,
    PrevalenceRate,
)
from shared.models.projection import (
    ALL_ROLES,
    DRAW_MEASURES,
    ENGLAND_CODE,
    ProjectionDraws,
    ProjectionExplain,
    ProjectionRun,
    ProjectionRunPart,
    ProjectionSeries,
    RunStatus,
)
from shared.models.return_staging import return_staging
from shared.models.role import RegistrationBody, Role, RoleSector
from shared.models.scenario import BASELINE, Scenario, ScenarioVersion
from shared.models.web_session import WebSession
from shared.models.webhook import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from shared.models.workforce_return import (
    IdempotencyRecord,
    ImportStatus,
    ReturnImport,
    ReturnLine,
    ReturnSource,
    ReturnStatus,
    ReturnWarning,
    WorkforceReturn,
)
from shared.vocab.drivers import DemandDriver

__all__ = [
    "ALL_ROLES",
    "BASELINE",
    "DRAW_MEASURES",
    "ENGLAND_CODE",
    "Agreement",
    "AgreementMode",
    "AgreementParty",
    "AgreementScope",
    "AgreementStatus",
    "ApiKey",
    "Area",
    "AreaType",
    "AuditEvent",
    "DeliveryStatus",
    "DemandDriver",
    "Deployment",
    "DeploymentStatus",
    "IdempotencyRecord",
    "ImportStatus",
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
    "ProjectionDraws",
    "ProjectionExplain",
    "ProjectionRun",
    "ProjectionRunPart",
    "ProjectionSeries",
    "RegistrationBody",
    "ReturnImport",
    "ReturnLine",
    "ReturnSource",
    "ReturnStatus",
    "ReturnWarning",
    "Role",
    "RoleSector",
    "RunStatus",
    "Scenario",
    "ScenarioVersion",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkforceReturn",
    "return_staging",
]
