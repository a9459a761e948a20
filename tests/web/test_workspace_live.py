"""The moderator's workspace follows the assignment live: posts, flags, papers and reviews
each produce a `workspace` event carrying the re-rendered sections, for staff only; flags
never reach the thread's readers."""

from __future__ import annotations

import json

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import People
from tests.web.test_openapi import check, document
from tests.web.test_reviews_api import cohort_with_people


def parse(stream: str) -> list[tuple[int, str, dict[str, dict[str, str]]]]:
    out = []
    for block in stream.strip().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out


async def poll(client: httpx.AsyncClient, assignment: int, after: int) -> httpx.Response:
    return await client.get(
        f"/api/v1/assignments/{assignment}/workspace/events?poll=1",
        headers={"Last-Event-ID": str(after)},
    )


async def test_staff_see_posts_flags_and_papers_arrive(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    doc = await document(c["root"])
    detail = (await c["ada"].get(f"/api/v1/assignments/{a}")).json()
    question = detail["questions"][0]["id"]

    # Nothing has happened yet: an empty poll.
    first = await poll(c["mona"], a, 0)
    assert first.status_code == 200 and first.headers["content-type"].startswith(
        "text/event-stream"
    )
    check(doc, "/api/v1/assignments/{assignment}/workspace/events", "get", first)
    before = parse(first.text)
    cursor = before[-1][0] if before else 0

    made = await c["ada"].post(
        f"/api/v1/questions/{question}/threads",
        json={"title": "Secure base, first thoughts", "body": "A reliable presence."},
    )
    assert made.status_code == 201, made.text
    batch = parse((await poll(c["mona"], a, cursor)).text)
    assert len(batch) == 1, "a batch of changes is one workspace event"
    event_id, name, data = batch[0]
    assert name == "workspace"
    sections = data["sections"]
    assert set(sections) == {"summary", "participation", "flags", "completion", "stance", "audit"}
    assert "<td>1</td><td>1</td>" in sections["participation"]  # one thread, one post in Q1
    assert "Ada Canary" not in sections["participation"].split("Q1")[1].split("</tr>")[0]
    cursor = event_id

    # A classmate flags the post: the workspace hears of it, the thread's readers do not.
    post, thread = made.json()["opening"]["id"], made.json()["id"]
    thread_events = f"/api/v1/threads/{thread}/events?poll=1"
    quiet_from = parse(
        (await c["ben"].get(thread_events, headers={"Last-Event-ID": "0"})).text
    )  # fmt: skip
    flagged = await c["ben"].post(f"/api/v1/posts/{post}/flags", json={"reason": "off_topic"})
    assert flagged.status_code == 204, flagged.text
    batch = parse((await poll(c["mona"], a, cursor)).text)
    assert len(batch) == 1
    cursor, _, data = batch[0]
    assert "Secure base, first thoughts" in data["sections"]["flags"]
    assert "off topic" in data["sections"]["flags"]
    assert "1 open flag" in data["sections"]["summary"]
    after_flag = parse((await c["ben"].get(thread_events, headers={"Last-Event-ID": "0"})).text)
    assert len(after_flag) == len(quiet_from), "a flag must not tick on the thread's stream"

    # A paper comes in.
    saved = await c["chen"].put(
        f"/api/v1/assignments/{a}/paper", json={"body": "My paper.", "submit": True}
    )
    assert saved.status_code == 200, saved.text
    batch = parse((await poll(c["mona"], a, cursor)).text)
    assert len(batch) == 1 and "1 papers in" in batch[0][2]["sections"]["summary"]

    # Instructors get the same sections, with the audit log; students get nothing at all.
    instructor = parse((await poll(c["ivo"], a, 0)).text)
    assert instructor and "<h2" in instructor[-1][2]["sections"]["audit"]
    assert parse((await poll(c["mona"], a, 0)).text)[-1][2]["sections"]["audit"] == ""
    for who in ("ada", "ben"):
        refused = await poll(c[who], a, 0)
        assert refused.status_code == 404
        check(doc, "/api/v1/assignments/{assignment}/workspace/events", "get", refused)


async def test_a_moderator_who_loses_the_role_stops_receiving(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c = await cohort_with_people(people, sessions)
    question = (await c["ada"].get(f"/api/v1/assignments/{a}")).json()["questions"][0]["id"]
    await c["ada"].post(
        f"/api/v1/questions/{question}/threads", json={"title": "T", "body": "Body."}
    )
    assert parse((await poll(c["mona"], a, 0)).text)
    # The instructor makes mona a student: her next poll is refused like any student's.
    members = (await c["ivo"].get("/api/v1/cohorts/psy/members")).json()
    mona = next(m for m in members if m["display_name"].startswith("Mona"))
    demoted = await c["ivo"].put(
        f"/api/v1/cohorts/psy/members/{mona['user_id']}", json={"role": "student"}
    )
    assert demoted.status_code == 200, demoted.text
    assert (await poll(c["mona"], a, 0)).status_code == 404
