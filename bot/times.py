"""Stored timestamps as people read them. Its own module so the core's errors (which
:mod:`bot.messages` imports) can use it too."""

from __future__ import annotations

from datetime import UTC, datetime


def human_time(iso: str) -> str:
    """A stored UTC timestamp ("2026-12-04T02:49:08.486407Z") as people read it: "2026-12-04 02:49
    UTC". Discord messages use their own markup instead (``cogs.render.when``), which each reader's
    client shows in their time zone."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
