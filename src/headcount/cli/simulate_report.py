"""What ``headcount simulate`` shows: the live view on a terminal, plain progress lines
without one (a log, a pipe, CI), the final table and summary, and why POSTs failed or events
were rejected (the run then exits 1)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from headcount.cli.common import print_table
from headcount.sim.audience import Audience
from headcount.sim.runner import RunProgress
from headcount.sim.server_counts import ServerCounts
from headcount.stores.live import Counts

__all__ = [
    "PlainProgress",
    "failure_lines",
    "print_summary",
    "progress_view",
    "run_summary",
]


def progress_view(
    audience: Audience,
    progress: RunProgress,
    top: int,
    server: ServerCounts | None,
    speed: float,
) -> Group:
    plan = audience.plan
    expected = audience.expected_counts(progress.simulated)
    totals = audience.expected.totals(progress.simulated)
    stats = audience.stats
    header = Text.assemble(
        ("Headcount simulator ", "bold"),
        f"simulated {progress.simulated:,.0f}/{plan.duration:,.0f} s  "
        f"wall {progress.wall:,.1f}/{plan.duration / speed:,.1f} s  speed x{speed:g}\n",
        f"POSTs {progress.posts:,}  events {progress.events:,}  ",
        (f"errors {progress.errors:,}", "red" if progress.errors else ""),
        f"  rejected events {progress.rejected_events:,}  "
        f"simulated failures: {stats.lost} lost, {stats.unacknowledged} re-sent\n",
        ("views happening ", "bold"),
        f"{totals.views:,}",
        ("  viewers ", "bold"),
        f"{totals.viewers:,}",
        f"  (tabs opened {stats.tabs:,}, views started {stats.views_started:,})",
    )
    if progress.last_error:
        header.append(f"\nlast error: {progress.last_error}", style="red")
    return Group(header, _counts_table(audience, expected, top, server))


class PlainProgress:
    """Progress as plain lines, one every ``every`` wall seconds and one at the end: what a
    run prints where there is no terminal to redraw (a log, a pipe, CI)."""

    def __init__(self, audience: Audience, echo: Any, *, every: float = 5.0) -> None:
        self.audience = audience
        self.echo = echo
        self.every = every
        self._next = 0.0

    def __call__(self, progress: RunProgress) -> None:
        if progress.wall < self._next and not progress.finished:
            return
        self._next = progress.wall + self.every
        totals = self.audience.expected.totals(progress.simulated)
        plan = self.audience.plan
        self.echo(
            f"{'done' if progress.finished else 'progress'}: "
            f"simulated {progress.simulated:,.0f}/{plan.duration:,.0f} s, "
            f"wall {progress.wall:,.1f} s, {progress.posts:,} POSTs, {progress.events:,} "
            f"events, {progress.errors:,} errors, {progress.rejected_events:,} rejected events; "
            f"{totals.views:,} views happening, {totals.viewers:,} viewers"
        )


# What to do about a reason a run failed for, when Headcount can tell.
_FIXES = {
    "rejected: unknown_env_key": "--env-key is not an environment of this server "
    "(`headcount environments list` shows their env keys)",
    "HTTP 503 service_unavailable": "the server's live store is unavailable (see its log)",
    "ClientConnectorError": "nothing answers at --url",
}


def failure_lines(summary: dict[str, Any]) -> list[str]:
    """Why the run failed, one line per reason with its count; empty when nothing failed."""
    lines = []
    if summary["errors"]:
        lines.append(
            f"{summary['errors']:,} POSTs failed (last: {summary['last_error']}); the expected "
            "counts assume they arrived."
        )
    if summary["rejected_events"]:
        lines.append(
            f"{summary['rejected_events']:,} events were rejected by the collector; the expected "
            "counts assume they were accepted."
        )
    for reason, count in summary["failures"].items():
        fix = _FIXES.get(reason)
        lines.append(f"  {count:,} x {reason}" + (f": {fix}" if fix else ""))
    return lines


def _counts_table(
    audience: Audience,
    expected: dict[str, Counts],
    top: int,
    server: ServerCounts | None,
) -> Table:
    table = Table(title="top videos (expected)", title_justify="left")
    # Ids are for copying into `headcount token sign`: never wrapped or cut.
    table.add_column("video_id", no_wrap=True)
    table.add_column("playback_id", no_wrap=True)
    table.add_column("views", justify="right")
    table.add_column("viewers", justify="right")
    if server is not None:
        table.add_column("server\nviews", justify="right")
        table.add_column("server\nviewers", justify="right")
    for video_id, counts in list(expected.items())[:top]:
        row = [video_id, audience.playback_id(video_id), str(counts.views), str(counts.viewers)]
        if server is not None:
            seen = server.latest.get(video_id)
            style = "green" if seen == counts else "yellow"
            row += [
                f"[{style}]{seen.views if seen else '-'}[/]",
                f"[{style}]{seen.viewers if seen else '-'}[/]",
            ]
        table.add_row(*row)
    return table


def run_summary(
    audience: Audience,
    progress: RunProgress,
    server: ServerCounts | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    expected = audience.expected_counts()
    totals = audience.expected.totals(audience.now)
    videos = []
    for video_id, counts in expected.items():
        row: dict[str, Any] = {
            "video_id": video_id,
            "playback_id": audience.playback_id(video_id),
            "views": counts.views,
            "viewers": counts.viewers,
        }
        if server is not None and video_id in server.latest:
            seen = server.latest[video_id]
            row["server"] = {"views": seen.views, "viewers": seen.viewers}
        videos.append(row)
    stats = audience.stats
    return {
        **options,
        "simulated_seconds": audience.plan.duration,
        "posts": progress.posts,
        "events": progress.events,
        "errors": progress.errors,
        "rejected_events": progress.rejected_events,
        "last_error": progress.last_error,
        "failures": dict(sorted(progress.reasons.items(), key=lambda item: -item[1])),
        "late_seconds": round(progress.late, 3),
        "simulated_failures": {"lost": stats.lost, "unacknowledged": stats.unacknowledged},
        "tabs": stats.tabs,
        "views_started": stats.views_started,
        "views": totals.views,
        "viewers": totals.viewers,
        # Abandoned views the server must have expired by the end of the run.
        "expired_views": len(audience.expected.silent_views(audience.now)),
        "server_error": server.error if server is not None else None,
        "videos": videos,
    }


def print_summary(console: Console, summary: dict[str, Any], top: int) -> None:
    with_server = any("server" in row for row in summary["videos"])
    table = Table(title="expected /counts at the end of the run", title_justify="left")
    for column in ("video_id", "playback_id", "views", "viewers"):
        if column in ("views", "viewers"):
            table.add_column(column, justify="right")
        else:
            table.add_column(column, no_wrap=True)
    if with_server:
        table.add_column("server\nviews", justify="right")
        table.add_column("server\nviewers", justify="right")
    for row in summary["videos"][:top]:
        cells = [row["video_id"], row["playback_id"], str(row["views"]), str(row["viewers"])]
        if with_server:
            seen = row.get("server")
            style = "green" if seen == {"views": row["views"], "viewers": row["viewers"]} else "red"
            cells += [
                f"[{style}]{seen['views'] if seen else '-'}[/]",
                f"[{style}]{seen['viewers'] if seen else '-'}[/]",
            ]
        table.add_row(*cells)
    # Ids are pasted into `headcount token sign`: never cut, even past a narrow terminal.
    print_table(table, console)
    console.print(
        f"seed {summary['seed']}: {summary['posts']:,} POSTs, {summary['events']:,} events, "
        f"{summary['errors']:,} errors, {summary['rejected_events']:,} rejected events; "
        f"{summary['views']:,} views happening, {summary['viewers']:,} viewers "
        f"({summary['expired_views']:,} abandoned views expired). These counts hold for "
        f"{summary['settle_seconds']:g} s after the run (then idle views expire).",
        soft_wrap=True,
    )
    for line in failure_lines(summary):
        console.print(line, style="red", highlight=False, soft_wrap=True)
    if summary.get("server_error"):
        console.print(f"[red]reading /counts failed: {summary['server_error']}[/]")
