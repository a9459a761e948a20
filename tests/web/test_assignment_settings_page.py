"""Staff edit an assignment's deadlines and review settings on a page: saved values show on
the assignment, mistakes come back with the person's own values and nothing saved, a stale
form is refused without overwriting, and students cannot reach the page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import People
from tests.web.test_reviews_api import cohort_with_people


def form(version: int, **overrides: Any) -> dict[str, str]:
    values = {
        "version": str(version),
        "title": "Secure base review",
        "paper_due_at": "2027-03-01T17:00",
        "review_due_at": "2027-03-08T17:00",
        "auto_advance": "on",
        "late_policy": "mark",
        "reviews_per_paper": "3",
        "allow_anonymous_posts": "on",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


async def current(client: httpx.AsyncClient, a: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/assignments/{a}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_staff_save_deadlines_and_review_settings(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    page = await c["ivo"].get(f"/assignments/{a}/settings")
    assert page.status_code == 200
    assert 'type="datetime-local"' in page.text and "Deadlines (UTC)" in page.text
    before = await current(c["ivo"], a)

    saved = await c["ivo"].post(f"/assignments/{a}/settings", data=form(before["version"]))
    assert saved.status_code == 303 and saved.headers["location"] == f"/assignments/{a}"
    after = await current(c["ivo"], a)
    assert after["paper_due_at"].startswith("2027-03-01T17:00:00")
    assert datetime.fromisoformat(after["review_due_at"]) == datetime(2027, 3, 8, 17, tzinfo=UTC)
    assert after["auto_advance"] is True and after["late_policy"] == "mark"
    assert after["reviews_per_paper"] == 3 and after["version"] == before["version"] + 1
    shown = await c["ivo"].get(f"/assignments/{a}")
    assert "settings are saved." in shown.text
    assert "Reviews " in shown.text and "Mon 8 Mar 2027 17:00 UTC</time>" in shown.text
    assert f'href="/assignments/{a}/settings"' in shown.text
    again = await c["ivo"].get(f"/assignments/{a}/settings")
    assert 'value="2027-03-01T17:00"' in again.text

    # Emptying a deadline removes it; moderators may edit too.
    cleared = await c["mona"].post(
        f"/assignments/{a}/settings",
        data=form(after["version"], review_due_at="", auto_advance=None),
    )
    assert cleared.status_code == 303
    latest = await current(c["mona"], a)
    assert latest["review_due_at"] is None and latest["auto_advance"] is False


async def test_mistakes_come_back_with_the_values_and_nothing_is_saved(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    before = await current(c["ivo"], a)
    bad = await c["ivo"].post(
        f"/assignments/{a}/settings",
        data=form(
            before["version"], title="Renamed", paper_due_at="2027-03-09T09:00",
            review_due_at="2027-03-02T09:00", reviews_per_paper="99",
        ),
    )  # fmt: skip
    assert bad.status_code == 422
    assert "Nothing was saved" in bad.text
    assert "must be after the paper deadline" in bad.text
    assert "must be between 1 and 10" in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert 'value="Renamed"' in bad.text and 'value="99"' in bad.text  # their own values
    assert await current(c["ivo"], a) == before

    garbage = await c["ivo"].post(
        f"/assignments/{a}/settings",
        data=form(before["version"], paper_due_at="next tuesday", late_policy="whenever"),
    )
    assert garbage.status_code == 422
    assert "is not a date and time" in garbage.text and "must be accept, mark or refuse" in (
        garbage.text
    )
    assert await current(c["ivo"], a) == before


async def test_a_stale_form_does_not_overwrite(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    before = await current(c["ivo"], a)
    first = await c["mona"].post(
        f"/assignments/{a}/settings", data=form(before["version"], title="Mona's title")
    )
    assert first.status_code == 303
    stale = await c["ivo"].post(
        f"/assignments/{a}/settings", data=form(before["version"], title="Ivo's title")
    )
    assert stale.status_code == 409
    assert "Nothing was saved" in stale.text
    assert "Mona&#39;s title" in stale.text  # the current values are shown
    assert (await current(c["ivo"], a))["title"] == "Mona's title"


async def test_students_and_forged_forms_cannot_change_settings(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    before = await current(c["ivo"], a)
    assert (await c["ada"].get(f"/assignments/{a}/settings")).status_code == 404
    refused = await c["ada"].post(f"/assignments/{a}/settings", data=form(before["version"]))
    assert refused.status_code == 404
    forged = await c["ivo"].post(
        f"/assignments/{a}/settings",
        data=form(before["version"]),
        headers={"X-CSRF-Token": "forged"},
    )
    assert forged.status_code == 403
    assert await current(c["ivo"], a) == before
