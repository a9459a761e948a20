"""Roster sync (LTI NRPS 2.0) against a platform on loopback: the tool is served over HTTP
(the platform checks our client assertion against our key set fetched from it), the
platform serves the membership container in pages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from services import papers
from services.db import transaction
from services.lti_advantage import AdvantageClient
from services.models import (
    Membership,
    MembershipSource,
    Paper,
    Phase,
    ReviewTask,
    Role,
    TaskStatus,
    User,
)
from tests.conftest import TEST_SECRET
from tests.lti.advantage_platform import TOOL_TIMEOUT, AdvantagePlatform
from tests.lti.advantage_support import (
    COURSE,
    STUDENTS,
    Tool,
    course_services,
    csrf_of,
    launch,
    start_course,
    sync,
)
from tests.lti.platform import LEARNER
from tests.review_support import ReviewWorld, import_review_assignment, paper_text, set_phase
from web import lti_jobs

Roster = dict[str, tuple[Role, MembershipSource, str, str | None]]


async def roster_of(sessions: async_sessionmaker[AsyncSession], cohort_id: int) -> Roster:
    async with transaction(sessions, write=False) as session:
        rows = await session.execute(
            select(User.subject, Membership.role, Membership.source, User.display_name, User.email)
            .join(User, col(User.id) == col(Membership.user_id))
            .where(Membership.cohort_id == cohort_id)
        )
        return {sub: (role, source, name, email) for sub, role, source, name, email in rows.all()}


async def test_a_launch_remembers_the_services_and_the_job_reads_the_roster_later(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    row, _ = await course_services(sessions)
    assert row.memberships_url == lms.memberships_url(COURSE)
    assert row.lineitems_url == lms.lineitems_url(COURSE)
    assert sorted(row.ags_scopes) == sorted(
        ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
         "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
         "https://purl.imsglobal.org/spec/lti-ags/scope/score"]
    )  # fmt: skip
    # The launch itself did not wait for the roster: it only asked for a sync.
    assert row.sync_requested_at is not None and row.last_sync_at is None
    assert not [r for r in lms.requests if "memberships" in r.path]
    assert set(await roster_of(sessions, cohort_id)) == {"t-ivo"}
    # The roster job's round reads it.
    await lti_jobs.run_once(sessions, tool.client, tool.app.state.settings)
    roster = await roster_of(sessions, cohort_id)
    assert set(roster) == {"t-ivo", *STUDENTS}
    assert roster["s-ada"] == (Role.student, MembershipSource.lti, "Ada Lovelace",
                               "s-ada@lms.example")  # fmt: skip
    row, _ = await course_services(sessions)
    assert row.sync_requested_at is None and row.last_sync_ok is True
    assert (row.last_sync_added, row.last_sync_removed) == (6, 0)
    # Four pages of two (Link: rel="next"), and the platform accepted our client assertion.
    assert len([r for r in lms.requests if "memberships" in r.path]) == 4
    assert lms.refused_assertions == []
    # A fresh sync is not stale: the next launch asks for nothing.
    browser.cookies.clear()
    response = await launch(browser, tool, lms, sub="s-ada", roles=[LEARNER], name="Ada Lovelace")
    assert response.status_code == 303
    row, _ = await course_services(sessions)
    assert row.sync_requested_at is None
    await browser.aclose()


async def test_a_sync_adds_moves_and_removes_members_and_the_leavers_allocations_heal(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    first = await sync(tool, sessions)
    assert first.ok and first.added == 6
    _, cohort = await course_services(sessions)
    users = {sub: uid for sub, uid in await _user_ids(sessions)}
    # A review round is under way: everyone submitted a paper, reviewers are allocated.
    async with transaction(sessions) as session:
        assignment_id = await import_review_assignment(session, slug=cohort.slug, k=2)
    world = ReviewWorld(sessions, assignment_id, {s: users[s] for s in STUDENTS})
    for sub in STUDENTS:
        async with transaction(sessions) as session:
            await papers.save_paper(
                session, actor=await world.actor(session, sub), assignment_id=assignment_id,
                body=paper_text(sub), submit=True,
            )  # fmt: skip
    await set_phase(world, Phase.review)
    assert await _active_tasks(sessions, assignment_id, users["s-dara"])
    # In the LMS: Dara dropped the course, Chen is inactive, Ben became a TA, Gus enrolled;
    # someone with only an institution role is listed too (no course role: not a member).
    lms.rosters[COURSE] = [
        lms.member("t-ivo", "Ivo Teacher", "Instructor"),
        lms.member("s-ada", "Ada King", "Learner"),  # her name changed in the LMS
        lms.member("s-ben", "Ben Okri", "Instructor#TeachingAssistant"),
        lms.member("s-chen", "Chen Wei", status="Inactive"),
        lms.member("s-eli", "Eli Roth"),
        lms.member("s-fay", "Fay Wu"),
        lms.member("s-gus", "Gus Grey"),
        {**lms.member("x-staff", "Ex Staff"),
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"]},
    ]  # fmt: skip
    lms.rosters[COURSE][2]["roles"] = [
        "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
    ]
    outcome = await sync(tool, sessions)
    assert (outcome.ok, outcome.added, outcome.changed, outcome.removed) == (True, 1, 1, 2)
    roster = await roster_of(sessions, cohort_id)
    assert set(roster) == {"t-ivo", "s-ada", "s-ben", "s-eli", "s-fay", "s-gus"}
    assert roster["s-ben"][0] is Role.moderator
    assert roster["s-ada"][2] == "Ada King"
    # The leavers' (and the new TA's) unstarted reviews moved; every paper still has two.
    for sub in ("s-dara", "s-chen", "s-ben"):
        assert await _active_tasks(sessions, assignment_id, users[sub]) == []
    async with transaction(sessions, write=False) as session:
        per_paper = dict(
            (
                await session.execute(
                    select(Paper.id, func.count())
                    .join(ReviewTask, col(ReviewTask.paper_id) == col(Paper.id))
                    .where(
                        Paper.assignment_id == assignment_id,
                        col(ReviewTask.status).in_(
                            [TaskStatus.assigned, TaskStatus.started, TaskStatus.submitted]
                        ),
                    )
                    .group_by(col(Paper.id))
                )
            ).all()
        )
    assert len(per_paper) == 6 and set(per_paper.values()) == {2}
    # Running it again changes nothing (idempotent).
    again = await sync(tool, sessions)
    assert (again.ok, again.added, again.changed, again.removed) == (True, 0, 0, 0)


async def _user_ids(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, int]]:
    async with transaction(sessions, write=False) as session:
        return [(s, i) for s, i in (await session.execute(select(User.subject, User.id))).all()]


async def _active_tasks(
    sessions: async_sessionmaker[AsyncSession], assignment_id: int, user_id: int
) -> list[int]:
    async with transaction(sessions, write=False) as session:
        return list(
            (
                await session.execute(
                    select(ReviewTask.id).where(
                        ReviewTask.assignment_id == assignment_id,
                        ReviewTask.reviewer_id == user_id,
                        col(ReviewTask.status).in_([TaskStatus.assigned, TaskStatus.started]),
                    )
                )
            ).scalars()
        )


async def test_roles_set_by_hand_and_other_sources_are_left_alone(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    await sync(tool, sessions)
    async with transaction(sessions) as session:
        ada = await session.scalar(select(User).where(User.subject == "s-ada"))
        assert ada is not None
        membership = await session.scalar(select(Membership).where(Membership.user_id == ada.id))
        assert membership is not None
        membership.role, membership.source = Role.moderator, MembershipSource.manual
    lms.rosters[COURSE] = [m for m in lms.rosters[COURSE] if m["user_id"] != "s-ada"]
    outcome = await sync(tool, sessions)
    assert outcome.ok and outcome.removed == 0
    assert (await roster_of(sessions, cohort_id))["s-ada"][:2] == (
        Role.moderator, MembershipSource.manual)  # fmt: skip


async def test_an_empty_roster_removes_nobody(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    await sync(tool, sessions)
    lms.rosters[COURSE] = []
    outcome = await sync(tool, sessions)
    assert outcome.ok and outcome.removed == 0 and "empty roster" in outcome.message
    assert len(await roster_of(sessions, cohort_id)) == 7


@pytest.mark.parametrize(
    ("defect", "says"),
    [
        (500, "HTTP 500"),
        ("timeout", "in time"),
    ],
)
async def test_a_failed_roster_read_changes_nothing_and_says_why(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession],
    defect: Any, says: str,
) -> None:  # fmt: skip
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    tool.client.timeout = TOOL_TIMEOUT
    lms.script["memberships"] = [defect]
    outcome = await sync(tool, sessions)
    assert not outcome.ok and says in outcome.message
    assert set(await roster_of(sessions, cohort_id)) == {"t-ivo"}
    row, _ = await course_services(sessions)
    assert row.last_sync_ok is False and says in row.last_sync_message
    assert row.sync_lease_until is None  # the next round may try again
    assert (await sync(tool, sessions)).ok


TOKEN_DEFECTS = [
    (500, "token service failed"),
    ("timeout", "in time"),
    ("not-json", "not JSON"),
    ("no-token", "no access token"),
    ("mac-token", "not a bearer token"),
    ("expired", "already expired"),
    ("scope-missing", "did not grant"),
]


@pytest.mark.parametrize(("defect", "says"), TOKEN_DEFECTS)
async def test_a_defective_token_answer_is_a_clear_failure(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession],
    defect: Any, says: str,
) -> None:  # fmt: skip
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    tool.client.timeout = TOOL_TIMEOUT
    lms.script["token"] = [defect]
    outcome = await sync(tool, sessions)
    assert not outcome.ok and says in outcome.message, outcome.message
    assert set(await roster_of(sessions, cohort_id)) == {"t-ivo"}
    # Without a usable token, the roster was never asked for.
    assert not [r for r in lms.requests if "memberships" in r.path]


async def test_tokens_are_cached_and_a_revoked_one_is_replaced_once(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, _ = await start_course(tool, lms, sessions)
    await browser.aclose()
    assert (await sync(tool, sessions)).ok
    assert (await sync(tool, sessions)).ok
    assert lms.token_requests == 1
    lms.revoke_tokens()  # the platform forgets the token early: 401, then a new token
    assert (await sync(tool, sessions)).ok
    assert lms.token_requests == 2
    # Each client assertion is single use (a fresh jti) and was accepted.
    assert lms.refused_assertions == []


async def test_an_assertion_signed_with_a_key_the_tool_does_not_publish_is_refused(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    # Another process's client with a key of its own (not in our JWKS): the platform says no.
    from tests.lti.platform import new_key

    row, _ = await course_services(sessions)
    forged = AdvantageClient()
    from services import lti_advantage

    async with transaction(sessions) as session:
        from services.models import LtiPlatform

        platform = await session.scalar(select(LtiPlatform))
        assert platform is not None
        real = await lti_advantage.registration_for(session, platform=platform, secret=TEST_SECRET)
    registration = lti_advantage.Registration(
        platform_id=real.platform_id, client_id=real.client_id, token_url=real.token_url,
        kid=real.kid, key=new_key(real.kid),
    )  # fmt: skip
    with pytest.raises(lti_advantage.Refused):
        await forged.memberships(registration, row.memberships_url or "")
    assert lms.refused_assertions == ["signature: BadSignatureError"]
    assert set(await roster_of(sessions, cohort_id)) == {"t-ivo"}


async def test_two_syncs_at_once_run_one(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    a, b = await asyncio.gather(sync(tool, sessions), sync(tool, sessions))
    assert sorted([a.busy, b.busy]) == [False, True]
    assert len(await roster_of(sessions, cohort_id)) == 7


async def test_the_sync_roster_now_button(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, cohort_id = await start_course(tool, lms, sessions)
    _, cohort = await course_services(sessions)
    members = await browser.get(f"{tool.url}/cohorts/{cohort.slug}/members")
    assert members.status_code == 200
    assert "Sync roster now" in members.text and "has not been read yet" in members.text
    response = await browser.post(
        f"{tool.url}/cohorts/{cohort.slug}/members/roster-sync",
        data={"csrf_token": csrf_of(members.text)},
    )
    assert response.status_code == 303
    page = await browser.get(f"{tool.url}{response.headers['location']}")
    assert "Roster synced: 6 added, 0 role(s) changed, 0 removed." in page.text
    assert "Last read" in page.text and "6 added" in page.text
    assert len(await roster_of(sessions, cohort_id)) == 7
    # A student of the course sees no button, and posting to it answers like a missing page.
    student = httpx.AsyncClient()
    assert (await launch(student, tool, lms, sub="s-ada", roles=[LEARNER])).status_code == 303
    refused = await student.post(
        f"{tool.url}/cohorts/{cohort.slug}/members/roster-sync",
        data={"csrf_token": csrf_of((await student.get(f"{tool.url}/")).text)},
    )
    assert refused.status_code == 404
    await student.aclose()
    await browser.aclose()


@pytest.mark.parametrize("tool_settings", [{"PEERBOARD_LTI_TICK_SECONDS": 3600}])
async def test_a_stale_launch_has_the_roster_read_in_the_background(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession],
    tool_settings: dict[str, Any],
) -> None:  # fmt: skip
    """The app's LTI job (running, its schedule an hour away) is woken by the launch: the
    roster arrives without anyone pressing a button (the launch itself only marks it:
    see the first test, where the job is off)."""
    browser, cohort_id = await start_course(tool, lms, sessions)
    await browser.aclose()
    for _ in range(300):
        if len(await roster_of(sessions, cohort_id)) == 7:
            break
        await asyncio.sleep(0.05)
    assert set(await roster_of(sessions, cohort_id)) == {"t-ivo", *STUDENTS}
    row, _ = await course_services(sessions)
    assert row.last_sync_ok is True and row.sync_requested_at is None
