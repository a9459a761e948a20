"""Moderators change the allocation by hand without learning who is who: from the review
dashboard Peerboard picks the student; conflicts of interest are kept on a page of their
own that names students but never a paper; naming a reviewer through the API takes a
reason and is audited before it runs, so even a refused probe is on record."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import People
from tests.review_support import paper_text
from tests.web.test_reviews_api import STUDENTS, cohort_with_people

REASON = "Dara asked for a second opinion on this paper."


async def in_review(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> tuple[int, dict[str, httpx.AsyncClient], dict[str, int]]:
    a, c = await cohort_with_people(people, sessions)
    base = f"/api/v1/assignments/{a}"
    for name in STUDENTS:
        await c[name].put(f"{base}/paper", json={"body": paper_text(name), "submit": True})
    assert (await c["ivo"].put(f"{base}/phase", json={"phase": "review"})).status_code == 200
    members = (await c["mona"].get("/api/v1/cohorts/psy/members")).json()
    ids = {m["display_name"].lower(): m["user_id"] for m in members}
    return a, c, ids


async def allocation(client: httpx.AsyncClient, a: int) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/api/v1/assignments/{a}/allocations")).json()
    return body


async def audit(c: dict[str, httpx.AsyncClient], a: int) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = (await c["ivo"].get(f"/api/v1/assignments/{a}/audit")).json()
    return log


async def test_add_and_move_from_the_dashboard_without_names(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, _ = await in_review(people, sessions)
    page = await c["mona"].get(f"/assignments/{a}/review-dashboard")
    assert page.status_code == 200 and "Change the allocation by hand" in page.text
    assert 'role="img"' in page.text  # the stance chart: the shared server-rendered SVG
    for name in ("Ada", "Ben", "Chen", "Dara"):  # no roster on the dashboard
        assert f">{name}<" not in page.text

    before = await allocation(c["mona"], a)
    paper = before["papers"][0]
    added = await c["mona"].post(
        f"/assignments/{a}/review-dashboard/assign", data={"paper": paper["id"]},
        follow_redirects=True,
    )  # fmt: skip
    assert added.status_code == 200
    assert re.search(r"Reviewer \d is added\.", added.text)
    grown = next(p for p in (await allocation(c["mona"], a))["papers"] if p["id"] == paper["id"])
    assert len(grown["tasks"]) == len(paper["tasks"]) + 1 and grown["tasks"][-1]["by_hand"]

    # With four students and k = 2, one more reviewer leaves nobody for that paper: the
    # refusal says so without naming anyone.
    full = await c["mona"].post(
        f"/assignments/{a}/review-dashboard/assign", data={"paper": paper["id"]}
    )
    assert full.status_code == 409 and "No other student can take a review" in full.text

    other = next(p for p in before["papers"] if p["id"] != paper["id"])
    task = other["tasks"][0]
    moved = await c["mona"].post(
        f"/assignments/{a}/review-dashboard/move", data={"task": task["id"]}
    )
    assert moved.status_code == 303
    after = next(p for p in (await allocation(c["mona"], a))["papers"] if p["id"] == other["id"])
    assert task["id"] not in {t["id"] for t in after["tasks"] if t["status"] != "withdrawn"}
    assert len([t for t in after["tasks"] if t["status"] != "withdrawn"]) == len(other["tasks"])

    actions = [e for e in await audit(c, a) if e["action"] in ("review.assign", "review.move")]
    assert len(actions) == 2
    assert all(e["details"] == {"assignment": a} for e in actions)  # no reviewer in the log


async def test_conflicts_of_interest_name_students_but_never_a_paper(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, ids = await in_review(people, sessions)
    for _ in range(2):  # twice: the same pair is recorded once
        kept = await c["mona"].post(
            f"/assignments/{a}/review-conflicts",
            data={"reviewer": str(ids["ben"]), "author": str(ids["chen"])},
        )
        assert kept.status_code == 303
    page = await c["mona"].get(f"/assignments/{a}/review-conflicts")
    assert page.status_code == 200
    assert page.text.count('name="exclusion"') == 1
    assert '<td dir="auto">Ben</td><td dir="auto">Chen</td>' in page.text
    codes = [p["paper"].removeprefix("Paper ") for p in (await allocation(c["mona"], a))["papers"]]
    assert codes and not any(code in page.text for code in codes)
    exclusion = re.search(r'name="exclusion" value="(\d+)"', page.text)
    assert exclusion is not None
    lifted = await c["mona"].post(
        f"/assignments/{a}/review-conflicts/lift", data={"exclusion": exclusion.group(1)}
    )
    assert lifted.status_code == 303
    assert (
        "Nobody is kept apart." in (await c["mona"].get(f"/assignments/{a}/review-conflicts")).text
    )
    actions = [e["action"] for e in await audit(c, a)]
    assert actions.count("review.exclude") == 1 and actions.count("review.exclude.lift") == 1


async def test_a_named_reviewer_takes_a_reason_and_every_attempt_is_audited(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, ids = await in_review(people, sessions)
    paper = (await allocation(c["mona"], a))["papers"][0]
    url = f"/api/v1/assignments/{a}/allocations/manual"
    no_reason = await c["mona"].post(url, json={"paper": paper["id"], "reviewer": ids["ada"]})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    assert not [e for e in await audit(c, a) if e["action"] == "review.assign.named"]

    # Probe every student by name: whatever the answers, each attempt is on record with the
    # reason (the refused ones too), and no entry names the student.
    answers = []
    for name in STUDENTS:
        response = await c["mona"].post(
            url, json={"paper": paper["id"], "reviewer": ids[name], "reason": REASON}
        )
        answers.append(response.status_code)
    assert set(answers) <= {201, 409, 422} and 422 in answers  # the author is refused
    named = [e for e in await audit(c, a) if e["action"] == "review.assign.named"]
    assert len(named) == len(STUDENTS)
    assert {e["reason"] for e in named} == {REASON}
    assert all(e["details"] == {"assignment": a} for e in named)
    assert all(e["target_id"] == paper["paper"].removeprefix("Paper ") for e in named)

    # Without a name the API picks, and needs no reason.
    other = (await allocation(c["mona"], a))["papers"][1]
    picked = await c["mona"].post(url, json={"paper": other["id"]})
    assert picked.status_code in (201, 409)


async def test_bad_choices_are_refused_and_change_nothing(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, ids = await in_review(people, sessions)
    before = await allocation(c["mona"], a)
    cases = [
        ("review-dashboard/assign", {"paper": "no-such-paper"}, 404),
        ("review-dashboard/move", {"task": "no-such-task"}, 404),
        ("review-conflicts", {"reviewer": "x", "author": str(ids["ada"])}, 422),
        ("review-conflicts", {"reviewer": str(ids["ada"]), "author": str(ids["ada"])}, 422),
        ("review-conflicts", {"reviewer": str(ids["ada"]), "author": str(ids["ivo"])}, 422),
        ("review-conflicts/lift", {"exclusion": "999999"}, 404),
    ]
    for action, data, status in cases:
        response = await c["mona"].post(f"/assignments/{a}/{action}", data=data)
        assert response.status_code == status, (action, data, response.text[:300])
        assert "<html" in response.text.lower()  # a readable page
    assert await allocation(c["mona"], a) == before
    for action in ("review-dashboard/assign", "review-dashboard/move", "review-conflicts"):
        response = await c["ada"].post(
            f"/assignments/{a}/{action}",
            data={"paper": before["papers"][0]["id"], "task": "x",
                  "reviewer": str(ids["ben"]), "author": str(ids["chen"])},
        )  # fmt: skip
        assert response.status_code == 404
    assert (await c["ada"].get(f"/assignments/{a}/review-conflicts")).status_code == 404
