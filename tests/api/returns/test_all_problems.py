"""A return with many problems reports every one of them in one answer, one entry per field, in
row order, whether it came as JSON or CSV; a body that is not JSON says where it breaks."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.returns import json_format
from services.api.returns.csv_format import TEMPLATE_COLUMNS
from tests.api.returns.helpers import counts, line
from tests.factories import ensure_small_geography, make_organisation, make_role
from tests.helpers import KeyFactory, assert_problem

AS_AT = "2025-03-31"


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession], db: object) -> uuid.UUID:
    await ensure_small_geography(sessionmaker)
    for code in ("care-worker", "registered-nurse", "social-worker"):
        await make_role(sessionmaker, code)
    return (await make_organisation(sessionmaker, opened_on=date(2010, 1, 1))).id


def _broken_lines() -> list[dict[str, Any]]:
    return [
        line("care-worker", fte_in_post="lots", age_65_plus="x"),
        line("astronaut", bank_fte="2"),
        line("registered-nurse", vacant_fte=-1, colour="blue"),
        line("social-worker", headcount=40.5, sickness_days_12m=float("nan")),
    ]


EXPECTED = [
    (1, "fte_in_post", "not_a_number", "lots"),
    (1, "age_65_plus", "not_an_integer", "x"),
    (2, "role_code", "unknown_role", "astronaut"),
    (2, "bank_fte", "not_a_number", "2"),
    (3, "vacant_fte", "negative_value", "-1"),
    (3, "colour", "unknown_field", None),
    (4, "headcount", "not_an_integer", "40.5"),
    (4, "sickness_days_12m", "not_a_number", "NaN"),
]


async def test_a_json_return_reports_every_problem_once_in_row_order(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    # NaN is not JSON but common; it is one more value that is not a number.
    body = json.dumps({"as_at": AS_AT, "lines": _broken_lines()})
    problem = assert_problem(
        await client.post(
            f"/v1/organisations/{org}/returns",
            content=body.encode(),
            headers={**key, "Content-Type": "application/json"},
        ),
        422,
        "return_invalid",
    )
    found = [(e["row"], e["column"], e["code"], e.get("value")) for e in problem["errors"]]
    assert found == EXPECTED
    assert problem["error_count"] == len(EXPECTED)
    # Each entry names its JSON field; positions count from 0 as in the body.
    assert [e["field"] for e in problem["errors"]] == [
        f"lines.{row - 1}.{column}" for row, column, _, _ in EXPECTED
    ]
    assert {e["in"] for e in problem["errors"]} == {"body"}
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_a_csv_return_reports_the_same_problems_in_row_order(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = await make_key("submit", organisation_id=org)
    rows = [",".join(TEMPLATE_COLUMNS)]
    for item in _broken_lines():
        rows.append(",".join("" if item.get(c) is None else str(item[c]) for c in TEMPLATE_COLUMNS))
    problem = assert_problem(
        await client.post(
            f"/v1/organisations/{org}/returns?as_at={AS_AT}",
            content="\r\n".join(rows).encode(),
            headers={**key, "Content-Type": "application/octet-stream"},
        ),
        422,
        "return_invalid",
    )
    found = [(e["row"], e["column"], e["code"]) for e in problem["errors"]]
    # The same problems on file lines (header = 1), less those only JSON can have: a field no
    # line has, and a number sent as text.
    json_only = {"colour", "bank_fte"}
    assert found == [
        (row + 1, column, code) for row, column, code, _ in EXPECTED if column not in json_only
    ]
    assert all("field" not in e for e in problem["errors"])
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_date_problems_come_first_with_their_field(
    client: httpx.AsyncClient, make_key: KeyFactory, org: uuid.UUID
) -> None:
    key = await make_key("submit", organisation_id=org)
    body = {"as_at": "2009-12-31", "lines": [line(headcount=-1)]}
    problem = assert_problem(
        await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key),
        422,
        "return_invalid",
    )
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("as_at", "as_at_before_organisation_opened"),
        ("lines.0.headcount", "negative_value"),
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"as_at": "2025-03-31",\n "lines": [}', "line 2, column 12"),
        ('{"as_at": "2025-03-31", "lines": [{"headcount": 1,}]}', "line 1, column 51"),
        ("", "line 1, column 1"),
    ],
)
async def test_a_body_that_is_not_json_says_where_it_breaks(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    text: str,
    where: str,
) -> None:
    key = await make_key("submit", organisation_id=org)
    problem = assert_problem(
        await client.post(
            f"/v1/organisations/{org}/returns",
            content=text.encode(),
            headers={**key, "Content-Type": "application/json"},
        ),
        422,
        "validation_failed",
    )
    [error] = problem["errors"]
    assert error["field"] == "body"
    assert error["code"] == "json_invalid"
    assert where in error["message"]
    assert await counts(sessionmaker) == (0, 0, 0)


async def test_any_json_body_that_is_not_json_names_the_body(
    client: httpx.AsyncClient, make_key: KeyFactory, db: object
) -> None:
    key = await make_key("admin")
    problem = assert_problem(
        await client.post(
            "/v1/roles",
            content=b'{"code": "x",\n\n  "name": }',
            headers={**key, "Content-Type": "application/json"},
        ),
        422,
        "validation_failed",
    )
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("body", "json_invalid")
    assert "line 3, column 11" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": [line()]}, "as_at"),
        ({"as_at": AS_AT, "lines": []}, "lines"),
        ({"as_at": AS_AT, "lines": [line(), 5]}, "lines.1"),
        ({"as_at": AS_AT, "lines": [line()], "extra": 1}, "extra"),
    ],
)
async def test_a_malformed_envelope_names_its_field(
    client: httpx.AsyncClient,
    make_key: KeyFactory,
    org: uuid.UUID,
    body: dict[str, Any],
    field: str,
) -> None:
    key = await make_key("submit", organisation_id=org)
    problem = assert_problem(
        await client.post(f"/v1/organisations/{org}/returns", json=body, headers=key),
        422,
        "validation_failed",
    )
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize(
    ("sent", "text"),
    [
        ("32.5", "32.5"),
        ("1e2", "100"),
        ("1E-5", "0.00001"),
        ("1e309", "1e309"),
        ("123456789012345678901234567890123", "123456789012345678901234567890123"),
        ("NaN", "NaN"),
        ('"x "', "x"),
        ("true", "true"),
        ('[1, {"a": 2.50}]', '[1,{"a":2.50}]'),
        ("null", None),
    ],
)
def test_json_values_become_the_text_a_csv_cell_holds(sent: str, text: str | None) -> None:
    body = '{"as_at": "2025-03-31", "lines": [{"bank_fte": ' + sent + "}]}"
    _, rows, _ = json_format.parse(body.encode())
    assert rows[0]["bank_fte"] == text
