from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list, with the total so portals can render pagers."""

    items: list[T]
    total: int = Field(description="Items matching the filters, over all pages")
    page: int
    limit: int
