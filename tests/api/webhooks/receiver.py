"""A real local HTTP receiver for webhook tests: records every request, answers with the
statuses it is told to (then 200); and helpers to subscribe it and read what it got."""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from shared.config import Settings


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def answer(self, path: str, *statuses: int) -> None:
        with self.lock:
            self.answers[path].extend(statuses)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


def start_receiver() -> Receiver:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder[0]
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                queued = receiver.answers[self.path]
                status = queued.popleft() if queued else 200
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver error")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server=server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder[0]


async def subscribe(
    client: httpx.AsyncClient, key: dict[str, str], url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    """Create a subscription over the API; its body, with the secret shown once."""
    response = await client.post(
        "/v1/webhooks", json={"url": url, "event_types": events, **extra}, headers=key
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["secret"].startswith("whsec_")
    assert response.headers["location"] == f"/v1/webhooks/{body['id']}"
    return body


async def deliveries(
    client: httpx.AsyncClient, key: dict[str, str], webhook_id: str
) -> list[dict[str, Any]]:
    """The subscription's delivery log (first page, newest first)."""
    response = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=key)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def events_at(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    """The events one endpoint received, parsed, in arrival order."""
    return [json.loads(request.body) for request in receiver.at(path)]


@contextmanager
def local_webhooks(settings: Settings) -> Iterator[None]:
    """Let a running app deliver to a loopback http receiver, as the development setting does."""
    before = settings.webhook_allow_private_addresses, settings.webhook_allow_http
    settings.webhook_allow_private_addresses = settings.webhook_allow_http = True
    try:
        yield
    finally:
        settings.webhook_allow_private_addresses, settings.webhook_allow_http = before
