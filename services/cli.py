"""The `oneworkforce` command."""

from __future__ import annotations

import asyncio
import getpass
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, ClassVar, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import get_settings
from shared.db.session import make_engine, make_sessionmaker, transaction
from shared.errors import DomainError
from shared.models import KeyScope

app = typer.Typer(help="OneWorkforce: integrated health and social care workforce planning.")
keys_app = typer.Typer(help="Create, list and revoke API keys.")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


@app.command()
def migrate(
    with_reference: Annotated[
        bool,
        typer.Option(
            "--load-reference", help="Then load the bundled reference data (as load-reference)"
        ),
    ] = False,
    with_roles: Annotated[
        bool,
        typer.Option("--seed-roles", help="Then add the shipped role catalogue (as seed-roles)"),
    ] = False,
) -> None:
    """Bring the database schema up to date."""
    from shared.db import migrate as migrations

    settings = get_settings()
    _require_writable_database()
    migrations.upgrade(settings.database_url)
    console.print(f"[green]Database at head[/green] ({settings.database_url.split('://')[0]})")
    if with_reference:
        load_reference()
    if with_roles:
        seed_roles()


T = TypeVar("T")


def _require_writable_database() -> None:
    """The embedded SQLite database must be writable here: say so plainly, and how to fix it."""
    from sqlalchemy.engine import make_url

    settings = get_settings()
    if not settings.is_sqlite:
        return
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return
    path = Path(database).resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(path.parent, os.W_OK | os.X_OK) and (
            not path.exists() or os.access(path, os.R_OK | os.W_OK)
        )
    except OSError:
        writable = False
    if writable:
        return
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid with no name, as in some containers
        user = "?"
    err.print(
        f"[red]The embedded database {path} cannot be written by user {user} "
        f"(uid {os.getuid()}).[/red]\n"
        f"Make {path.parent} writable by this user (in a container: mount a volume there), "
        "or set DATABASE_URL to another location or to PostgreSQL.",
        soft_wrap=True,
    )
    raise typer.Exit(code=2)


def _with_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(get_settings().database_url)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


class _ProgressBars:
    """Turns the loaders' (step, done, total) reports into rich progress bars."""

    LABELS: ClassVar[dict[str, str]] = {
        "read": "Reading and checking population rows",
        "write": "Writing population rows",
    }

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        task = self.tasks.get(step)
        if task is None:
            task = self.tasks[step] = self.progress.add_task(
                self.LABELS.get(step, step), total=total
            )
        self.progress.update(task, completed=done, total=total)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def _print_problems(exc: DomainError, *, limit: int = 50) -> None:
    err.print(f"[red]{exc.message}[/red] ({exc.code})")
    if not exc.errors:
        return
    table = Table("row", "column", "code", "message")
    for problem in exc.errors[:limit]:
        table.add_row(
            "" if problem.get("row") is None else str(problem["row"]),
            str(problem.get("column") or problem.get("field") or ""),
            str(problem.get("code", "")),
            str(problem.get("message", "")),
        )
    err.print(table)
    total = int(exc.extra.get("error_count", len(exc.errors)))
    if total > limit:
        err.print(f"... and {total - limit} more.")


@app.command("load-reference")
def load_reference() -> None:
    """Load the bundled areas, ONS 2018-based population projections and dementia prevalence.

    Idempotent: areas and rates are corrected in place, and the population dataset
    (ons-snpp-2018) is skipped when it is already complete.
    """
    from services.domain.reference import loader

    with _progress() as progress:
        bars = _ProgressBars(progress)
        summary = _with_database(lambda sm: loader.load_reference(sm, progress=bars))
    population = (
        f"loaded {summary.population_rows:,} population rows"
        if summary.population_loaded
        else f"already loaded ({summary.population_rows:,} rows)"
    )
    console.print(f"[green]Reference data ready[/green] in {summary.seconds:.1f}s")
    console.print(f"  areas: {summary.areas} ({summary.areas_written} written)")
    console.print(f"  population dataset {summary.dataset_name}: {population}")
    console.print(f"  prevalence rates: {summary.prevalence_rates_written} written")


@app.command("load-population")
def load_population(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV (or .csv.gz) with columns area_code,year,sex,age_band,population",
        ),
    ],
    name: Annotated[str, typer.Option(help="Dataset name, e.g. ons-snpp-2022")],
    source: Annotated[str, typer.Option(help="Where the figures come from")],
    base_year: Annotated[int, typer.Option(help="The projection's base year")],
    replace: Annotated[
        bool, typer.Option(help="Replace an existing dataset with this name, atomically")
    ] = False,
) -> None:
    """Load a population dataset in long form; every problem is reported and nothing is loaded
    unless the whole file is valid."""
    from services.domain.reference import loader

    try:
        with _progress() as progress:
            bars = _ProgressBars(progress)
            summary = _with_database(
                lambda sm: loader.load_population_file(
                    sm,
                    file,
                    name=name,
                    source=source,
                    base_year=base_year,
                    replace=replace,
                    progress=bars,
                )
            )
    except DomainError as exc:
        _print_problems(exc)
        raise typer.Exit(code=1) from exc
    console.print(
        f"[green]{'Replaced' if summary.replaced else 'Loaded'}[/green] population dataset "
        f"{summary.name}: {summary.rows:,} rows, {summary.first_year}-{summary.last_year}, "
        f"in {summary.seconds:.1f}s."
    )


@app.command("seed-roles")
def seed_roles() -> None:
    """Add the shipped role catalogue's missing roles; existing roles are left as they are."""
    from services.api.roles import service

    async def seed() -> tuple[int, int, list[str]]:
        engine = make_engine(get_settings().database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                report = await service.seed_roles(session, actor="cli")
                return report.inserted, report.already_present, report.inserted_codes
        finally:
            await engine.dispose()

    inserted, present, codes = asyncio.run(seed())
    console.print(f"Role catalogue: {inserted} added, {present} already present")
    if codes and len(codes) <= 10:
        console.print("  added: " + ", ".join(codes))


@app.command()
def demo(
    ics: Annotated[str, typer.Option(help="The ICB to fill (E54 code)")] = "E54000008",
    force: Annotated[bool, typer.Option(help="Load even when LOAD_DEMO_DATA is false")] = False,
) -> None:
    """Register one ICB's organisations (real NHS trusts, sized care providers, councils and
    primary care) with two years of plausible returns; skipped when the ICB has organisations."""
    from services.domain.demo import load_demo

    if not (get_settings().load_demo_data or force):
        console.print("Demo data is off (LOAD_DEMO_DATA=false).")
        return

    async def run() -> tuple[bool, int, int, int, str]:
        from services.api.projections import service as projections
        from services.domain.demo_sharing import load_demo_sharing
        from shared.schemas.projections import ProjectionCreate

        engine = make_engine(get_settings().database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                report = await load_demo(session, ics_code=ics)
                extra = ""
                if report.created:
                    sharing = await load_demo_sharing(session, ics_code=ics)
                    if sharing.agreement is not None:
                        extra += f"; a staff-sharing agreement, '{sharing.agreement.title}'"
                    # A first baseline projection (and the demo scenario's, with the same
                    # seed and runs, to compare with it), queued: the API's projector (or a
                    # worker) picks them up as soon as it starts.
                    await projections.request_run(
                        session, principal=None, data=ProjectionCreate(scope=ics)
                    )
                    extra += "; a baseline projection is queued"
                    if sharing.scenario is not None:
                        await projections.request_run(
                            session,
                            principal=None,
                            data=ProjectionCreate(scope=ics, scenario=sharing.scenario.name),
                        )
                        extra += f", and one of the scenario '{sharing.scenario.name}'"
                return report.created, report.organisations, report.lines, report.returns, extra
        finally:
            await engine.dispose()

    created, organisations, lines, returns, extra = asyncio.run(run())
    if created:
        console.print(
            f"[green]Demo data loaded[/green] for {ics}: {organisations} organisations, "
            f"{returns} returns, {lines:,} lines{extra}"
        )
    else:
        console.print(f"Demo data already present for {ics} ({organisations} organisations).")


@app.command("track-record")
def track_record_command(
    area: Annotated[str, typer.Option(help="An ICB code (E54...)")],
    roles: Annotated[
        str | None, typer.Option(help="Comma-separated role codes (default: every role)")
    ] = None,
    iterations: Annotated[int, typer.Option(min=0, max=500, help="Monte Carlo draws")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Random seed")] = 1,
    by_role: Annotated[bool, typer.Option("--by-role", help="Also list every role")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON")] = False,
) -> None:
    """How past baseline projections matched the returns posted later (error, bias, coverage)."""
    from services.domain import track_record
    from shared.schemas.track_record import TrackRecordRead

    role_list = [part.strip() for part in roles.split(",") if part.strip()] if roles else None

    async def work(sessionmaker: async_sessionmaker[AsyncSession]) -> TrackRecordRead:
        async with sessionmaker() as session:
            record = await track_record.track_record(
                session, area_code=area, roles=role_list, iterations=iterations, seed=seed
            )
            return TrackRecordRead.model_validate(record)

    try:
        report = _with_database(work)
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/red] ({exc.code})")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    table = Table(
        title=f"Track record of the baseline for {report.area_code} "
        f"(return years {', '.join(map(str, report.return_years))}; {report.iterations} draws)"
    )
    for column in ("level", "group", "measure", "n", "MAPE %", "bias FTE", "bias %", "in p10-p90"):
        table.add_column(
            column, justify="left" if column in ("level", "group", "measure") else "right"
        )
    for row in report.summaries:
        if row.level == "role" and not by_role:
            continue
        table.add_row(
            row.level,
            row.group,
            row.measure,
            str(row.comparisons),
            "-" if row.mape is None else f"{row.mape:.1f}",
            f"{row.mean_signed_error:+.1f}",
            "-"
            if row.mean_signed_percentage_error is None
            else f"{row.mean_signed_percentage_error:+.1f}",
            f"{row.coverage_p10_p90:.0%}",
        )
    console.print(table)
    for measure, share in report.coverage_by_measure.items():
        console.print(
            f"  {measure}: {share:.0%} of role-level actuals inside p10-p90 "
            f"(about {report.expected_coverage:.0%} expected)"
        )


@app.command()
def project(
    scope: Annotated[str, typer.Option(help="An ICB code (E54...) or E92000001 for England")],
    scenario: Annotated[
        str, typer.Option(help="Scenario name: the scope ICS's own, else a national one")
    ] = "baseline",
    base_year: Annotated[int | None, typer.Option(help="Default: the latest returns")] = None,
    horizon: Annotated[int | None, typer.Option(help="Years; default 20 or the data's end")] = None,
    iterations: Annotated[int, typer.Option(help="Monte Carlo runs")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
) -> None:
    """Run a projection now, in this process, with a progress bar; print where to read it."""
    from pydantic import ValidationError

    from services.api.projections import service as projections
    from services.domain.queue import OutboxRelay
    from services.projector.inprocess import InProcessRunner
    from shared.repositories import outbox
    from shared.repositories import projections as runs_repo
    from shared.schemas.projections import ProjectionCreate

    try:
        request = ProjectionCreate(
            scenario=scenario,
            scope=scope,
            base_year=base_year,
            horizon=horizon,
            iterations=iterations,
            seed=seed,
        )
    except ValidationError as exc:
        for problem in exc.errors():
            err.print(f"[red]{'.'.join(map(str, problem['loc']))}: {problem['msg']}[/red]")
        raise typer.Exit(code=2) from exc

    async def run() -> tuple[str, str, str | None]:
        settings = get_settings()
        engine = make_engine(settings.database_url)
        sessionmaker = make_sessionmaker(engine, settings=settings)
        runner = InProcessRunner(settings, engine)
        runner.start()
        try:
            async with transaction(sessionmaker) as session:
                created = await projections.request_run(session, principal=None, data=request)
                run_id = created.id
                pending = outbox.take_pending(session)
            # Only this run's job: anything else queued waits for the API or the workers.
            await OutboxRelay(sessionmaker, runner).send(pending)
            with _progress() as progress:
                task = progress.add_task(f"projecting {scope}", total=1.0)
                while True:
                    async with sessionmaker() as session:
                        current = await runs_repo.get_run(session, run_id=run_id)
                    assert current is not None
                    progress.update(task, completed=current.progress or 0.0)
                    if current.status in ("succeeded", "failed", "cancelled"):
                        break
                    await asyncio.sleep(0.25)
            return str(run_id), str(current.status), current.error
        finally:
            await runner.close()
            await engine.dispose()

    from shared.errors import DomainError

    try:
        run_id, status, error = asyncio.run(run())
    except DomainError as exc:
        _print_problems(exc)
        raise typer.Exit(code=2) from exc
    if status != "succeeded":
        err.print(f"[red]Run {run_id} {status}[/red]: {error}")
        raise typer.Exit(code=1)
    console.print(f"[green]Run {run_id} succeeded.[/green] Read it at /v1/projections/{run_id}")
    console.print(f"  results: /v1/projections/{run_id}/results?area={scope}&role=all")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    reload: Annotated[bool, typer.Option(help="Reload on code changes")] = False,
    with_migrate: Annotated[
        bool,
        typer.Option(
            "--migrate",
            help="First bring the schema up to date and load the reference data and roles",
        ),
    ] = False,
) -> None:
    """Serve the API (with the in-process projector when no REDIS_URL is set)."""
    import uvicorn

    settings = get_settings()
    _require_writable_database()
    if with_migrate:
        migrate(with_reference=True, with_roles=True)
    bind_host = host or settings.host
    bind_port = port or settings.port
    asyncio.run(_print_key_hint())
    console.print(
        f"[bold]OneWorkforce API[/bold] on http://{bind_host}:{bind_port}  "
        f"(docs: http://{bind_host}:{bind_port}/docs; projector: "
        f"{'arq on Redis' if settings.redis_url else 'in-process'})"
    )
    console.print(
        f"[bold]Explorer[/bold] (web pages; sign in with an API key): "
        f"http://{bind_host}:{bind_port}/explorer"
    )
    uvicorn.run(
        "services.api.main:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        reload=reload,
        log_config=None,
        proxy_headers=True,
    )


async def _print_key_hint() -> None:
    from shared.repositories import api_keys

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            active = await api_keys.list_keys(session, include_revoked=False)
    finally:
        await engine.dispose()
    if not active:
        console.print(
            "[yellow]No API keys yet.[/yellow] Create an admin key with:\n"
            "  .venv/bin/oneworkforce keys create --scope admin --name me\n"
            "then call the API with 'Authorization: Bearer <key>'."
        )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 0 if a worker here is alive, 1 if not (for healthchecks)"
        ),
    ] = False,
) -> None:
    """Run a projector worker (arq on Redis; needs REDIS_URL). It rides out Redis outages."""
    from arq.worker import get_kwargs

    from services.projector.resilient import ResilientWorker, check_health, health_file
    from services.projector.worker import WorkerSettings

    settings = get_settings()
    if check:
        healthy, detail = check_health(settings)
        (console if healthy else err).print(detail, markup=False)
        raise typer.Exit(code=0 if healthy else 1)
    if not settings.redis_url:
        err.print("[red]REDIS_URL is not set.[/red] Without Redis the API runs the projector.")
        raise typer.Exit(code=2)
    ResilientWorker(
        **get_kwargs(WorkerSettings),  # type: ignore[arg-type]
        burst=burst,
        health_path=health_file(settings),
    ).run()


@app.command("import-returns")
def import_returns(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Bulk returns CSV")],
    ics: Annotated[
        str | None, typer.Option(help="Only accept organisations in this ICS (E54 code)")
    ] = None,
) -> None:
    """Load many organisations' returns from one CSV: all of it, or nothing if any line is bad."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from services.domain.returns import importer as returns_import

    size = file.stat().st_size

    async def run() -> returns_import.ImportOutcome:
        engine = make_engine(get_settings().database_url)
        import_id = uuid.uuid4()
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}"),
                TimeElapsedColumn(),
                console=err,
            ) as progress:
                task = progress.add_task("reading", total=size)

                async def chunks() -> AsyncIterator[bytes]:
                    with file.open("rb") as handle:
                        while block := handle.read(1 << 20):
                            progress.update(task, advance=len(block))
                            yield block

                async with transaction(make_sessionmaker(engine)) as session:
                    await returns_import.stage(session, chunks(), import_id=import_id)
                    progress.update(task, description="validating")
                    outcome = await returns_import.validate_and_load(
                        session, import_id=import_id, ics_code=ics, key_id=None, actor="cli"
                    )
                    if not outcome.ok:
                        await session.rollback()
                    return outcome
        finally:
            await engine.dispose()

    from shared.errors import DomainError

    try:
        outcome = asyncio.run(run())
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/red] ({exc.code})")
        for detail in (exc.errors or [])[:20]:
            err.print(f"  {detail}")
        raise typer.Exit(code=1) from exc
    if not outcome.ok:
        for problem in outcome.problems[:50]:
            where = f"line {problem.row}" if problem.row else "file"
            org = f" [{problem.organisation_code}]" if problem.organisation_code else ""
            err.print(
                f"{where}{org} {problem.column or ''}: {problem.code}: {problem.message}",
                soft_wrap=True,
                markup=False,
            )
        err.print(f"[red]{outcome.error_count} error(s); nothing was loaded.[/red]")
        raise typer.Exit(code=1)
    console.print(
        f"[green]Loaded {outcome.line_count:,} lines as {outcome.return_count:,} returns[/green] "
        f"({outcome.warning_count:,} warnings; timings {outcome.timings})"
    )


@keys_app.command("create")
def keys_create(
    scope: Annotated[KeyScope, typer.Option(help="admin, submit or read")],
    name: Annotated[str, typer.Option(help="Who or what the key is for")] = "cli",
    organisation: Annotated[
        uuid.UUID | None, typer.Option(help="Bind to one organisation (id)")
    ] = None,
    ics: Annotated[str | None, typer.Option(help="Bind to one ICS (E54 code)")] = None,
) -> None:
    """Create an API key and print its secret once."""
    from pydantic import ValidationError

    from services.api.keys import service
    from shared.errors import DomainError
    from shared.schemas.keys import ApiKeyCreate

    try:
        data = ApiKeyCreate(name=name, scope=scope, organisation_id=organisation, ics_code=ics)
    except ValidationError as exc:
        for problem in exc.errors():
            err.print(f"[red]{'.'.join(map(str, problem['loc']))}: {problem['msg']}[/red]")
        raise typer.Exit(code=2) from exc

    async def create() -> tuple[str, str]:
        engine = make_engine(get_settings().database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                key, secret = await service.create_key(
                    session, data, actor="cli", actor_key_id=None
                )
                return str(key.id), secret
        finally:
            await engine.dispose()

    try:
        key_id, secret = asyncio.run(create())
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/red] ({exc.code})")
        raise typer.Exit(code=2) from exc
    console.print(f"Created key {key_id} (scope {scope.value}). The secret is shown only once:")
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never their secrets)."""
    from shared.repositories import api_keys

    async def fetch() -> list[tuple[str, ...]]:
        engine = make_engine(get_settings().database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                keys = await api_keys.list_keys(session)
                return [
                    (
                        str(k.id),
                        k.name,
                        k.prefix,
                        str(k.scope),
                        str(k.organisation_id or k.ics_code or "global"),
                        "revoked" if k.revoked_at else "active",
                    )
                    for k in keys
                ]
        finally:
            await engine.dispose()

    table = Table("id", "name", "prefix", "scope", "binding", "status")
    for row in asyncio.run(fetch()):
        table.add_row(*row)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: uuid.UUID) -> None:
    """Revoke an API key; requests with it then get 401."""
    from services.api.keys import service
    from shared.errors import DomainError

    async def revoke() -> None:
        engine = make_engine(get_settings().database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                await service.revoke_key(session, key_id=key_id, actor="cli", actor_key_id=None)
        finally:
            await engine.dispose()

    try:
        asyncio.run(revoke())
    except DomainError as exc:
        err.print(f"[red]{exc.message}[/red] ({exc.code})")
        raise typer.Exit(code=1) from exc
    console.print(f"Revoked {key_id}")


if __name__ == "__main__":
    app()
