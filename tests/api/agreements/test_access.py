"""Who may read and change an agreement: the ICS's admins manage it; its keys and the parties'
keys read it; anyone else sees nothing (404), and a key without the scope gets 403."""

from __future__ import annotations

from typing import Any

from tests.api.agreements.conftest import Api, Headers
from tests.helpers import assert_problem

ACTIONS: list[tuple[str, dict[str, Any] | None]] = [
    ("activate", None),
    ("suspend", None),
    ("resume", None),
    ("terminate", {"reason": "x"}),
]


async def test_readers(api: Api) -> None:
    w = api.world
    agreement_id = (await api.create_ok())["id"]
    readers: list[Headers] = [
        w.admin_a,
        w.global_admin,
        w.read_a,
        w.read_global,
        w.submit[w.a1.id],
        w.read[w.a1.id],
        w.submit[w.a2.id],
    ]
    for headers in readers:
        response = await api.get(agreement_id, headers=headers)
        assert response.status_code == 200, response.text
    for headers in (w.admin_b, w.submit[w.a3.id], w.submit[w.b1.id]):
        assert_problem(await api.get(agreement_id, headers=headers), 404, "agreement_not_found")
    missing = await api.get("00000000-0000-0000-0000-000000000000")
    assert_problem(missing, 404, "agreement_not_found")
    assert_problem(
        await api.client.get(f"/v1/agreements/{agreement_id}"), 401, "missing_credentials"
    )


async def test_another_icss_admin_and_outsiders_get_404_for_writes(api: Api) -> None:
    w = api.world
    agreement = await api.active()
    agreement_id = agreement["id"]
    etag = await api.etag(agreement_id)
    admin_b = w.admin_b
    assert_problem(
        await api.patch(agreement_id, {"title": "Mine now"}, headers=admin_b, etag=etag),
        404,
        "agreement_not_found",
    )
    for action, json in ACTIONS:
        response = await api.act(agreement_id, action, headers=admin_b, json=json, etag=etag)
        assert_problem(response, 404, "agreement_not_found")
    outsider = await api.act(
        agreement_id,
        "sign",
        headers=w.submit[w.b1.id],
        json={"signatory_name": "X", "signatory_role": "Y"},
        etag=etag,
    )
    assert_problem(outsider, 404, "agreement_not_found")
    assert (await api.get(agreement_id)).json()["version"] == agreement["version"]


async def test_keys_without_the_admin_scope_get_403_for_changes(api: Api) -> None:
    w = api.world
    agreement = await api.active()
    agreement_id = agreement["id"]
    etag = await api.etag(agreement_id)
    for headers in (w.read_a, w.read_global, w.submit[w.a1.id], w.read[w.a1.id]):
        response = await api.patch(agreement_id, {"title": "x"}, headers=headers, etag=etag)
        assert_problem(response, 403, "insufficient_scope")
        for action, json in ACTIONS:
            response = await api.act(agreement_id, action, headers=headers, json=json, etag=etag)
            assert_problem(response, 403, "insufficient_scope")
    for headers in (w.read_a, w.read_global):
        response = await api.act(
            agreement_id,
            "sign",
            headers=headers,
            json={"signatory_name": "X", "signatory_role": "Y", "organisation_id": str(w.a1.id)},
            etag=etag,
        )
        assert_problem(response, 403, "insufficient_scope")
    assert (await api.get(agreement_id)).json()["version"] == agreement["version"]


async def test_a_global_admin_manages_every_ics(api: Api) -> None:
    agreement_id = (await api.active())["id"]
    suspended = await api.act(agreement_id, "suspend", headers=api.world.global_admin)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
