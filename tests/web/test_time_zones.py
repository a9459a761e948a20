"""Cohort time zones: instructors set one; deadlines are entered in it on the settings page
and shown in it on the pages (with the abbreviation, for the reader's script to extend);
the API stays UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import People
from tests.web.test_reviews_api import cohort_with_people
from web import times

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_a_moment_reads_in_the_zone_with_its_abbreviation() -> None:
    due = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert times.wall_clock(due, "Europe/Berlin", now=NOW) == "Fri 4 Dec 17:00 CET"
    assert times.wall_clock(due, "America/New_York", now=NOW) == "Fri 4 Dec 11:00 EST"
    assert times.wall_clock(due, "UTC", now=NOW) == "Fri 4 Dec 16:00 UTC"
    assert times.wall_clock(due, "Asia/Kolkata", now=NOW) == "Fri 4 Dec 21:30 IST"
    assert times.wall_clock(due, "America/Sao_Paulo", now=NOW) == "Fri 4 Dec 13:00 UTC-03"
    summer = datetime(2027, 7, 1, 15, 0, tzinfo=UTC)
    assert times.wall_clock(summer, "Europe/Berlin", now=NOW) == "Thu 1 Jul 2027 17:00 CEST"
    assert times.wall_clock(due, "Not/AZone", now=NOW) == "Fri 4 Dec 16:00 UTC"


def test_relative_phrases() -> None:
    assert times.relative(NOW + timedelta(days=2, hours=5), now=NOW) == "in 2 days"
    assert times.relative(NOW + timedelta(hours=1, minutes=59), now=NOW) == "in 1 hour"
    assert times.relative(NOW - timedelta(minutes=5), now=NOW) == "5 minutes ago"
    assert times.relative(NOW + timedelta(seconds=30), now=NOW) == "now"


def test_the_filters_give_a_time_element_in_utc_with_the_zone() -> None:
    due = datetime(2030, 12, 6, 16, 0, tzinfo=UTC)
    html = times.deadline(due, "Europe/Berlin")
    assert isinstance(html, Markup)
    assert re.fullmatch(
        r'due in \d+ days, <time datetime="2030-12-06T16:00:00Z" '
        r'data-zone="Europe/Berlin">Fri 6 Dec 2030 17:00 CET</time>',
        str(html),
    ), html
    assert str(times.when(None, "UTC")) == ""
    assert str(times.deadline(datetime(2020, 1, 1, tzinfo=UTC), "UTC")).startswith("was due ")


async def test_deadlines_are_entered_and_shown_in_the_cohort_time_zone(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    ivo = c["ivo"]
    token = {"csrf_token": ivo.headers["X-CSRF-Token"]}
    form_headers = {"X-CSRF-Token": ""}  # as the page's form posts: the token in the form

    cohort_page = await ivo.get("/cohorts/psy")
    assert "<option selected>UTC</option>" in cohort_page.text
    refused = await ivo.post(
        "/cohorts/psy/time-zone", data={**token, "time_zone": "Mars/Olympus"}, headers=form_headers
    )
    assert refused.status_code == 422 and 'id="time_zone-error"' in refused.text
    assert "is not a time zone name" in refused.text
    assert (
        await c["mona"].post("/cohorts/psy/time-zone", data={"time_zone": "UTC"})
    ).status_code == 403
    saved = await ivo.post(
        "/cohorts/psy/time-zone", data={**token, "time_zone": "Europe/Berlin"}, headers=form_headers
    )
    assert saved.status_code == 303
    assert (await ivo.get("/api/v1/cohorts/psy")).json()["time_zone"] == "Europe/Berlin"

    settings = await ivo.get(f"/assignments/{a}/settings")
    assert "Deadlines (Europe/Berlin)" in settings.text
    version = re.search(r'name="version" value="(\d+)"', settings.text)
    assert version is not None
    sent = await ivo.post(
        f"/assignments/{a}/settings",
        data={**token, "version": version.group(1), "title": "Secure base",
              "paper_due_at": "2030-12-06T17:00", "review_due_at": "2031-03-30T02:30",
              "late_policy": "accept", "reviews_per_paper": "2"},
        headers=form_headers,
    )  # fmt: skip
    # 02:30 on 30 March 2031 does not happen in Berlin (clocks go from 02:00 to 03:00).
    assert sent.status_code == 422 and "does not exist in Europe/Berlin" in sent.text
    assert 'value="2030-12-06T17:00"' in sent.text  # the entered value is kept
    sent = await ivo.post(
        f"/assignments/{a}/settings",
        data={**token, "version": version.group(1), "title": "Secure base",
              "paper_due_at": "2030-12-06T17:00", "review_due_at": "2031-06-01T09:00",
              "late_policy": "accept", "reviews_per_paper": "2"},
        headers=form_headers,
    )  # fmt: skip
    assert sent.status_code == 303, sent.text

    api = (await c["ada"].get(f"/api/v1/assignments/{a}")).json()
    assert api["paper_due_at"] in ("2030-12-06T16:00:00Z", "2030-12-06T16:00:00+00:00")
    page = await c["ada"].get(f"/assignments/{a}")
    assert (
        "Paper due in " in page.text
        and '<time datetime="2030-12-06T16:00:00Z" data-zone="Europe/Berlin">'
        "Fri 6 Dec 2030 17:00 CET</time>"
        in page.text
    )
    assert "Sun 1 Jun 2031 09:00 CEST" in page.text
    assert "local-time.js" in page.text
    assert "Fri 6 Dec 2030 17:00 CET" in (await c["ada"].get("/cohorts/psy")).text
    assert "Fri 6 Dec 2030 17:00 CET" in (await c["ada"].get(f"/assignments/{a}/paper")).text
    again = await ivo.get(f"/assignments/{a}/settings")
    assert 'value="2030-12-06T17:00"' in again.text and 'value="2031-06-01T09:00"' in again.text
