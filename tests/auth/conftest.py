from __future__ import annotations

import pytest

from headcount.stores.control_memory import MemoryControlStore
from tests.conftest import FakeClock
from tests.token_kit import Tenant


@pytest.fixture
def tenant(control: MemoryControlStore, clock: FakeClock) -> Tenant:
    return Tenant(control, "acme", clock.now)
