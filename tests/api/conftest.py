"""Fixtures the API tests share: a real local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.webhooks.receiver import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()
