"""The ``site`` fixture of the HotPathProtocol tests (``test_protocol_*.py``): module-scoped,
so each of those modules gets its own server per live store (memory, then Redis)."""

from tests.http.protocol_site import site  # noqa: F401
