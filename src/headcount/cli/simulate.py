"""``headcount simulate``: play a realistic mux-embed audience against a server and say what
``/counts`` should read.

Decisions the issue left open (see docs/simulator.md):

- ``--duration`` is wall-clock seconds; ``--speed`` (alias ``--rate``) is how many simulated
  seconds pass per wall second, so ``--speed 10`` turns every 10 s heartbeat into a POST per
  second. The server measures its liveness window in wall seconds, so the model's window is
  ``--liveness-window * --speed`` simulated seconds.
- The default ``--seed`` is random (and printed): view ids come from the seed, and a second run
  with the same ids would be deduplicated against the first by the server.
- The printed counts are exact from ``settle`` wall seconds before the end to ``settle`` after it
  (``settle = min(5, window - 10 s simulated)``): the audience never lets a silent view expire
  in that band, so ``/counts`` read right after the run must equal them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import click
from rich.console import Console
from rich.live import Live

from headcount.cli import main
from headcount.cli.simulate_report import (
    PlainProgress,
    failure_lines,
    print_summary,
    progress_view,
    run_summary,
)
from headcount.sim.audience import MIN_LIVENESS_WINDOW, Audience, AudiencePlan
from headcount.sim.runner import AudienceRunner, RunProgress, aiohttp_sender
from headcount.sim.server_counts import ServerCounts

SETTLE_WALL_SECONDS = 5.0
SERVER_POLL_SECONDS = 2.0
FINAL_AGREEMENT_TIMEOUT = 5.0  # wall seconds the final comparison waits for /counts to agree
SEND_CONNECTIONS = 16  # keep-alive connections to the collector (players post in parallel)
SEND_TIMEOUT = 10.0  # seconds for one POST, as a browser's fetch would give up


def _private_key_text(value: str) -> str:
    """``--private-key`` is a file (PEM, or base64 as the System API returns it) or the key."""
    try:
        path = Path(value).expanduser()
        if path.is_file():
            return path.read_text().strip()
    except OSError:  # a base64 key is longer than any file name may be
        pass
    return value


async def _simulate(
    plan: AudiencePlan,
    *,
    url: str,
    speed: float,
    top: int,
    key_id: str | None,
    private_key: str | None,
    console: Console,
    live_display: bool,
    plain_echo: Callable[[str], None],
    options: dict[str, Any],
) -> dict[str, Any]:
    audience = Audience(plan)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SEND_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT),
    )
    try:
        server = (
            ServerCounts(url, key_id=key_id, private_key=private_key)
            if key_id and private_key
            else None
        )
        runner = AudienceRunner(
            audience,
            aiohttp_sender(session, f"{url}/"),
            speed=speed,
            concurrency=SEND_CONNECTIONS,
        )

        async def poll_server() -> None:
            assert server is not None
            while True:
                await server.read(list(audience.expected_counts())[:top])
                await asyncio.sleep(SERVER_POLL_SECONDS)

        poller = asyncio.create_task(poll_server()) if server and live_display else None
        try:
            if live_display:
                # Transient: the final table (with a fresh /counts reading) replaces it.
                with Live(console=console, refresh_per_second=4, transient=True) as live:

                    def show(progress: RunProgress) -> None:
                        live.update(progress_view(audience, progress, top, server, speed))

                    progress = await runner.run(show)
            else:
                progress = await runner.run(PlainProgress(audience, plain_echo))
        finally:
            if poller is not None:
                poller.cancel()
        if server is not None:
            # Bounded: /counts is cached for up to a second and swept every second.
            deadline = time.monotonic() + FINAL_AGREEMENT_TIMEOUT
            wanted = dict(list(audience.expected_counts().items())[:top])
            while await server.read(list(wanted)) != wanted and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            await server.aclose()
    finally:
        await session.close()
    return run_summary(audience, progress, server, options)


@main.command("simulate")
@click.option("--url", required=True, help="The server, e.g. http://127.0.0.1:8000.")
@click.option(
    "--env-key", required=True, envvar="HEADCOUNT_ENV_KEY", help="The environment's env key."
)
@click.option("--viewers", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("--videos", default=3, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--duration",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Wall-clock seconds to run.",
)
@click.option(
    "--speed",
    "--rate",
    "speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Simulated seconds per wall second (10: a POST per second per playing view).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Reproduce a run (default: random).")
@click.option(
    "--liveness-window",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    envvar="HEADCOUNT_LIVENESS_WINDOW",
    help="The server's liveness window, in its (wall) seconds.",
)
@click.option("--count-paused", is_flag=True, help="The server counts paused views too.")
@click.option(
    "--mean-watch",
    type=click.FloatRange(min=0, min_open=True),
    help="Mean simulated seconds a view lasts (default: the run's simulated length, >= 30).",
)
@click.option("--video-prefix", default="sim-video-", show_default=True)
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the expected counts as JSON.")
@click.option(
    "--key-id",
    envvar="MUX_SIGNING_KEY",
    help="A signing key id (or set MUX_SIGNING_KEY): also show what /counts reads.",
)
@click.option(
    "--private-key",
    envvar="MUX_PRIVATE_KEY",
    help="That key's private key: a file, or the base64 the System API returned "
    "(or set MUX_PRIVATE_KEY).",
)
def simulate(
    url: str,
    env_key: str,
    viewers: int,
    videos: int,
    duration: float,
    speed: float,
    seed: int | None,
    liveness_window: float,
    count_paused: bool,
    mean_watch: float | None,
    video_prefix: str,
    top: int,
    as_json: bool,
    key_id: str | None,
    private_key: str | None,
) -> None:
    """Send realistic mux-embed beacons from simulated viewers; print the counts to expect."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("use a URL like http://127.0.0.1:8000", param_hint="--url")
    if bool(key_id) != bool(private_key):
        raise click.UsageError("--key-id and --private-key go together.")
    window = liveness_window * speed
    if window < MIN_LIVENESS_WINDOW:
        raise click.UsageError(
            f"The server's liveness window covers {window:g} simulated seconds at this speed; "
            f"the simulator needs at least {MIN_LIVENESS_WINDOW:g} (a playing view posts every "
            "10 simulated seconds, 30 after a failed POST). Raise --speed or the server's "
            "--liveness-window."
        )
    if key_id and private_key:
        private_key = _private_key_text(private_key)
        from headcount import sign_viewer_counts

        try:  # a bad key is a usage error now, not a failure in the middle of the run
            sign_viewer_counts("probe", type="video_id", key_id=key_id, private_key=private_key)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--private-key") from None
    seed = secrets.randbelow(2**31) if seed is None else seed
    settle = min(SETTLE_WALL_SECONDS * speed, window - 10)
    plan = AudiencePlan(
        env_key=env_key,
        viewers=viewers,
        videos=videos,
        duration=duration * speed,
        seed=seed,
        liveness_window=window,
        settle=settle,
        beacon_domain=parts.netloc,
        video_prefix=video_prefix,
        epoch_ms=int(time.time() * 1000),
        count_paused=count_paused,
        mean_watch=mean_watch,
    )
    console = Console(stderr=as_json)
    options = {
        "url": url,
        "env_key": env_key,
        "seed": seed,
        "speed": speed,
        "duration": duration,
        "liveness_window": liveness_window,
        "settle_seconds": settle / speed,
    }
    summary = asyncio.run(
        _simulate(
            plan,
            url=url,
            speed=speed,
            top=top,
            key_id=key_id,
            private_key=private_key,
            console=console,
            live_display=console.is_terminal,
            plain_echo=functools.partial(click.echo, err=as_json),
            options=options,
        )
    )
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_summary(console, summary, top)
    if summary["errors"] or summary["rejected_events"]:
        if as_json:  # the lines on stderr; stdout stays one JSON document
            for line in failure_lines(summary):
                click.echo(line, err=True)
        raise SystemExit(1)
