"""An example for every request body and for the main answers, placed on their schemas in the
OpenAPI document (Swagger UI's "Try it out" starts from them). Each is checked against its model
by the tests, so an example never drifts from what the API accepts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.domain.webhooks.events import EventType
from shared.schemas.agreements import (
    AgreementCreate,
    AgreementUpdate,
    DeploymentCreate,
    DeploymentEnd,
    SignRequest,
    SuspendRequest,
    TerminateRequest,
)
from shared.schemas.keys import ApiKeyCreate
from shared.schemas.organisations import OrganisationCreate, OrganisationUpdate
from shared.schemas.projections import ProjectionCreate, ProjectionResultRead, ProjectionRunRead
from shared.schemas.returns import AreaWorkforce, ReturnCreate
from shared.schemas.roles import RoleCreate, RoleUpdate
from shared.schemas.scenarios import ScenarioCreate, ScenarioUpdate
from shared.schemas.webhooks import WebhookCreate, WebhookRotate, WebhookUpdate

ICB = "E54000008"
LENDER = "6f1c0d9e-4b55-4a8e-9a1d-1f0c2b3a4d5e"
BORROWER = "0b6f6c1e-6d2a-4d0f-9a7c-1b2e3d4f5a6b"
RUN = "3c9e2a71-5d44-4f0e-8b6a-2f1d7c9e8a10"

_LINE: dict[str, Any] = {
    "role_code": "care-worker",
    "headcount": 40,
    "fte_in_post": 32.5,
    "vacant_fte": 4,
    "starters_12m": 10,
    "leavers_12m": 8,
    "leavers_to_health_care_12m": 2,
    "sickness_days_12m": 310,
    "agency_fte": 1.5,
    "bank_fte": 2,
    "age_under_25": 6,
    "age_25_34": 9,
    "age_35_44": 8,
    "age_45_54": 9,
    "age_55_64": 6,
    "age_65_plus": 2,
    "mean_hourly_pay": 11.95,
}

_BY_ROLE: dict[str, Any] = {
    "role_code": "care-worker",
    "role_name": "Care worker",
    "sector": "social_care",
    "organisations": 412,
    "headcount": 12840,
    "fte_in_post": 9987.5,
    "vacant_fte": 1043.25,
    "vacancy_rate": 0.0946,
    "starters_12m": 3410,
    "leavers_12m": 3290,
    "turnover_rate": 0.2562,
    "sickness_days_12m": 98233,
    "sickness_rate": 0.034,
    "agency_fte": 311.5,
    "bank_fte": 402.0,
    "agency_share": 0.0312,
}

EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    ReturnCreate: {"as_at": "2025-03-31", "lines": [_LINE]},
    ProjectionCreate: {"scope": ICB, "scenario": "baseline", "horizon": 10, "iterations": 200},
    ApiKeyCreate: {"name": "Portal of Mid Shire ICB", "scope": "read", "ics_code": ICB},
    OrganisationCreate: {
        "name": "Riverside Care Home",
        "kind": "care_provider",
        "sector": "social_care",
        "home_lad_code": "E06000015",
        "cqc_location_id": "1-101234567",
        "opened_on": "2012-04-01",
    },
    OrganisationUpdate: {"name": "Riverside Care and Nursing Home"},
    RoleCreate: {
        "code": "community-wellbeing-coach",
        "name": "Community wellbeing coach",
        "sector": "integrated",
        "staff_group": "Support to clinical staff",
        "default_demand_driver": "population_65_plus",
        "description": "Helps people over 65 stay independent at home.",
        "is_new_role": True,
    },
    RoleUpdate: {"description": "Helps people over 65 stay well and independent at home."},
    ScenarioCreate: {
        "name": "faster-prevention",
        "title": "Prevention reaches full effect in three years",
        "description": "The prevention programme is phased in over three years, not five.",
        "ics_code": ICB,
        "parameters": {"prevention_phase_in_years": 3},
        "rationale": {
            "prevention_phase_in_years": {
                "rationale": "The ICS board funded the programme in full from April.",
                "source": "ICS board minutes, March 2025, item 7",
            }
        },
    },
    ScenarioUpdate: {"title": "Prevention reaches full effect in two years"},
    AgreementCreate: {
        "title": "Winter mutual aid: registered nurses",
        "mode": "crisis",
        "start_date": "2025-11-01",
        "end_date": "2026-03-31",
        "parties": [{"organisation_id": LENDER}, {"organisation_id": BORROWER}],
        "scope": [
            {"role_code": "registered-nurse", "lending_organisation_id": LENDER, "fte_cap": 6}
        ],
    },
    AgreementUpdate: {"end_date": "2026-04-30"},
    SignRequest: {"signatory_name": "Dr A. Patel", "signatory_role": "Chief Nurse"},
    SuspendRequest: {"reason": "Lender's own escalation: level 4."},
    TerminateRequest: {"reason": "Winter pressures over."},
    DeploymentCreate: {
        "from_organisation_id": LENDER,
        "to_organisation_id": BORROWER,
        "role_code": "registered-nurse",
        "fte": 2,
        "start_date": "2025-12-01",
        "end_date": "2026-01-31",
        "reason": "Norovirus outbreak on two wards.",
    },
    DeploymentEnd: {"ended_on": "2026-01-15", "reason": "Wards reopened."},
    WebhookCreate: {
        "url": "https://portal.example.org/hooks/oneworkforce",
        "event_types": [EventType.projection_succeeded.value, EventType.return_accepted.value],
        "ics_code": ICB,
        "description": "Refresh the portal's dashboards",
    },
    WebhookUpdate: {"enabled": False},
    WebhookRotate: {"grace_seconds": 3600},
    ProjectionResultRead: {
        "area_code": ICB,
        "role_code": "care-worker",
        "role_name": "Care worker",
        "sector": "social_care",
        "measure": "gap_fte",
        "year": 2030,
        "principal": 812.4,
        "p10": 540.12,
        "p50": 806.3,
        "p90": 1101.77,
    },
    ProjectionRunRead: {
        "id": RUN,
        "scenario": "baseline",
        "scenario_version": 1,
        "scope": ICB,
        "base_year": 2025,
        "horizon": 10,
        "iterations": 200,
        "seed": 1,
        "status": "succeeded",
        "progress": 1.0,
        "attempts": 1,
        "error": None,
        "stale": False,
        "queued_at": "2025-06-02T08:00:00Z",
        "started_at": "2025-06-02T08:00:01Z",
        "finished_at": "2025-06-02T08:00:09Z",
        "heartbeat_at": "2025-06-02T08:00:09Z",
        "timings": {"load_s": 0.41, "model_s": 6.8, "store_s": 0.9},
        "model_version": "1",
        "fingerprint": "9f2c4e1b7a0d3c5e8f6a2b4d1c3e5f7a9b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e",
    },
    AreaWorkforce: {
        "area_code": ICB,
        "as_at": "2025-03-31",
        "roles": [_BY_ROLE],
        "total": {**_BY_ROLE, "role_code": "all", "role_name": "All roles", "sector": None},
        "completeness": {
            "organisations_registered": 1031,
            "organisations_reporting": 1002,
            "rate": 0.9719,
        },
    },
}
