import json

import pytest

from headcount.errors import (
    BadRequest,
    Forbidden,
    HeadcountError,
    HeadersTooLarge,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    StoreUnavailable,
    TokenRefused,
    Unauthorized,
    UriTooLong,
    error_response,
)


@pytest.mark.parametrize(
    ("exc", "status", "error_type"),
    [
        (BadRequest("x"), 400, "invalid_parameters"),
        (RequestTimeout("x"), 408, "request_timeout"),
        (PayloadTooLarge("x"), 413, "payload_too_large"),
        (UriTooLong("x"), 414, "uri_too_long"),
        (HeadersTooLarge("x"), 431, "headers_too_large"),
        (Unauthorized(), 401, "unauthorized"),
        (Forbidden("x"), 403, "forbidden"),
        (TokenRefused("x", error_type="expired_token"), 403, "expired_token"),
        (TokenRefused("x"), 403, "invalid_token"),
        (NotFound(), 404, "not_found"),
        (MethodNotAllowed(), 405, "method_not_allowed"),
        (StoreUnavailable(), 503, "service_unavailable"),
        (Overloaded(), 503, "service_unavailable"),
        (HeadcountError(), 500, "internal_error"),
    ],
)
def test_every_error_maps_to_status_and_mux_envelope(
    exc: HeadcountError, status: int, error_type: str
) -> None:
    got_status, body = error_response(exc)
    assert got_status == status
    assert json.loads(body) == {"error": {"type": error_type, "messages": [exc.message]}}


def test_unauthorized_says_what_mux_says() -> None:
    _, body = error_response(Unauthorized())
    assert json.loads(body)["error"]["messages"] == ["Unauthorized request"]
