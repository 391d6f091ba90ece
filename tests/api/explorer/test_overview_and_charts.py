"""The area overview and the chart resources: what a key may read, drawn from the run's
numbers; another ICS's key sees none of it."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.explorer.pages import _about, _cell, _heading
from services.domain.reference.loader import ReferenceLoadSummary
from tests.api.explorer.helpers import ics_with_run, sign_in, two_ics
from tests.factories import ICB_A, LAD_A1
from tests.helpers import KeyFactory, assert_problem

_PATH = re.compile(r'<g id="principal-(\w+)">\s*<path d="([^"]+)"')


def principal_paths(svg: str) -> dict[str, list[float]]:
    """The y coordinates of each principal line in an SVG drawn by the chart module."""
    lines = {}
    for measure, d in _PATH.findall(svg):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
        lines[measure] = numbers[1::2]
    return lines


def drawn_from(values: list[float], ys: list[float]) -> bool:
    """True when the drawn y coordinates are one affine map of the values (same shape)."""
    assert len(values) == len(ys)
    if max(values) - min(values) < 1e-9:
        return max(ys) - min(ys) < 1e-6
    i, j = values.index(min(values)), values.index(max(values))
    scale = (ys[j] - ys[i]) / (values[j] - values[i])
    return all(
        abs(ys[i] + scale * (v - values[i]) - y) < 0.05 for v, y in zip(values, ys, strict=True)
    )


async def test_overview_shows_the_ics_workforce_gaps_and_need(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    a, b = await two_ics(client, app, sessionmaker, make_key)
    reader = await make_key("read", ics_code=a.code, name="lead-a")
    await sign_in(client, reader)
    page = await client.get(f"/explorer/areas/{a.code}")
    assert page.status_code == 200
    html = page.text
    assert "Workforce by sector" in html
    assert "Adult social care" in html
    assert "Health (NHS)" in html
    workforce = (await client.get(f"/v1/areas/{a.code}/workforce", headers=reader)).json()
    assert f"{workforce['total']['headcount']:,}" in html
    assert "aged 65+" in html
    assert "with dementia" in html
    assert f'<img src="/explorer/areas/{a.code}/charts/population" alt="Population trend' in html
    assert all(name not in html for name in b.organisation_names)
    # An LAD of the ICS, and its tables as CSV and xlsx.
    lad = await client.get(f"/explorer/areas/{a.lad}")
    assert lad.status_code == 200
    csv = await client.get(f"/explorer/areas/{a.code}/tables/workforce-roles?format=csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("role_code,role,sector,organisations,headcount")
    assert "expl-care-worker" in csv.text
    xlsx = await client.get(f"/explorer/areas/{a.code}/tables/workforce-sectors?format=xlsx")
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"
    png = await client.get(f"/explorer/areas/{a.code}/charts/population?format=png")
    assert png.status_code == 200
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    unknown = await client.get(f"/explorer/areas/{a.code}/tables/nothing?format=csv")
    assert unknown.status_code == 404


async def test_a_key_of_another_ics_sees_none_of_this_ics_in_pages_or_charts(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    a, b = await two_ics(client, app, sessionmaker, make_key)
    other = await make_key("read", ics_code=b.code, name="lead-b")
    await sign_in(client, other)
    own = await client.get(f"/explorer/areas/{b.code}")
    assert own.status_code == 200
    for path in (
        f"/explorer/areas/{a.code}",
        f"/explorer/areas/{a.lad}",
        f"/explorer/areas/{a.code}/tables/workforce-roles?format=csv",
        f"/explorer/areas/{a.code}/tables/data-gaps?format=xlsx",
        f"/explorer/areas/{a.code}/charts/population?format=svg",
        "/explorer/areas/E92000001",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert all(name not in response.text for name in a.organisation_names)
    for fmt in ("svg", "png"):
        chart = await client.get(f"/v1/projections/{a.run_id}/chart.{fmt}", headers=other)
        assert_problem(chart, 404, "projection_not_found")
        forced = await client.get(
            f"/v1/projections/{b.run_id}/chart.{fmt}?area={a.code}", headers=other
        )
        assert_problem(forced, 404, "results_not_found")


async def test_chart_resources_are_drawn_from_the_run_numbers(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    a, _ = await two_ics(client, app, sessionmaker, make_key)
    reader = await make_key("read", ics_code=a.code)
    svg = await client.get(f"/v1/projections/{a.run_id}/chart.svg", headers=reader)
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    text = svg.text
    assert "Scenario 'baseline' v1" in text
    assert "Source: OneWorkforce projection" in text
    assert "FTE" in text
    assert "Year (as at 31 March)" in text
    lines = principal_paths(text)
    assert set(lines) == {"demand_fte", "supply_fte", "gap_fte"}
    for measure, ys in lines.items():
        results = (
            await client.get(
                f"/v1/projections/{a.run_id}/results",
                params={"area": a.code, "role": "all", "measure": measure, "limit": 100},
                headers=reader,
            )
        ).json()["items"]
        values = [r["principal"] for r in sorted(results, key=lambda r: r["year"])]
        assert drawn_from(values, ys), measure
    one = await client.get(
        f"/v1/projections/{a.run_id}/chart.png",
        params={"area": a.lad, "measure": "gap_fte", "year_from": 2026},
        headers=reader,
    )
    assert one.status_code == 200
    assert one.content[:8] == b"\x89PNG\r\n\x1a\n"
    bad = await client.get(
        f"/v1/projections/{a.run_id}/chart.svg?measure=happiness", headers=reader
    )
    assert_problem(bad, 422, "validation_failed")
    missing = await client.get(f"/v1/projections/{uuid.uuid4()}/chart.svg", headers=reader)
    assert_problem(missing, 404, "projection_not_found")
    no_role = await client.get(
        f"/v1/projections/{a.run_id}/chart.svg?role=no-such-role", headers=reader
    )
    assert_problem(no_role, 404, "results_not_found")
    anonymous = await client.get(f"/v1/projections/{a.run_id}/chart.svg")
    assert anonymous.status_code == 401


async def test_projection_pages_tables_and_charts_follow_the_key(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    a, b = await two_ics(client, app, sessionmaker, make_key)
    reader = await make_key("read", ics_code=a.code, name="lead-a")
    await sign_in(client, reader)
    latest = await client.get(f"/explorer/projections?area={a.code}")
    assert latest.status_code == 303
    assert latest.headers["location"] == f"/explorer/projections/{a.run_id}?area={a.code}"
    page = await client.get(latest.headers["location"])
    assert page.status_code == 200
    html = page.text
    for heading in ("Demand, supply and gap", "What changes the gap", "Gap by local authority",
                    "Scenario against baseline"):  # fmt: skip
        assert heading in html
    assert f'src="/explorer/projections/{a.run_id}/charts/projection?area={a.code}"' in html
    # Every chart as SVG and PNG, every table as CSV and xlsx.
    base = f"/explorer/projections/{a.run_id}"
    for name in ("projection", "explanation", "gap-by-lad"):
        svg = await client.get(f"{base}/charts/{name}?area={a.code}&format=svg")
        assert svg.status_code == 200, name
        assert svg.headers["content-type"] == "image/svg+xml"
        png = await client.get(f"{base}/charts/{name}?area={a.code}&format=png")
        assert png.content[:4] == b"\x89PNG", name
        table = await client.get(f"{base}/tables/{name}?area={a.code}&format=csv")
        assert table.status_code == 200, name
        xlsx = await client.get(f"{base}/tables/{name}?area={a.code}&format=xlsx")
        assert xlsx.content[:2] == b"PK", name
    # The explanation between two chosen years is the API's.
    explained = await client.get(f"{base}/tables/explanation?area={a.code}&from=2026&to=2028")
    api = (
        await client.get(
            f"/v1/projections/{a.run_id}/explain",
            params={"area": a.code, "from": 2026, "to": 2028},
            headers=reader,
        )
    ).json()
    assert f"Total change,{round(api['total_change_fte'], 1)}" in explained.text
    # A sector: principal projection only, said in the table.
    sector = await client.get(f"{base}?area={a.code}&sector=health")
    assert sector.status_code == 200
    assert "not the sum of its roles&#39; ranges" in sector.text
    sector_csv = await client.get(f"{base}/tables/projection?area={a.code}&sector=health")
    assert sector_csv.text.splitlines()[1].endswith(",,,")  # no percentiles for a sector
    # Nothing of another ICS's run, page, table or chart; nothing outside the run.
    for path in (
        f"/explorer/projections/{b.run_id}",
        f"/explorer/projections/{b.run_id}/tables/projection?format=csv",
        f"/explorer/projections/{b.run_id}/charts/projection?format=png",
        f"{base}?area={b.code}",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
    runs = await client.get("/explorer/projections")
    assert str(a.run_id)[:8] in runs.text
    assert str(b.run_id)[:8] not in runs.text
    missing = await client.get(f"{base}/charts/nothing")
    assert missing.status_code == 404
    # An unknown table or a format the pages do not offer: a 4xx, never a file.
    no_table = await client.get(f"{base}/tables/nothing?area={a.code}&format=csv")
    assert no_table.status_code == 404
    assert "text/csv" not in no_table.headers["content-type"]
    bad_format = await client.get(f"{base}/tables/projection?area={a.code}&format=pdf")
    assert bad_format.status_code == 422
    bad_image = await client.get(f"{base}/charts/projection?area={a.code}&format=gif")
    assert bad_image.status_code == 422


async def test_agreements_page_shows_only_the_keys_ics(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    a, b = await two_ics(client, app, sessionmaker, make_key)
    created = await client.post(
        "/v1/agreements",
        json={
            "title": "Alpha winter mutual aid",
            "ics_code": a.code,
            "mode": "crisis",
            "start_date": "2025-01-01",
            "end_date": "2030-12-31",
            "parties": [{"organisation_id": str(i)} for i in a.organisation_ids],
            "scope": [
                {
                    "role_code": "expl-nurse",
                    "lending_organisation_id": str(a.organisation_ids[0]),
                    "fte_cap": 5,
                }
            ],
        },
        headers=a.admin,
    )
    assert created.status_code == 201, created.text
    await sign_in(client, await make_key("read", ics_code=a.code, name="lead-a"))
    own = await client.get("/explorer/agreements")
    assert own.status_code == 200
    assert "Alpha winter mutual aid" in own.text
    assert "draft" in own.text
    assert a.organisation_names[0] in own.text
    # In words: the mode, and the role's name rather than its code.
    assert "For a crisis," in own.text
    assert "<td>Nurse</td>" in own.text
    client.cookies.clear()
    await sign_in(client, await make_key("read", ics_code=b.code, name="lead-b"))
    other = await client.get("/explorer/agreements")
    assert other.status_code == 200
    assert "Alpha winter mutual aid" not in other.text
    assert "no staff-sharing agreements you may see" in other.text


async def test_a_scenario_is_compared_with_the_baseline(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
    seeded_roles: list[str],
) -> None:
    a = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_A, lad=LAD_A1, label="Alpha"
    )
    scenario = await client.post(
        "/v1/scenarios",
        json={
            "name": "recruit-more",
            "title": "Recruit a fifth more",
            "ics_code": a.code,
            "parameters": {"recruitment_change": {"default": 0.2}},
            "rationale": {
                "recruitment_change": {"rationale": "Recruitment drive", "source": "ICS plan"}
            },
        },
        headers=a.admin,
    )
    assert scenario.status_code == 201, scenario.text
    requested = await client.post(
        "/v1/projections",
        json={"scope": a.code, "scenario": "recruit-more", "horizon": 5, "iterations": 20,
              "seed": 3},
        headers=a.admin,
    )  # fmt: skip
    assert requested.status_code == 202, requested.text
    await app.state.sender.join()
    other = requested.json()["id"]
    await sign_in(client, await make_key("read", ics_code=a.code))
    page = await client.get(f"/explorer/projections/{a.run_id}?area={a.code}")
    assert page.status_code == 200
    assert f'<option value="{other}" selected>recruit-more v1' in page.text
    assert f"/explorer/projections/{a.run_id}/charts/comparison?area={a.code}" in page.text
    table = await client.get(
        f"/explorer/projections/{a.run_id}/tables/comparison?area={a.code}&format=csv"
    )
    api = (
        await client.get(
            "/v1/projections/compare",
            params={"base": a.run_id, "other": other, "area": a.code, "measure": "gap_fte",
                    "group": "all"},
            headers=a.admin,
        )
    ).json()  # fmt: skip
    last = max(api["rows"], key=lambda r: r["year"])
    assert f"{last['year']},{round(last['base_principal'], 1)}," in table.text
    # The share of draws with a smaller gap, in percent; none in the base year, where every
    # paired draw is the same (0 would read as "worse in every draw").
    lines = table.text.splitlines()
    assert lines[0].endswith(",draws_with_smaller_gap_pct")
    first = min(api["rows"], key=lambda r: r["year"])
    assert first["share_of_draws_better"] == 0.0
    assert lines[1].startswith(f"{first['year']},")
    assert lines[1].endswith(",")
    share = last["share_of_draws_better"]
    assert lines[-1].endswith(f",{round(share * 100, 1)}")
    chart = await client.get(
        f"/explorer/projections/{a.run_id}/charts/comparison?area={a.code}&format=svg"
    )
    assert chart.status_code == 200
    assert "Scenario 'recruit-more' against 'baseline'" in chart.text


async def test_charts_for_a_phone_and_the_gap_by_area_for_the_chosen_role(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    make_key: KeyFactory,
    reference: ReferenceLoadSummary,
) -> None:
    a = await ics_with_run(
        client, app, sessionmaker, make_key, code=ICB_A, lad=LAD_A1, label="Alpha"
    )
    reader = await make_key("read", ics_code=a.code)
    await sign_in(client, reader)
    base = f"/explorer/projections/{a.run_id}"
    page = await client.get(f"{base}?area={a.code}&role=expl-nurse")
    assert page.status_code == 200
    # Below 40rem the browser asks for the phone drawing of the same chart.
    assert (
        f'<source media="(max-width: 40rem)" srcset="{base}/charts/projection?area={a.code}'
        "&amp;role=expl-nurse&amp;layout=narrow"
    ) in page.text
    overview = await client.get(f"/explorer/areas/{a.code}")
    assert f'srcset="/explorer/areas/{a.code}/charts/population?layout=narrow"' in overview.text
    for name in ("projection", "explanation", "gap-by-lad"):
        wide = await client.get(f"{base}/charts/{name}?area={a.code}&role=expl-nurse")
        narrow = await client.get(
            f"{base}/charts/{name}?area={a.code}&role=expl-nurse&layout=narrow"
        )
        assert wide.status_code == narrow.status_code == 200, name
        assert 'width="576pt"' in wide.text, name  # 8 inches
        assert 'width="302.4pt"' in narrow.text, name  # 4.2 inches
    population = await client.get(f"/explorer/areas/{a.code}/charts/population?layout=narrow")
    assert 'width="302.4pt"' in population.text
    bad = await client.get(f"{base}/charts/projection?area={a.code}&layout=huge")
    assert bad.status_code == 422
    # The gap by local authority follows the chosen role, as the API reads it.
    assert "Gap for Nurse, largest shortfall first" in page.text
    table = await client.get(f"{base}/tables/gap-by-lad?area={a.code}&role=expl-nurse&format=csv")
    last = max(
        (
            await client.get(
                f"/v1/projections/{a.run_id}/results",
                params={"area": a.lad, "role": "expl-nurse", "measure": "gap_fte", "limit": 100},
                headers=reader,
            )
        ).json()["items"],
        key=lambda r: r["year"],
    )
    row = table.text.splitlines()[1].split(",")
    assert row[1] == a.lad
    assert float(row[3]) == round(last["principal"], 1)
    # A sector sums its roles' principal gaps and gives no percentiles.
    sector = await client.get(f"{base}/tables/gap-by-lad?area={a.code}&sector=health")
    assert sector.text.splitlines()[1].endswith(",,")


def test_numbers_and_headings_as_the_pages_write_them() -> None:
    # An estimate is not given to the person: 36,207 people with dementia reads 36,200.
    assert [_about(v) for v in (None, 456.4, 36_207, 49_450)] == ["-", "456", "36,200", "49,500"]
    # Table cells: thousands separated, years and ranks as they are, text untouched.
    assert _cell(85104.2, "fte") == "85,104.2"
    assert _cell(2043, "year") == "2043"
    assert _cell(12, "rank") == "12"
    assert _cell(None, "fte") == "-"
    assert _cell("E08000012", "area_code") == "E08000012"
    assert _heading("vacancy_rate_pct") == "vacancy rate %"
    assert _heading("fte_in_post") == "FTE in post"
