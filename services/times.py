"""Wall-clock times in a cohort's time zone, framework-free: the one formatter that pages
(web/times.py), reminders and digests share. Stored times are UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None) -> ZoneInfo:
    """The named IANA zone (UTC if the name is empty or no longer known)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def aware(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def abbreviation(local: datetime) -> str:
    """The zone's abbreviation at that moment ("CET", "EDT"); numeric ones read "UTC+05"."""
    name = local.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


def wall_clock(value: datetime, zone_name: str | None, *, now: datetime | None = None) -> str:
    """ "Fri 4 Dec 17:00 CET" in the zone; the year is added when it is not this year."""
    local = aware(value).astimezone(zone(zone_name))
    this_year = aware(now or datetime.now(UTC)).astimezone(zone(zone_name)).year
    year = f" {local.year}" if local.year != this_year else ""
    return f"{local:%a} {local.day} {local:%b}{year} {local:%H:%M} {abbreviation(local)}"
