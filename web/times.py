"""How pages show times: the one place that formats them (Jinja filters `when` and
`deadline`, registered in web/app.py). Stored times and the API are UTC; pages show them in
the cohort's time zone with its abbreviation ("Fri 4 Dec 17:00 CET"), as a
`<time datetime="…Z" data-zone="Europe/Berlin">` element that static/local-time.js extends
with the reader's own local time where that differs. Without JavaScript the cohort's time
stands alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

from services.times import abbreviation, wall_clock, zone
from services.times import aware as _aware

__all__ = ["abbreviation", "deadline", "relative", "wall_clock", "when", "zone"]


def relative(value: datetime, *, now: datetime | None = None) -> str:
    """ "in 2 days", "in 3 hours", "5 minutes ago" (rounded down; "now" within a minute)."""
    delta = _aware(value) - _aware(now or datetime.now(UTC))
    future = delta >= timedelta(0)
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "now"


def when(value: datetime | None, zone_name: str | None = "UTC") -> Markup:
    """A <time> element showing `value` in the zone, for the reader's script to extend."""
    if value is None:
        return Markup("")
    iso = _aware(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" data-zone="{}">{}</time>').format(
        iso, zone(zone_name).key, wall_clock(value, zone_name)
    )


def deadline(value: datetime | None, zone_name: str | None = "UTC") -> Markup:
    """ "due in 2 days, Fri 4 Dec 17:00 CET" (or "was due 3 hours ago, …")."""
    if value is None:
        return Markup("")
    rel = relative(value)
    lead = f"was due {rel}" if rel.endswith("ago") else f"due {rel}"
    return escape(lead) + Markup(", ") + when(value, zone_name)
