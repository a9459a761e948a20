"""Digests and reminders on the cohort's wall clock, with a controllable clock (no sleeps),
across a daylight-saving change: one digest per local day, after 07:00 local on both sides;
a reminder shows the deadline in the cohort's zone. SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import cohorts, outbox, reminders
from services.db import transaction
from services.models import Assignment, Cohort, Membership, OutboxMessage, Role
from services.times import aware
from tests.review_support import ReviewWorld, make_world


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> ReviewWorld:
    return await make_world(sessions, students=("ada", "ben", "chen"))


async def set_zone(world: ReviewWorld, name: str) -> None:
    async with transaction(world.sessions) as session:
        assignment = await session.get(Assignment, world.assignment_id)
        assert assignment is not None
        cohort = await session.get(Cohort, assignment.cohort_id)
        assert cohort is not None
        cohort.time_zone = name
        session.add(cohort)


async def digests_of(world: ReviewWorld, user_id: int) -> list[datetime]:
    async with transaction(world.sessions, write=False) as session:
        made = await session.execute(
            select(OutboxMessage.created_at)
            .where(OutboxMessage.user_id == user_id, OutboxMessage.kind == outbox.DIGEST)
            .order_by(col(OutboxMessage.id))
        )
        return [aware(t) for t in made.scalars()]


async def test_one_digest_per_berlin_day_after_seven_across_the_october_change(
    world: ReviewWorld,
) -> None:
    """Berlin leaves summer time on Sunday 25 October 2026 (03:00 CEST → 02:00 CET). Held
    mail arrives every 30 minutes from Friday to Tuesday and the digest job runs each time:
    the digests go out at 07:00 local, i.e. 05:00 UTC before the change and 06:00 after."""
    await set_zone(world, "Europe/Berlin")
    chen = world.users["chen"]
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 10, 23, 0, 0, tzinfo=UTC)
    while now < datetime(2026, 10, 27, 0, 0, tzinfo=UTC):
        async with transaction(world.sessions) as session:
            await outbox.enqueue(
                session, user_id=chen, kind="followed_thread", subject="New post",
                body=f"A post at {now:%H:%M}", now=now,
            )  # fmt: skip
            await outbox.collect_digests(session, now=now)
        now += timedelta(minutes=30)
    made = await digests_of(world, chen)
    assert made == [
        datetime(2026, 10, 23, 5, 0, tzinfo=UTC),  # 07:00 CEST
        datetime(2026, 10, 24, 5, 0, tzinfo=UTC),  # 07:00 CEST
        datetime(2026, 10, 25, 6, 0, tzinfo=UTC),  # 07:00 CET, the day of the change
        datetime(2026, 10, 26, 6, 0, tzinfo=UTC),  # 07:00 CET
    ]
    local = [t.astimezone(berlin) for t in made]
    assert all(t.hour == 7 and t.minute == 0 for t in local)
    assert Counter(t.date() for t in local) == {t.date(): 1 for t in local}
    async with transaction(world.sessions, write=False) as session:
        subjects = await session.execute(
            select(OutboxMessage.subject).where(OutboxMessage.kind == outbox.DIGEST)
        )
        assert "Your Peerboard digest for Sunday 25 October" in subjects.scalars().all()
        still_held = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.user_id == chen,
                OutboxMessage.status == outbox.Status.held.value,
                col(OutboxMessage.created_at) <= datetime(2026, 10, 26, 6, 0, tzinfo=UTC),
            )
        )
    assert still_held is None  # everything up to the last digest was carried


async def test_new_york_digests_follow_the_november_change_and_not_utc_midnight(
    world: ReviewWorld,
) -> None:
    """New York leaves summer time on 1 November 2026 (02:00 EDT → 01:00 EST): 07:00 local
    is 11:00 UTC before and 12:00 UTC after; nothing goes out at 07:00 UTC."""
    await set_zone(world, "America/New_York")
    chen = world.users["chen"]
    for now in (
        datetime(2026, 10, 31, 7, 0, tzinfo=UTC),  # 03:00 EDT: too early
        datetime(2026, 10, 31, 10, 59, tzinfo=UTC),  # 06:59 EDT: too early
        datetime(2026, 10, 31, 11, 0, tzinfo=UTC),  # 07:00 EDT: the digest
        datetime(2026, 11, 1, 3, 30, tzinfo=UTC),  # 23:30 EDT, still the 31st: none
        datetime(2026, 11, 1, 11, 0, tzinfo=UTC),  # 06:00 EST: too early
        datetime(2026, 11, 1, 12, 0, tzinfo=UTC),  # 07:00 EST: the digest
        datetime(2026, 11, 1, 23, 0, tzinfo=UTC),  # 18:00 EST: done for the day
    ):
        async with transaction(world.sessions) as session:
            await outbox.enqueue(
                session, user_id=chen, kind="followed_thread", subject="New post",
                body="A post", now=now,
            )  # fmt: skip
            await outbox.collect_digests(session, now=now)
    assert await digests_of(world, chen) == [
        datetime(2026, 10, 31, 11, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    ]


async def test_a_person_in_two_cohorts_gets_the_zone_of_the_cohort_joined_first(
    world: ReviewWorld,
) -> None:
    await set_zone(world, "Asia/Tokyo")
    async with transaction(world.sessions) as session:
        other = await cohorts.create_cohort(
            session, actor=await world.actor(session, "system"), slug="later", name="Later"
        )
        other.time_zone = "America/New_York"
        session.add(other)
        await session.flush()
        assert other.id is not None
        session.add(Membership(cohort_id=other.id, user_id=world.users["chen"], role=Role.student))
    async with transaction(world.sessions, write=False) as session:
        zone = await outbox.digest_zone(session, user_id=world.users["chen"])
    assert zone == ZoneInfo("Asia/Tokyo")


async def test_a_reminder_shows_the_deadline_on_the_cohorts_clock_after_the_change(
    world: ReviewWorld,
) -> None:
    """Due 12:00 UTC on 1 November 2026: 07:00 EST in New York (no longer EDT)."""
    await set_zone(world, "America/New_York")
    async with transaction(world.sessions) as session:
        assignment = await session.get(Assignment, world.assignment_id)
        assert assignment is not None
        assignment.paper_due_at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        session.add(assignment)
    async with transaction(world.sessions) as session:
        sent = await reminders.remind_due(session, now=datetime(2026, 10, 31, 14, 0, tzinfo=UTC))
    assert sent == 3
    async with transaction(world.sessions, write=False) as session:
        bodies = await session.execute(
            select(OutboxMessage.body).where(OutboxMessage.kind == "deadline")
        )
        texts = list(bodies.scalars())
    assert len(texts) == 3
    assert all("is due Sun 1 Nov 07:00 EST, and you have not" in t for t in texts)
    assert not any("UTC" in t or "EDT" in t for t in texts)
