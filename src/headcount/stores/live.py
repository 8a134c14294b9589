"""The ``LiveStore`` port: views and the counters kept from their transitions.

Adapters: memory (default, one process). See DESIGN.md "Ports and adapters".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Counts", "LiveStore"]


@dataclass(frozen=True, slots=True)
class Counts:
    views: int
    viewers: int


class LiveStore(Protocol):
    @property
    def updated_at(self) -> float:
        """Epoch seconds when the counters were last brought up to date (the last sweep)."""
        ...

    async def counts(self, environment_id: str, id_type: str, id_value: str) -> Counts: ...

    async def start(self, now: float) -> None: ...

    async def close(self, now: float) -> None: ...
