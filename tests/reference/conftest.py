from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import POPULATION_HEADER, drop_population_dataset, write_population_csv

WriteCsv = Callable[..., Path]


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """Write long-form rows (under the standard header unless told) to a CSV file."""

    def write(rows: Iterable[Sequence[str]], *, header: str = POPULATION_HEADER) -> Path:
        return write_population_csv(tmp_path / f"{uuid.uuid4().hex[:8]}.csv", rows, header=header)

    return write


@pytest.fixture
async def dataset_name(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[str]:
    """A fresh dataset name; the dataset is removed again after the test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    await drop_population_dataset(sessionmaker, name)
