"""SQL adapter of the ControlStore port — placeholder until the Foundation issue lands."""

from __future__ import annotations

from headcount.stores.control import ControlStore


def open_control_store(url: str) -> ControlStore:
    raise NotImplementedError("the SQL control store is not built yet")
