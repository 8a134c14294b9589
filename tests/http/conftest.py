"""The ``site`` fixture of the HotPathProtocol tests (``test_protocol_*.py``): module-scoped,
so each of those modules gets its own server per live store (memory, then Redis); and
``live_site``, one server over the memory live store per module, for the OpenAPI tests."""

from tests.http.openapi_kit import live_site  # noqa: F401
from tests.http.protocol_site import site  # noqa: F401
