from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_counts import CountsServer, start_counts_server


@pytest.fixture(scope="session")
def counts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountsServer]:
    """One live server for the SDK tests (starting one costs ~1.5 s)."""
    started = start_counts_server(tmp_path_factory.mktemp("sdk-server"))
    try:
        yield started
    finally:
        started.server.kill()
