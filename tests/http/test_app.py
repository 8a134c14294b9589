import httpx
import pytest

from headcount.runtime import Runtime

pytestmark = pytest.mark.anyio


async def test_unknown_path_answers_with_mux_not_found_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/", "/collect", "/counts"])
async def test_preflight_is_answered_with_cors(client: httpx.AsyncClient, path: str) -> None:
    response = await client.options(path)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-methods" in response.headers


@pytest.mark.parametrize("freeze", [False, True])
async def test_the_server_process_freezes_what_start_up_built(
    runtime: Runtime, freeze: bool
) -> None:
    import gc

    from headcount.http.app import HeadcountApp

    app = HeadcountApp(runtime, freeze_after_start=freeze)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    gc.unfreeze()
    try:
        await app({"type": "lifespan"}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert (gc.get_freeze_count() > 0) is freeze
    finally:
        gc.unfreeze()


async def test_a_bug_on_the_asgi_way_of_a_hot_path_is_a_500_envelope_with_cors(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    from headcount.http.app import HeadcountApp
    from headcount.http.reply import Reply

    class BrokenCounts(HeadcountApp):
        async def _counts(self, query_string: bytes) -> Reply:
            raise RuntimeError("a bug in /counts")

    transport = httpx.ASGITransport(app=BrokenCounts(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.get("/counts", params={"token": "x"})
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "internal_error"
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "a bug in /counts" in caplog.text  # logged with its traceback
