"""Hostile bodies against a live API process: the key is checked before any body is read, and
JSON routes never accept the upload limit, so huge bodies cost the server (almost) nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.helpers import KeyFactory
from tests.live import LiveApi, live_api

MIB = 1024 * 1024
BODY_BYTES = 300 * MIB
CONCURRENT = 10
MEMORY_BOUND_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[LiveApi]:
    with live_api(database_url, rate_limit_enabled="false") as live:
        yield live


async def _send_huge_body(
    port: int, path: str, headers: dict[str, str], *, chunked: bool
) -> tuple[int, dict[str, str], float]:
    """POST a 300 MiB body as fast as the server takes it; stop once it answers.

    Returns the status, the response headers and the seconds until the answer came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(BODY_BYTES)}
    head = {"Host": "127.0.0.1", "Content-Type": "text/csv", **framing, **headers}
    writer.write(
        f"POST {path} HTTP/1.1\r\n".encode()
        + b"".join(f"{name}: {value}\r\n".encode() for name, value in head.items())
        + b"\r\n"
    )
    started = time.perf_counter()
    chunk = b"x" * MIB

    async def pump() -> None:
        for _ in range(BODY_BYTES // MIB):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    sending = asyncio.create_task(pump())
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=60)
        elapsed = time.perf_counter() - started
        response_headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), timeout=60)) not in (
            b"\r\n",
            b"",
        ):
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await sending
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return int(status_line.split()[1]), response_headers, elapsed


async def _watch_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("key_kind", ["none", "read"])
async def test_ten_huge_bodies_to_json_routes_cost_no_memory(
    api: LiveApi, make_key: KeyFactory, key_kind: str
) -> None:
    headers = await make_key("read") if key_kind == "read" else {}
    process = psutil.Process(api.process.pid)
    # Warm the process up (imports, the first connection, the key cache) before the baseline.
    await _send_small(api, headers)
    baseline = process.memory_info().rss
    peak = [baseline]
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_rss(api.process.pid, peak, stop))
    targets = ["/v1/keys", "/v1/scenarios", "/v1/organisations", "/v1/projections", "/v1/roles"]
    try:
        answers = await asyncio.gather(
            *(
                _send_huge_body(api.port, targets[i % len(targets)], headers, chunked=bool(i % 2))
                for i in range(CONCURRENT)
            )
        )
    finally:
        stop.set()
        await watcher
    expected = 401 if key_kind == "none" else 403
    assert [status for status, _, _ in answers] == [expected] * CONCURRENT
    # The connection is kept (closing with unread input would reset it and lose the answer);
    # the server discards the rest of the body in constant memory.
    assert all(h.get("connection") != "close" for _, h, _ in answers)
    # Loose on purpose: the bound that matters is memory; each answer comes at once.
    assert max(elapsed for _, _, elapsed in answers) < 5.0
    growth = peak[0] - baseline
    assert growth < MEMORY_BOUND_BYTES, f"the API grew by {growth / MIB:.1f} MiB"
    assert api.process.poll() is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_json_route_refuses_a_body_over_the_json_limit_even_as_csv(
    api: LiveApi, make_key: KeyFactory
) -> None:
    """An admin key may send a body, but a JSON route stops reading at the JSON limit."""
    admin = await make_key("admin")
    process = psutil.Process(api.process.pid)
    await _send_small(api, admin)
    baseline = process.memory_info().rss
    answers = await asyncio.gather(
        *(_send_huge_body(api.port, "/v1/scenarios", admin, chunked=bool(i % 2)) for i in range(4))
    )
    assert [status for status, _, _ in answers] == [413] * 4
    growth = process.memory_info().rss - baseline
    assert growth < MEMORY_BOUND_BYTES, f"the API grew by {growth / MIB:.1f} MiB"


async def _send_small(api: LiveApi, headers: dict[str, str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"GET /v1/roles HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode())
    await writer.drain()
    await reader.read()
    writer.close()
