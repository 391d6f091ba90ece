"""Helpers for the workforce return tests: a valid return line and what is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.models import ReturnLine, WorkforceReturn, return_staging


def line(role_code: str = "care-worker", **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "role_code": role_code, "headcount": 40, "fte_in_post": 32.5, "vacant_fte": 4,
        "starters_12m": 10, "leavers_12m": 8, "leavers_to_health_care_12m": 2,
        "sickness_days_12m": 310, "agency_fte": 1.5, "bank_fte": 2, "age_under_25": 6,
        "age_25_34": 9, "age_35_44": 8, "age_45_54": 9, "age_55_64": 6, "age_65_plus": 2,
        "mean_hourly_pay": 11.95,
    }  # fmt: skip
    values.update(overrides)
    return values


async def counts(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with sessionmaker() as session:
        returns = (
            await session.execute(select(func.count()).select_from(WorkforceReturn))
        ).scalar_one()
        lines = (await session.execute(select(func.count()).select_from(ReturnLine))).scalar_one()
        staged = (
            await session.execute(select(func.count()).select_from(return_staging))
        ).scalar_one()
    return int(returns), int(lines), int(staged)
