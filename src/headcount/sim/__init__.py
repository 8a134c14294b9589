"""The audience simulator: realistic mux-embed beacons from simulated viewers, and the counts a
correct server shows for them. ``headcount simulate`` is its command line; the benchmarks reuse
:class:`Audience` to make realistic bodies (pure and seedable: no I/O, no clock)."""

from __future__ import annotations

from headcount.sim.audience import MIN_LIVENESS_WINDOW, Audience, AudiencePlan, AudienceStats
from headcount.sim.beacons import PageSetup, PlayerBeacons, VideoSetup, encode_body, new_uuid
from headcount.sim.expected import ExpectedCounts
from headcount.sim.player import FailureMode, Player, Post
from headcount.sim.runner import (
    AudienceRunner,
    RunProgress,
    Sender,
    aiohttp_sender,
    httpx_sender,
)
from headcount.sim.server_counts import ServerCounts

__all__ = [
    "MIN_LIVENESS_WINDOW",
    "Audience",
    "AudiencePlan",
    "AudienceRunner",
    "AudienceStats",
    "ExpectedCounts",
    "FailureMode",
    "PageSetup",
    "Player",
    "PlayerBeacons",
    "Post",
    "RunProgress",
    "Sender",
    "ServerCounts",
    "VideoSetup",
    "aiohttp_sender",
    "encode_body",
    "httpx_sender",
    "new_uuid",
]
