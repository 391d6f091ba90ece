"""Which areas' workforce figures a key may read: England, an ICB or a LAD, for global keys;
only their own ICB and its LADs for ICS keys; none for organisation keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.areas.errors import AreaNotFound, AreaTypeNotSupported
from shared.models import Area, AreaType
from shared.repositories import organisations as organisations_repo
from shared.schemas.keys import Principal


async def workforce_area(
    session: AsyncSession, *, principal: Principal, area_code: str
) -> tuple[Area, Any]:
    """The area and the filter selecting its organisations, if the key may read its workforce;
    otherwise the same 404 as for an area that does not exist."""
    area = await organisations_repo.get_area(session, code=area_code)
    if area is None or principal.organisation_id is not None:
        raise AreaNotFound(f"No area {area_code}.")
    area_filter = organisations_repo.in_area(area)
    if area_filter is None:
        raise AreaTypeNotSupported(
            f"Workforce is aggregated for LADs, ICBs and England, not {area.type}.", field="code"
        )
    ics = area.code if area.type == AreaType.icb else area.parent_code
    if principal.ics_code is not None and ics != principal.ics_code:
        raise AreaNotFound(f"No area {area_code}.")
    return area, area_filter
