"""The Explorer in a real headless Chromium: sign in, the demo ICB's overview, the fan chart
drawn from the run's numbers, a return uploaded with three bad rows (exactly those reported),
fixed, submitted and diffed, sign out; axe-core on every page; screenshots as CI output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.domain.reference.loader import ReferenceLoadSummary
from tests.api.explorer.helpers import AS_AT, ics_with_run, secret_of
from tests.api.explorer.test_overview_and_charts import drawn_from, principal_paths
from tests.api.explorer.test_returns_upload import bad_rows_csv, fixed_csv
from tests.browser.conftest import AXE, SCREENSHOTS
from tests.factories import ICB_A, LAD_A1, make_role
from tests.helpers import KeyFactory

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def accessible(page: Page, name: str) -> None:
    """axe-core finds no serious or critical violation; the page is saved as a screenshot."""
    await page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"""
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"


async def sign_in(page: Page, base: str, key: dict[str, str]) -> None:
    await page.goto(f"{base}/")
    assert "/explorer/sign-in" in page.url
    await page.get_by_label("API key").fill(secret_of(key))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


async def sign_out(page: Page, base: str) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_load_state()
    assert "/explorer/sign-in" in page.url


async def test_explorer_in_chromium(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    live_server: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    ics = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_A, lad=LAD_A1, label="Demo"
    )
    for code in ("expl-extra-a", "expl-extra-b", "expl-extra-c"):
        await make_role(sessionmaker, code)
    lead = await make_key("read", ics_code=ICB_A, name="ICS lead")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    base = live_server

    # The sign-in page, then the demo ICB's overview.
    await page.goto(f"{base}/explorer/sign-in")
    await accessible(page, "01-sign-in")
    await sign_in(page, base, lead)
    assert page.url.endswith(f"/explorer/areas/{ICB_A}")
    await page.get_by_role("heading", name="Workforce by sector").wait_for()
    # Their returns are dated more than 12 months ago: both show as data gaps.
    gaps = await page.locator("#gaps-table").inner_text()
    assert all(name in gaps for name in ics.organisation_names)
    await accessible(page, "02-overview-icb")
    await page.get_by_label("Open a local authority").select_option(LAD_A1)
    await page.get_by_role("button", name="Open").click()
    await page.wait_for_load_state()
    assert page.url.endswith(f"/explorer/areas/{LAD_A1}")
    await accessible(page, "03-overview-lad")

    # The projection: the fan chart is drawn from the run's numbers.
    await page.goto(f"{base}/explorer/areas/{ICB_A}")
    await page.get_by_role("link", name=re.compile("^Projections for")).click()
    await page.wait_for_load_state()
    assert f"/explorer/projections/{ics.run_id}" in page.url
    fan = page.locator("#fan-chart")
    await fan.wait_for()
    loaded = await fan.evaluate("img => img.complete && img.naturalWidth > 0")
    assert loaded
    src = await fan.get_attribute("src")
    assert src is not None
    svg = (await page.request.get(f"{base}{src}")).text()
    drawn = principal_paths(await svg)
    for measure in ("demand_fte", "supply_fte", "gap_fte"):
        results = (
            await client.get(
                f"/v1/projections/{ics.run_id}/results",
                params={"area": ICB_A, "role": "all", "measure": measure, "limit": 100},
                headers=ics.admin,
            )
        ).json()["items"]
        values = [r["principal"] for r in sorted(results, key=lambda r: r["year"])]
        assert drawn_from(values, drawn[measure]), measure
    # The table behind the chart shows the same numbers.
    await page.get_by_text("Table of the fan chart").click()
    table_text = await page.locator("#fan-table").inner_text()
    assert f"{values[-1]:.1f}" in table_text
    await accessible(page, "04-projection")
    await page.goto(f"{base}/explorer/agreements")
    await accessible(page, "05-agreements")
    await sign_out(page, base)
    # Signed out: no data, only the sign-in form.
    await page.goto(f"{base}/explorer/areas/{ICB_A}")
    assert "/explorer/sign-in" in page.url
    assert "Workforce by sector" not in await page.content()

    # A data clerk uploads a return with three bad rows, fixes it and submits.
    clerk = await make_key("submit", organisation_id=ics.organisation_ids[0], name="clerk")
    await sign_in(page, base, clerk)
    assert page.url.endswith("/explorer/returns")
    await accessible(page, "06-returns")
    template = await page.request.get(f"{base}/explorer/returns/template.csv")
    body, bad = bad_rows_csv(await template.text())
    broken = tmp_path / "return.csv"
    broken.write_text(body)
    await page.get_by_label("Date of the figures").fill(AS_AT)
    await page.get_by_label("Your CSV file").set_input_files(str(broken))
    await page.get_by_role("button", name="Check the file").click()
    await page.wait_for_load_state()
    rows = await page.locator("#problems tbody tr").evaluate_all(
        "trs => trs.map(tr => Number(tr.dataset.row))"
    )
    assert set(rows) == bad
    assert "Did you mean 'expl-care-worker'" in await page.locator("#problems").inner_text()
    await accessible(page, "07-return-report")
    fixed = tmp_path / "return-fixed.csv"
    fixed.write_text(fixed_csv(body))
    await page.goto(f"{base}/explorer/returns")
    await page.get_by_label("Date of the figures").fill(AS_AT)
    await page.get_by_label("Your CSV file").set_input_files(str(fixed))
    await page.get_by_role("button", name="Check the file").click()
    await page.wait_for_load_state()
    await page.get_by_role("heading", name="No problems found").wait_for()
    await accessible(page, "08-return-ready")
    await page.get_by_role("button", name="Submit the return").click()
    await page.wait_for_load_state()
    assert re.search(r"/explorer/returns/[0-9a-f-]{36}$", page.url)
    diff = await page.locator("#diff-table").inner_text()
    assert "expl-extra-a" in diff
    assert "added" in diff
    await accessible(page, "09-return-diff")
    await sign_out(page, base)
    await page.goto(f"{base}/explorer/returns")
    assert "/explorer/sign-in" in page.url
    assert "expl-extra-a" not in await page.content()
    await context.close()


async def fits_the_screen(page: Page, name: str) -> None:
    """Nothing makes the page scroll sideways (wide tables scroll in their own box), and the
    page is saved as a screenshot."""
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert overflow <= 0, f"{name}: the page is {overflow} px wider than the screen"


async def test_explorer_on_a_phone_screen(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    live_server: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    ics = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_A, lad=LAD_A1, label="Demo"
    )
    context = await browser.new_context(viewport={"width": 400, "height": 800})
    page = await context.new_page()
    base = live_server
    await sign_in(page, base, await make_key("read", ics_code=ICB_A, name="ICS lead"))
    await fits_the_screen(page, "20-phone-overview")
    await page.goto(f"{base}/explorer/projections/{ics.run_id}?area={ICB_A}")
    fan = page.locator("#fan-chart")
    await fan.wait_for()
    # The browser took the phone drawing of the chart, and it is drawn.
    source = await fan.evaluate("img => img.complete && img.naturalWidth > 0 && img.currentSrc")
    assert isinstance(source, str)
    assert "layout=narrow" in source
    await fits_the_screen(page, "21-phone-projection")
    await sign_out(page, base)
    clerk = await make_key("submit", organisation_id=ics.organisation_ids[0], name="clerk")
    await sign_in(page, base, clerk)
    await fits_the_screen(page, "22-phone-returns")
    broken = tmp_path / "return.csv"
    template = await (await page.request.get(f"{base}/explorer/returns/template.csv")).text()
    broken.write_text(template.replace(",", ";"))
    await page.get_by_label("Your CSV file").set_input_files(str(broken))
    await page.get_by_role("button", name="Check the file").click()
    await page.wait_for_load_state()
    assert "not separated by commas" in await page.locator("#problems").inner_text()
    await fits_the_screen(page, "23-phone-return-report")
    await context.close()
