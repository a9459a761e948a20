"""The peer review through the JSON API and the pages, with every response checked against
the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db import transaction
from services.models import Role
from tests.conftest import People
from tests.review_support import COMPONENTS, import_review_assignment, paper_text
from tests.web.test_openapi import check, document

STUDENTS = ("ada", "ben", "chen", "dara")


async def cohort_with_people(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> tuple[int, dict[str, httpx.AsyncClient]]:
    root = await people.client("root", administrator=True)
    assert (
        await root.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    ).status_code == 201
    clients = {"root": root}
    for name in STUDENTS:
        clients[name] = await people.member(name, "psy", Role.student)
    clients["mona"] = await people.member("mona", "psy", Role.moderator)
    clients["ivo"] = await people.member("ivo", "psy", Role.instructor)
    async with transaction(sessions) as session:
        assignment_id = await import_review_assignment(session, slug="psy", k=2)
    return assignment_id, clients


def review_body(version: int, *, submit: bool) -> dict[str, Any]:
    return {
        "overall_stance": "mostly_agrees",
        "components": {key: "not_addressed" for key in COMPONENTS} | {"attunement": "agrees"},
        "evidence": [
            {"component": None, "text": "A secure base is a reliable presence"},
            {"component": "attunement", "text": "noticing when the client   withdraws"},
        ],
        "rationale": "Agrees on attunement.",
        "suggestion": "Quote the source.",
        "version": version,
        "submit": submit,
    }


async def test_the_whole_review_round_through_the_api(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    doc = await document(c["root"])
    base = f"/api/v1/assignments/{a}"
    P = "/api/v1/assignments/{assignment}"

    check(doc, f"{P}/paper", "get", await c["ada"].get(f"{base}/paper"))
    check(doc, f"{P}/paper", "get", await c["mona"].get(f"{base}/paper"))  # 404 problem
    for name in STUDENTS:
        saved = await c[name].put(f"{base}/paper", json={"body": paper_text(name), "submit": True})
        check(doc, f"{P}/paper", "put", saved)
        assert saved.json()["status"] == "submitted"
    bad = await c["ada"].put(f"{base}/paper", json={"body": ""})
    check(doc, f"{P}/paper", "put", bad)
    assert bad.status_code == 422

    refused = await c["mona"].put(f"{base}/phase", json={"phase": "review"})
    assert refused.status_code == 404
    moved = await c["ivo"].put(f"{base}/phase", json={"phase": "review"})
    check(doc, f"{P}/phase", "put", moved)
    assert moved.json()["tasks_created"] == 8

    alloc = await c["mona"].get(f"{base}/allocations")
    check(doc, f"{P}/allocations", "get", alloc)
    assert all(len(p["tasks"]) == 2 for p in alloc.json()["papers"])
    check(doc, f"{P}/allocations", "post", await c["mona"].post(f"{base}/allocations"))

    mine = await c["ada"].get(f"{base}/review-tasks")
    check(doc, f"{P}/review-tasks", "get", mine)
    task_ids = [t["id"] for t in mine.json()]
    assert len(task_ids) == 2
    T = "/api/v1/review-tasks/{task}"
    for task_id in task_ids:
        detail = await c["ada"].get(f"/api/v1/review-tasks/{task_id}")
        check(doc, T, "get", detail)
        draft = await c["ada"].put(
            f"/api/v1/review-tasks/{task_id}/review", json=review_body(0, submit=False)
        )
        check(doc, f"{T}/review", "put", draft)
        stale = await c["ada"].put(
            f"/api/v1/review-tasks/{task_id}/review", json=review_body(0, submit=True)
        )
        check(doc, f"{T}/review", "put", stale)
        assert stale.status_code == 409
        done = await c["ada"].put(
            f"/api/v1/review-tasks/{task_id}/review", json=review_body(1, submit=True)
        )
        check(doc, f"{T}/review", "put", done)
        assert done.json()["status"] == "submitted"
    # Someone else's task: 404, same as a task that does not exist.
    other = await c["ben"].get(f"/api/v1/review-tasks/{task_ids[0]}")
    missing = await c["ben"].get("/api/v1/review-tasks/nope")
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"]

    reopened = await c["mona"].post(f"/api/v1/review-tasks/{task_ids[0]}/reopen")
    check(doc, f"{T}/reopen", "post", reopened)
    assert reopened.json()["status"] == "started"
    again = await c["ada"].put(
        f"/api/v1/review-tasks/{task_ids[0]}/review", json=review_body(3, submit=True)
    )
    assert again.status_code == 200, again.text
    for name in ("ben", "chen", "dara"):
        for task in (await c[name].get(f"{base}/review-tasks")).json():
            r = await c[name].put(
                f"/api/v1/review-tasks/{task['id']}/review", json=review_body(0, submit=True)
            )
            assert r.status_code == 200, r.text

    stance = await c["mona"].get(f"{base}/stance")
    check(doc, f"{P}/stance", "get", stance)
    assert stance.json()["completion"]["submitted"] == 8
    assert (await c["ada"].get(f"{base}/stance")).status_code == 404  # not released yet
    events = await c["mona"].get(f"{base}/review-events?poll=1", headers={"Last-Event-ID": "0"})
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: completion" in events.text

    assert (await c["ivo"].put(f"{base}/phase", json={"phase": "feedback"})).status_code == 200
    feedback = await c["ada"].get(f"{base}/feedback")
    check(doc, f"{P}/feedback", "get", feedback)
    body = feedback.json()
    assert [r["reviewer"] for r in body["reviews"]] == ["Reviewer 1", "Reviewer 2"]
    assert '<mark class="evidence">noticing when the client withdraws</mark>' in body["paper_html"]
    rated = await c["ada"].post(
        f"/api/v1/reviews/{body['reviews'][0]['id']}/rating",
        json={"rating": 5, "comment": "Thanks"},
    )
    check(doc, "/api/v1/reviews/{review}/rating", "post", rated)
    student_stance = await c["ada"].get(f"{base}/stance")
    check(doc, f"{P}/stance", "get", student_stance)
    assert student_stance.json()["papers"] is None

    # Back to review would take 8 submitted reviews away from their authors: asked first.
    back = await c["ivo"].put(f"{base}/phase", json={"phase": "review"})
    check(doc, f"{P}/phase", "put", back)
    assert back.status_code == 409
    problem = back.json()
    assert problem["code"] == "confirmation_required"
    assert "affects 4 submitted paper(s) and 8 submitted review(s)" in problem["detail"]
    assert any("no longer see the 8 submitted review(s)" in s for s in problem["consequences"])
    assert (await c["ivo"].get(base)).json()["phase"] == "feedback"
    confirmed = await c["ivo"].put(f"{base}/phase", json={"phase": "review", "confirm": True})
    check(doc, f"{P}/phase", "put", confirmed)
    assert confirmed.json()["phase"] == "review"
    forward = await c["ivo"].put(f"{base}/phase", json={"phase": "feedback"})
    assert forward.status_code == 200  # forward needs no confirmation

    code = alloc.json()["papers"][0]["paper"].removeprefix("Paper ")
    no_reason = await c["mona"].post(
        f"{base}/reveals", json={"paper": code, "target": "author", "reason": ""}
    )
    check(doc, f"{P}/reveals", "post", no_reason)
    assert no_reason.status_code == 422
    revealed = await c["mona"].post(
        f"{base}/reveals",
        json={"paper": code, "target": "reviewers", "reason": "Complaint 42 review"},
    )
    check(doc, f"{P}/reveals", "post", revealed)
    assert revealed.headers["cache-control"] == "no-store"
    log = await c["ivo"].get(f"{base}/audit")
    check(doc, f"{P}/audit", "get", log)
    assert [e["reason"] for e in log.json() if e["action"] == "review.reveal.reviewers"] == [
        "Complaint 42 review"
    ]
    assert (await c["mona"].get(f"{base}/audit")).status_code == 404


async def test_pages_render_for_each_side(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    page = await c["ada"].get(f"/assignments/{a}")
    assert "My paper" in page.text and "Review dashboard" not in page.text
    assert "Review dashboard" in (await c["mona"].get(f"/assignments/{a}")).text
    form = await c["ada"].post(
        f"/assignments/{a}/paper",
        data={"body": paper_text("ada"), "action": "submit"},
        follow_redirects=True,
    )
    assert "Your paper is submitted." in form.text
    for name in ("ben", "chen"):
        await c[name].put(
            f"/api/v1/assignments/{a}/paper", json={"body": paper_text(name), "submit": True}
        )
    moved = await c["ivo"].post(
        f"/assignments/{a}/phase",
        data={"phase": "review", "confirmed": "yes"},
        follow_redirects=True,
    )
    assert "The assignment is now in review." in moved.text
    dashboard = await c["mona"].get(f"/assignments/{a}/review-dashboard")
    assert "<svg" in dashboard.text and "Krippendorff" in dashboard.text
    assert "Reviewer 1" in dashboard.text
    tasks = await c["ada"].get(f"/assignments/{a}/review-tasks")
    assert tasks.status_code == 200 and "Paper " in tasks.text
    task_id = (await c["ada"].get(f"/api/v1/assignments/{a}/review-tasks")).json()[0]["id"]
    review = await c["ada"].get(f"/review-tasks/{task_id}")
    assert review.status_code == 200
    assert "Use selection as evidence" in review.text
    nonce = review.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert review.text.count(f'nonce="{nonce}"') >= 2
    assert review.text.count("<script") == review.text.count('nonce="')


async def test_live_status_tells_a_reviewer_only_about_their_own_tasks(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    base = f"/api/v1/assignments/{a}"
    for name in STUDENTS:
        await c[name].put(f"{base}/paper", json={"body": paper_text(name), "submit": True})
    await c["ivo"].put(f"{base}/phase", json={"phase": "review"})
    ben_task = (await c["ben"].get(f"{base}/review-tasks")).json()[0]["id"]
    await c["ben"].put(f"/api/v1/review-tasks/{ben_task}/review", json=review_body(0, submit=False))
    ada_tasks = {t["id"] for t in (await c["ada"].get(f"{base}/review-tasks")).json()}
    stream = await c["ada"].get(f"{base}/review-events?poll=1", headers={"Last-Event-ID": "0"})
    assert stream.status_code == 200
    seen = {
        line.removeprefix("data: ")
        for line in stream.text.splitlines()
        if line.startswith("data: {") and '"paper"' in line
    }
    assert {json.loads(d)["id"] for d in seen} == ada_tasks
    assert ben_task not in stream.text
    assert "completion" not in stream.text  # counts that tick are for staff only
    staff = await c["mona"].get(f"{base}/review-events?poll=1", headers={"Last-Event-ID": "0"})
    assert '"started":1' in staff.text.replace(" ", "")
    outsider = await c["root"].get(f"{base}/review-events?poll=1")
    assert outsider.status_code == 200  # administrators see the assignment
