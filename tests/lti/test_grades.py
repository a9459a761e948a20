"""Grades to the LMS (LTI AGS 2.0) against a platform on loopback: line items made once,
scores with the right values when a phase closes and on demand, retries after 500s and
timeouts, and nothing sent that says who reviewed whom (a canary scan of every request)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import discussions, lti_grades, papers, reviews
from services.db import transaction
from services.lti_grades import ScoreSender
from services.models import Cohort, LtiLineItem, LtiScorePost, Phase, Question, User, utcnow
from services.policy import Actor
from tests.conftest import TEST_SECRET
from tests.lti.advantage_platform import (
    LINEITEM_TYPE,
    SCORE_TYPE,
    TOOL_TIMEOUT,
    AdvantagePlatform,
)
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
from tests.lti.platform import INSTRUCTOR
from tests.review_support import (
    ReviewWorld,
    full_review,
    import_review_assignment,
    paper_text,
    set_phase,
    tasks_of,
)
from tests.web.canary_support import canary, route_names
from tests.web.test_openapi import check
from web import routes_lti_services


async def course_with_assignment(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> tuple[httpx.AsyncClient, ReviewWorld, dict[str, int]]:
    """The instructor's browser, an open assignment (k=2) and the synced students."""
    browser, _ = await start_course(tool, lms, sessions)
    assert (await sync(tool, sessions)).ok
    _, cohort = await course_services(sessions)
    async with transaction(sessions) as session:
        assignment_id = await import_review_assignment(session, slug=cohort.slug, k=2)
        users = {
            u.subject: u.id or 0
            for u in (await session.execute(select(User))).scalars()
            if u.subject in STUDENTS
        }
    return browser, ReviewWorld(sessions, assignment_id, users), users


async def save_grades(
    tool: Tool, browser: httpx.AsyncClient, assignment_id: int, weights: dict[str, str]
) -> httpx.Response:
    page = await browser.get(f"{tool.url}/assignments/{assignment_id}/grades")
    assert page.status_code == 200, page.text[:300]
    return await browser.post(
        f"{tool.url}/assignments/{assignment_id}/grades",
        data={"csrf_token": csrf_of(page.text), "enabled": "on",
              **{f"weight:{k}": v for k, v in weights.items()}},
    )  # fmt: skip


async def question_of(world: ReviewWorld) -> int:
    async with transaction(world.sessions, write=False) as session:
        qid = await session.scalar(
            select(Question.id).where(Question.assignment_id == world.assignment_id)
        )
        assert qid is not None
        return qid


async def write(world: ReviewWorld, names: list[str], *, post: list[str]) -> None:
    qid = await question_of(world)
    for name in names:
        async with transaction(world.sessions) as session:
            await papers.save_paper(
                session, actor=await world.actor(session, name),
                assignment_id=world.assignment_id, body=paper_text(name), submit=True,
            )  # fmt: skip
    for name in post:
        async with transaction(world.sessions) as session:
            await discussions.create_thread(
                session, actor=await world.actor(session, name), question_id=qid,
                title=f"A thought from {name}", body="The secure base is where exploring starts.",
            )  # fmt: skip


def sender(tool: Tool) -> ScoreSender:
    return ScoreSender(tool.client, secret=TEST_SECRET)


async def test_scores_reach_the_platform_when_a_phase_closes_with_the_right_values(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, world, users = await course_with_assignment(tool, lms, sessions)
    qid = await question_of(world)
    saved = await save_grades(
        tool, browser, world.assignment_id,
        {"paper": "50", "reviews": "30", "helpfulness": "0", f"question:{qid}": "20"},
    )  # fmt: skip
    assert saved.status_code == 303
    await write(world, ["s-ada", "s-ben", "s-chen", "s-dara"], post=["s-ada"])
    await set_phase(world, Phase.review)  # the open phase closes: scores are queued
    counts = await sender(tool).deliver_due(sessions)
    assert counts == {"sent": 6, "pending": 0, "failed": 0}
    # One line item, made with our resourceId and tag, labelled with the assignment's title.
    items = lms.line_items[COURSE]
    assert len(items) == 1
    assert items[0]["label"] == "Secure base review (Peerboard)"
    assert items[0]["resourceId"] == f"peerboard-assignment-{world.assignment_id}"
    assert items[0]["tag"] == "peerboard" and items[0]["scoreMaximum"] == 100
    made = [r for r in lms.requests if r.method == "POST" and r.path.endswith("/lineitems")]
    assert [r.headers["content-type"] for r in made] == [LINEITEM_TYPE]
    got = {s["userId"]: s for s in lms.scores}
    assert set(got) == set(STUDENTS)
    ada, ben, eli = got["s-ada"], got["s-ben"], got["s-eli"]
    assert (ada["scoreGiven"], ada["scoreMaximum"]) == (70.0, 100)  # paper 50 + posted 20
    assert ada["activityProgress"] == "Submitted" and ada["gradingProgress"] == "FullyGraded"
    assert ben["scoreGiven"] == 50.0
    assert (eli["scoreGiven"], eli["activityProgress"]) == (0.0, "Initialized")
    assert "paper submitted: yes" in ada["comment"]
    assert "discussions taken part in: 1 of 1" in ada["comment"]
    assert all(r.headers["content-type"] == SCORE_TYPE for r in lms.requests
               if r.path.endswith("/scores"))  # fmt: skip
    # The gradebook page shows what was sent, when, and the platform's answer.
    page = await browser.get(f"{tool.url}/assignments/{world.assignment_id}/grades")
    assert "70.00 / 100" in page.text and "HTTP 200" in page.text and "open closed" in page.text
    api = (await browser.get(f"{tool.url}/api/v1/assignments/{world.assignment_id}/gradebook",
                             headers={"x-csrf-token": csrf_of(page.text)})).json()  # fmt: skip
    ada_row = next(r for r in api if r["user_id"] == users["s-ada"])
    assert (ada_row["status"], ada_row["score_given"], ada_row["response_status"]) == (
        "sent", 70.0, 200)  # fmt: skip
    # Sending again (on demand) uses the same line item, even when we forgot its URL:
    # it is found by our resourceId, never made twice.
    async with transaction(sessions) as session:
        await session.execute(delete(LtiLineItem))
    send = await browser.post(
        f"{tool.url}/assignments/{world.assignment_id}/grades/send",
        data={"csrf_token": csrf_of(page.text)},
    )
    assert send.status_code == 303
    assert (await sender(tool).deliver_due(sessions))["sent"] == 6
    assert len(lms.line_items[COURSE]) == 1 and len(lms.scores) == 12
    await browser.aclose()


async def test_scores_are_retried_after_a_500_and_a_timeout(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, world, _ = await course_with_assignment(tool, lms, sessions)
    assert (
        await save_grades(tool, browser, world.assignment_id, {"paper": "100"})
    ).status_code == 303
    await write(world, ["s-ada"], post=[])
    tool.client.timeout = TOOL_TIMEOUT
    lms.script["scores"] = [500, "timeout"]
    await set_phase(world, Phase.review)
    first = await sender(tool).deliver_due(sessions)
    assert first == {"sent": 4, "pending": 2, "failed": 0}
    async with transaction(sessions, write=False) as session:
        waiting = list(
            (await session.execute(select(LtiScorePost).where(LtiScorePost.status == "pending")))
            .scalars()
        )  # fmt: skip
    assert sorted(p.last_error for p in waiting) == [
        "The LMS did not answer in time.", "The LMS failed (HTTP 500)."]  # fmt: skip
    assert all(p.next_attempt_at > utcnow() for p in waiting)  # backoff: not due yet
    assert await sender(tool).deliver_due(sessions) == {"sent": 0, "pending": 0, "failed": 0}
    later = utcnow() + timedelta(minutes=5)
    assert await sender(tool).deliver_due(sessions, now=later) == {
        "sent": 2, "pending": 0, "failed": 0}  # fmt: skip
    got = [s for s in lms.scores if s["userId"] == "s-ada"]
    assert len(got) == 1 and got[0]["scoreGiven"] == 100.0
    page = await browser.get(f"{tool.url}/assignments/{world.assignment_id}/grades")
    assert "(2 attempts)" in page.text
    await browser.aclose()


async def test_a_refused_score_fails_once_and_says_so(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, world, _ = await course_with_assignment(tool, lms, sessions)
    assert (
        await save_grades(tool, browser, world.assignment_id, {"paper": "1"})
    ).status_code == 303
    lms.script["scores"] = [400]
    await set_phase(world, Phase.review)
    assert await sender(tool).deliver_due(sessions) == {"sent": 5, "pending": 0, "failed": 1}
    page = await browser.get(f"{tool.url}/assignments/{world.assignment_id}/grades")
    assert "failed" in page.text and "HTTP 400" in page.text
    await browser.aclose()


async def test_a_line_item_the_platform_will_not_make_leaves_scores_waiting(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, world, _ = await course_with_assignment(tool, lms, sessions)
    assert (
        await save_grades(tool, browser, world.assignment_id, {"paper": "1"})
    ).status_code == 303
    lms.script["lineitems"] = [503]
    await set_phase(world, Phase.review)
    assert await sender(tool).deliver_due(sessions) == {"sent": 0, "pending": 6, "failed": 0}
    assert lms.line_items.get(COURSE) == [] and lms.scores == []
    later = utcnow() + timedelta(minutes=5)
    assert (await sender(tool).deliver_due(sessions, now=later))["sent"] == 6
    assert len(lms.line_items[COURSE]) == 1
    await browser.aclose()


async def test_nothing_sent_to_the_platform_says_who_reviewed_whom(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The canary scan, extended to the platform: every request Peerboard made to the LMS
    (token, roster, line items, scores; bodies and headers) through a whole round with
    reviews and ratings. No student's name or e-mail goes there at all, and a student's
    score names nobody but that student."""
    browser, world, _ = await course_with_assignment(tool, lms, sessions)
    qid = await question_of(world)
    weights = {"paper": "25", "reviews": "25", "helpfulness": "25", f"question:{qid}": "25"}
    assert (await save_grades(tool, browser, world.assignment_id, weights)).status_code == 303
    names = list(STUDENTS)
    await write(world, names, post=names[:3])
    await set_phase(world, Phase.review)
    assert (await sender(tool).deliver_due(sessions))["sent"] == 6
    for name in names:
        for task in await tasks_of(world, name):
            async with transaction(sessions) as session:
                await reviews.save_review(
                    session, actor=await world.actor(session, name), task_id=task.public_id,
                    data=full_review(), expected_version=None, submit=True,
                )  # fmt: skip
    await set_phase(world, Phase.feedback)
    assert (await sender(tool).deliver_due(sessions))["sent"] == 6
    for name in names:
        async with transaction(sessions) as session:
            actor = await world.actor(session, name)
            feedback = await reviews.my_feedback(
                session, actor=actor, assignment_id=world.assignment_id
            )
            for i, review in enumerate(feedback.reviews):
                await reviews.rate_review(session, actor=actor, review_id=review.id, rating=5 - i)
    await set_phase(world, Phase.closed)
    assert (await sender(tool).deliver_due(sessions))["sent"] == 6
    # Scores went out at each phase close: 3 closes x 6 students.
    assert len(lms.scores) == 18
    final = {s["userId"]: s for s in lms.scores[-6:]}
    assert all("helpfulness of your reviews:" in s["comment"] for s in final.values())
    # Canaries: every name and e-mail Peerboard holds for the students, and their subjects.
    async with transaction(sessions, write=False) as session:
        people = list((await session.execute(select(User))).scalars())
    seen = [
        (r.path, json.dumps(r.headers) + r.body.decode("utf-8", "replace")) for r in lms.requests
    ]
    for person in people:
        for value in (person.display_name, person.email or "\x00none"):
            leaks = [path for path, text in seen if value in text]
            assert leaks == [], f"{value!r} was sent to the platform: {leaks}"
    subjects = {p.subject for p in people}
    for score in lms.scores:
        text = json.dumps(score)
        others = [s for s in subjects if s != score["userId"] and s in text]
        assert others == [], f"the score of {score['userId']} names {others}"
    labels = [json.loads(r.body)["label"] for r in lms.requests
              if r.method == "POST" and r.path.endswith("/lineitems")]  # fmt: skip
    assert labels == ["Secure base review (Peerboard)"]
    await browser.aclose()


async def test_grade_settings_refuse_bad_weights_and_keep_the_input(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, world, _ = await course_with_assignment(tool, lms, sessions)
    refused = await save_grades(
        tool, browser, world.assignment_id, {"paper": "abc", "reviews": "40"}
    )
    assert refused.status_code == 422
    assert "whole number from 0 to 100" in refused.text
    assert 'value="abc"' in refused.text and 'value="40"' in refused.text
    nothing = await save_grades(tool, browser, world.assignment_id, {"paper": "0"})
    assert nothing.status_code == 422 and "at least one measure a weight" in nothing.text
    token = csrf_of(refused.text)
    api = f"{tool.url}/api/v1/assignments/{world.assignment_id}/grading"
    for body in ({"enabled": True, "weights": {"paper": 101}},
                 {"enabled": True, "weights": {"who-reviewed-whom": 5}}):  # fmt: skip
        answer = await browser.put(api, json=body, headers={"x-csrf-token": token})
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("application/problem+json")
    async with transaction(sessions, write=False) as session:
        view = await lti_grades.grading(
            session, actor=Actor.system(), assignment_id=world.assignment_id
        )
    assert not view.enabled and all(m.weight == 0 for m in view.measures)
    ok = await browser.put(api, json={"enabled": True, "weights": {"paper": 60}},
                           headers={"x-csrf-token": token})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["measures"][0] == {
        "key": "paper", "label": "Paper submitted", "weight": 60}  # fmt: skip
    await browser.aclose()


async def test_without_a_gradebook_service_sending_says_what_to_do(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser = httpx.AsyncClient()
    launched = await launch(browser, tool, lms, sub="t-ivo", roles=[INSTRUCTOR], services=False,
                            course="course-plain")  # fmt: skip
    assert launched.status_code == 303
    async with transaction(sessions) as session:
        cohort = await session.scalar(select(Cohort))
        assert cohort is not None
        assignment_id = await import_review_assignment(session, slug=cohort.slug, k=2)
    assert (await save_grades(tool, browser, assignment_id, {"paper": "10"})).status_code == 303
    page = await browser.get(f"{tool.url}/assignments/{assignment_id}/grades")
    assert "has not offered Peerboard its gradebook yet" in page.text
    answer = await browser.post(
        f"{tool.url}/api/v1/assignments/{assignment_id}/grading/send",
        headers={"x-csrf-token": csrf_of(page.text)},
    )
    assert answer.status_code == 422 and "Assignment and Grade Services" in answer.text
    await browser.aclose()


async def test_the_grades_api_answers_as_its_openapi_document_says(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    browser, world, _ = await course_with_assignment(tool, lms, sessions)
    doc = (await browser.get(f"{tool.url}/api/v1/openapi.json")).json()
    page = await browser.get(f"{tool.url}/assignments/{world.assignment_id}/grades")
    headers = {"x-csrf-token": csrf_of(page.text)}
    base = f"{tool.url}/api/v1/assignments/{world.assignment_id}"
    path = "/api/v1/assignments/{assignment}"
    check(doc, path + "/grading", "get", await browser.get(base + "/grading"))
    check(
        doc,
        path + "/grading/send",
        "post",
        await browser.post(base + "/grading/send", headers=headers),
    )  # 422: nothing chosen
    bad = await browser.put(base + "/grading", json={"enabled": "yes"}, headers=headers)
    assert bad.status_code == 422
    check(doc, path + "/grading", "put", bad)
    saved = await browser.put(
        base + "/grading", json={"enabled": True, "weights": {"paper": 10}}, headers=headers
    )
    check(doc, path + "/grading", "put", saved)
    sent = await browser.post(base + "/grading/send", headers=headers)
    assert sent.status_code == 202 and sent.json() == {"queued": 6, "not_from_lms": 0}
    check(doc, path + "/grading/send", "post", sent)
    check(doc, path + "/gradebook", "get", await browser.get(base + "/gradebook"))
    missing = await browser.get(f"{tool.url}/api/v1/assignments/999999/gradebook")
    assert missing.status_code == 404
    check(doc, path + "/gradebook", "get", missing)
    await browser.aclose()


async def test_the_new_routes_show_a_student_no_classmate_and_staff_no_review_relation(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The canary scan of the roster and grades routes (every one of them, for a student
    and the instructor): a student meets 404s that carry no classmate's name, e-mail or
    subject; staff see students' own numbers, and no reviewer ever beside a paper."""
    canaries = {f"s-{canary('sub')}": f"{canary('Given')} {canary('Family')}" for _ in range(4)}
    lms.rosters[COURSE] = [lms.member("t-ivo", "Ivo Teacher", "Instructor")] + [
        lms.member(sub, name) for sub, name in canaries.items()
    ]
    teacher = httpx.AsyncClient()
    assert (await launch(teacher, tool, lms, sub="t-ivo", roles=[INSTRUCTOR])).status_code == 303
    assert (await sync(tool, sessions)).ok
    _, cohort = await course_services(sessions)
    async with transaction(sessions) as session:
        assignment_id = await import_review_assignment(session, slug=cohort.slug, k=2)
        users = {u.subject: u.id or 0 for u in (await session.execute(select(User))).scalars()}
    world = ReviewWorld(sessions, assignment_id, {s: users[s] for s in canaries})
    subs = list(canaries)
    await write(world, subs, post=subs[:2])
    saved = await save_grades(tool, teacher, assignment_id, {"paper": "50", "reviews": "50"})
    assert saved.status_code == 303
    await set_phase(world, Phase.review)
    assert (await sender(tool).deliver_due(sessions))["sent"] == 4
    me = subs[0]
    student = httpx.AsyncClient()
    student_launch = await launch(student, tool, lms, sub=me, roles=["Learner"], name=canaries[me])
    assert student_launch.status_code == 303
    a = f"/assignments/{assignment_id}"
    plan = [
        ("cohorts:members:roster-sync", "POST", f"/cohorts/{cohort.slug}/members/roster-sync"),
        ("grades:page", "GET", a + "/grades"),
        ("grades:save", "POST", a + "/grades"),
        ("grades:send", "POST", a + "/grades/send"),
        ("api:grading", "GET", "/api/v1" + a + "/grading"),
        ("api:grading:save", "PUT", "/api/v1" + a + "/grading"),
        ("api:grading:send", "POST", "/api/v1" + a + "/grading/send"),
        ("api:gradebook", "GET", "/api/v1" + a + "/gradebook"),
    ]
    assert {(n, m) for n, m, _ in plan} == route_names(routes_lti_services)
    classmates = [v for s, n in canaries.items() if s != me for v in (s, n, f"{s}@lms.example")]
    for client, who in ((student, "student"), (teacher, "instructor")):
        token = csrf_of((await client.get(f"{tool.url}/")).text)
        for name, method, path in plan:
            kwargs: dict[str, object] = {"headers": {"x-csrf-token": token}}
            if method != "GET":
                kwargs["data" if not path.startswith("/api/") else "json"] = (
                    {"csrf_token": token, "enabled": "on", "weight:paper": "10"}
                    if not path.startswith("/api/")
                    else {"enabled": True, "weights": {"paper": 10}}
                )
            answer = await client.request(method, f"{tool.url}{path}", **kwargs)  # type: ignore[arg-type]
            received = json.dumps(dict(answer.headers)) + answer.text
            if who == "student":
                assert answer.status_code == 404, (name, answer.status_code)
                assert [c for c in classmates if c in received] == [], name
            else:
                assert answer.status_code < 400, (name, answer.status_code, answer.text[:200])
    # The instructor's gradebook: each student's own numbers, no paper or reviewer labels.
    book = (await teacher.get(f"{tool.url}{a}/grades")).text
    assert all(n in book for n in canaries.values())
    assert "Reviewer" not in book and "Paper " not in book.replace("Paper submitted", "")
    await student.aclose()
    await teacher.aclose()
