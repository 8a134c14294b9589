"""``CountsClient`` against a real ``headcount serve``, ``AsyncCountsClient`` against the app
in-process, and the parsing of answers that are not counts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from headcount import (
    AsyncCountsClient,
    CountsAPIError,
    CountsClient,
    ViewerCounts,
    sign_viewer_counts,
)
from headcount.http.app import HeadcountApp
from headcount.sdk.client import parse_counts_response
from headcount.stores.control_memory import MemoryControlStore
from tests.conftest import FakeClock
from tests.live_counts import CountsServer
from tests.token_kit import Tenant, pkcs1_pem


def token_for(server: CountsServer, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "type": "video",
        "key_id": server.key_id,
        "private_key": server.private_key,
    }
    arguments.update(overrides)
    return sign_viewer_counts("video-1", **arguments)  # type: ignore[arg-type]


def test_get_returns_typed_counts(counts_server: CountsServer) -> None:
    with CountsClient(counts_server.base_url) as client:
        counts = client.get(token_for(counts_server))
    assert isinstance(counts, ViewerCounts)
    assert (counts.views, counts.viewers) == (0, 0)
    assert counts.updated_at.tzinfo is not None
    assert counts.updated_at.utcoffset() == timedelta(0)
    # The server started moments ago and sweeps every second.
    assert abs(datetime.now(UTC) - counts.updated_at) < timedelta(minutes=5)


@pytest.mark.parametrize("suffix", ["", "/", "/counts", "/counts/"])
def test_base_url_spellings(counts_server: CountsServer, suffix: str) -> None:
    with CountsClient(counts_server.base_url + suffix) as client:
        assert client.url == counts_server.base_url + "/counts"
        assert client.get(token_for(counts_server)).views == 0


def test_refused_token_raises_with_the_envelope(counts_server: CountsServer) -> None:
    token = token_for(counts_server, key_id="not-our-key")
    with CountsClient(counts_server.base_url) as client, pytest.raises(CountsAPIError) as caught:
        client.get(token)
    error = caught.value
    assert error.status_code == 403
    assert error.error_type == "unknown_key"
    assert error.messages and "kid" in error.messages[0]
    assert error.envelope == {"error": {"type": "unknown_key", "messages": error.messages}}
    assert str(error).startswith("403 unknown_key: ")


def test_missing_token_raises_400(counts_server: CountsServer) -> None:
    with CountsClient(counts_server.base_url) as client, pytest.raises(CountsAPIError) as caught:
        client.get("")
    assert (caught.value.status_code, caught.value.error_type) == (400, "invalid_parameters")


@pytest.mark.anyio
async def test_async_client_in_process(
    app: HeadcountApp, clock: FakeClock, control: MemoryControlStore
) -> None:
    tenant = Tenant(control, "acme", clock.now)
    clock.now = time.time()  # sign_viewer_counts stamps exp from the real clock
    token = sign_viewer_counts(
        "video-1", key_id=tenant.key_id, private_key=pkcs1_pem(tenant.key), expires_in=60
    )
    transport = httpx.ASGITransport(app=app)
    async with AsyncCountsClient("http://testserver", transport=transport) as client:
        counts = await client.get(token)
        assert (counts.views, counts.viewers) == (0, 0)
        clock.advance(3600)
        with pytest.raises(CountsAPIError) as caught:
            await client.get(token)
    assert caught.value.error_type == "expired_token"


def _response(
    status: int, content: bytes, content_type: str = "application/json"
) -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": content_type})


def test_an_error_without_envelope_is_still_a_counts_api_error() -> None:
    with pytest.raises(CountsAPIError) as caught:
        parse_counts_response(_response(502, b"<html>Bad Gateway</html>", "text/html"))
    assert (caught.value.status_code, caught.value.error_type) == (502, "http_error")
    assert caught.value.envelope is None


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"data":[]}',
        b'{"data":[{"views":1}]}',
        b"[1]",
        b'{"data":[{"views":1,"viewers":1,"updated_at":"yesterday"}]}',
    ],
)
def test_a_malformed_success_is_a_counts_api_error(body: bytes) -> None:
    with pytest.raises(CountsAPIError) as caught:
        parse_counts_response(_response(200, body))
    assert caught.value.error_type == "invalid_response"


def test_mux_example_answer_parses() -> None:
    body = b'{"data":[{"views":95,"viewers":94,"updated_at":"2021-09-28T18:21:19Z"}]}'
    assert parse_counts_response(_response(200, body)) == ViewerCounts(
        95, 94, datetime(2021, 9, 28, 18, 21, 19, tzinfo=UTC)
    )
