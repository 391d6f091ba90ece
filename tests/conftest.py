"""Test fixtures: real databases (SQLite always, PostgreSQL when DATABASE_URL names one), the
in-process projector always and arq on real Redis when REDIS_URL is set.

Tests clean the tables they touch after each run instead of wrapping each test in a rolled-back
transaction: the API, the outbox relay and the workers use their own connections, and the
concurrency tests need transactions that really commit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.keys import service as keys_service
from services.api.main import create_app
from services.domain.reference.loader import ReferenceLoadSummary, load_reference
from shared.config import Settings
from shared.db import migrate
from shared.db.base import Base
from shared.db.session import make_engine, make_sessionmaker, transaction
from shared.models import KeyScope
from shared.schemas.keys import ApiKeyCreate
from tests import contract
from tests.helpers import KeyFactory, settings_for, unavailable

ENV = Settings(_env_file=None)

# Tables that hold loaded reference data: loaded once per test session, never cleaned.
KEEP_TABLES = frozenset(
    {
        "alembic_version",
        "areas",
        "population_datasets",
        "population",
        "population_group_totals",
        "prevalence_rates",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    contract.install()
    if not ENV.require_services:
        return
    missing = []
    if not ENV.is_postgres:
        missing.append("DATABASE_URL (PostgreSQL)")
    if not ENV.redis_url:
        missing.append("REDIS_URL")
    if missing:
        raise pytest.UsageError(
            "REQUIRE_SERVICES=1 but these are not configured: " + ", ".join(missing)
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the API answered a status its document does not declare."""
    missing = contract.check_observed()
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["answers not declared in docs/openapi.json:", *missing]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if ENV.is_postgres else ["sqlite"]


@pytest.fixture(scope="session", params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database for each backend under test.

    A test that needs PostgreSQL (one shared by several processes) asks for it alone with
    `@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)`.
    """
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        if not ENV.is_postgres:
            unavailable(
                "DATABASE_URL (PostgreSQL)",
                why="DATABASE_URL does not name PostgreSQL: this test needs a shared server",
            )
        url = ENV.database_url
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


async def clean_tables(engine: AsyncEngine) -> None:
    """Empty every non-reference table. A background task of the app under test (relay,
    reaper) may still hold a table when the test ends, and PostgreSQL can then pick the
    TRUNCATE as a deadlock victim: that is the clean-up racing the app, not a failure of the
    test, so it is tried again."""
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES]
    for attempt in range(5):
        try:
            async with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    await connection.execute(
                        text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
                    )
                else:
                    for table in reversed(tables):
                        await connection.execute(text(f"DELETE FROM {table}"))
            return
        except DBAPIError as exc:
            if "deadlock" not in str(exc).lower() or attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The database engine, with every non-reference table emptied after the test."""
    await clean_tables(engine)
    yield engine
    await clean_tables(engine)


@pytest.fixture
async def app(database_url: str, db: AsyncEngine) -> AsyncIterator[FastAPI]:
    application = create_app(settings_for(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def make_key(sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine) -> KeyFactory:
    """Create a real API key and return the Authorization header for it."""

    async def factory(
        scope: str = "admin",
        *,
        organisation_id: uuid.UUID | None = None,
        ics_code: str | None = None,
        name: str = "test",
    ) -> dict[str, str]:
        if ics_code is not None:
            # Keys are only bound to ICSs that exist.
            from tests.factories import ensure_small_geography

            await ensure_small_geography(sessionmaker)
        data = ApiKeyCreate(
            name=name, scope=KeyScope(scope), organisation_id=organisation_id, ics_code=ics_code
        )
        async with transaction(sessionmaker) as session:
            _, secret = await keys_service.create_key(
                session, data, actor="test", actor_key_id=None
            )
        return {"Authorization": f"Bearer {secret}"}

    return factory


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Real Redis for the arq tests: skipped without REDIS_URL unless services are required."""
    if not ENV.redis_url:
        unavailable("REDIS_URL", why="REDIS_URL not set: arq worker tests need a real Redis")
    return ENV.redis_url


@pytest.fixture
async def seeded_roles(
    sessionmaker: async_sessionmaker[AsyncSession], db: AsyncEngine
) -> list[str]:
    """The shipped role catalogue, seeded into the (cleaned) database; returns its codes."""
    from services.api.roles import service as roles_service

    async with transaction(sessionmaker) as session:
        await roles_service.seed_roles(session, actor="test")
    return sorted(role.code for role in roles_service.load_seed_catalogue())


@pytest.fixture(scope="session")
async def reference(sessionmaker: async_sessionmaker[AsyncSession]) -> ReferenceLoadSummary:
    """The bundled reference data (360 areas, the ONS 2018-based projections as dataset
    ons-snpp-2018, dementia prevalence) loaded once per backend by the real loader; a no-op
    when a persistent database already has it. Gives the dataset id and name and the counts."""
    return await load_reference(sessionmaker, actor="tests")
