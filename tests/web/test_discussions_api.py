"""Discussions over HTTP: the API and pages, per viewer, with the anonymity promise checked on
every byte each viewer receives, and hostile input."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import phases
from services.db import transaction
from services.models import Phase, Role
from services.policy import Actor
from tests.conftest import People
from tests.web.test_openapi import check, document


async def _forum(people: People, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    admin = await people.client("root", administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    made = await admin.post(
        "/api/v1/cohorts/psy/assignments",
        content=b"Title\n\nWhat is a secure base?\n",
        headers={"content-type": "text/plain"},
    )
    assignment = made.json()
    async with transaction(sessions) as session:
        await phases.change_phase(
            session, actor=Actor.system(), assignment_id=assignment["id"], phase=Phase.open
        )
    return {
        "admin": admin,
        "question": assignment["questions"][0]["id"],
        "ada": await people.member("ada", "psy", Role.student),
        "ben": await people.member("ben", "psy", Role.student),
        "mona": await people.member("mona", "psy", Role.moderator),
    }


async def test_an_anonymous_thread_reaches_peers_only_as_an_alias(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    doc = await document(f["admin"])
    q = f["question"]
    created = await f["ada"].post(
        f"/api/v1/questions/{q}/threads",
        json={"title": "Holding", "body": "My *view*", "anonymous": True},
    )
    check(doc, "/api/v1/questions/{question}/threads", "post", created)
    thread = created.json()["id"]
    reply = await f["ben"].post(f"/api/v1/threads/{thread}/posts", json={"body": "Agreed"})
    check(doc, "/api/v1/threads/{thread}/posts", "post", reply)
    again = await f["ada"].post(
        f"/api/v1/threads/{thread}/posts",
        json={"body": "Thanks", "parent": reply.json()["id"], "anonymous": True},
    )
    assert again.status_code == 201

    ben_view = await f["ben"].get(f"/api/v1/threads/{thread}")
    check(doc, "/api/v1/threads/{thread}", "get", ben_view)
    alias = ben_view.json()["opening"]["author"]["name"]
    assert alias.startswith("Anonymous ")
    mona_view = (await f["mona"].get(f"/api/v1/threads/{thread}")).json()
    assert mona_view["opening"]["author"] == {
        "name": "Ada", "anonymous": True, "is_you": False, "alias": alias,
    }  # fmt: skip

    # Everything ben can reach about the thread: no trace of Ada.
    received = b""
    for path in [
        f"/api/v1/threads/{thread}",
        f"/api/v1/questions/{q}/threads",
        f"/threads/{thread}",
        f"/questions/{q}",
        f"/api/v1/threads/{thread}/events?poll=1&last_event_id=0",
        "/api/v1/notifications",
        "/notifications",
    ]:
        response = await f["ben"].get(path)
        assert response.status_code == 200, path
        received += response.content + str(response.headers).encode()
    assert b"Ada" not in received and b"ada@" not in received and b"sub-ada" not in received
    assert alias.encode() in received
    revisions = await f["ben"].get(f"/api/v1/posts/{created.json()['opening']['id']}/revisions")
    assert revisions.status_code == 404
    # Staff see the name in the same places.
    page = await f["mona"].get(f"/threads/{thread}")
    assert "Ada" in page.text and alias in page.text


async def test_stale_edits_get_409_with_the_current_version(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    doc = await document(f["admin"])
    made = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads", json={"title": "t", "body": "one"}
    )
    post = made.json()["opening"]["id"]
    ok = await f["ada"].patch(f"/api/v1/posts/{post}", json={"body": "two", "version": 1})
    check(doc, "/api/v1/posts/{post}", "patch", ok)
    assert ok.json()["version"] == 2
    stale = await f["ada"].patch(f"/api/v1/posts/{post}", json={"body": "three", "version": 1})
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version" and stale.json()["current_version"] == 2
    check(doc, "/api/v1/posts/{post}", "patch", stale)


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox(1))",
        "<svg><script>alert(1)</script></svg>",
        "<img src=x onerror=alert(1)>",
        "{{7*7}} </script><script>alert(1)</script>",
    ],
)
async def test_hostile_markdown_is_inert_in_json_and_pages(
    people: People, sessions: async_sessionmaker[AsyncSession], body: str
) -> None:
    f = await _forum(people, sessions)
    made = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads",
        json={"title": "<script>alert('t')</script>{{7*7}}", "body": body},
    )
    assert made.status_code == 201
    html = made.json()["opening"]["body_html"].lower()
    for tag in re.findall(r"<([a-z][a-z0-9]*)([^>]*)>", html):
        name, attrs = tag
        assert name in {"p", "a", "em", "strong", "code", "pre", "br"}, html
        assert not re.search(r"\son[a-z]+\s*=", attrs), html
        for href in re.findall(r'href="([^"]*)"', attrs):
            assert href.startswith(("http://", "https://", "mailto:")), html
    page = await f["ben"].get(f"/threads/{made.json()['id']}")
    text = page.text.lower()
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;{{7*7}}" in text
    assert "&lt;/script&gt;49" not in text  # the title was not evaluated as a template


async def test_hostile_inputs_are_refused_cleanly(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    q = f["question"]
    nul = await f["ada"].post(
        f"/api/v1/questions/{q}/threads", json={"title": "t", "body": "a\x00"}
    )
    assert nul.status_code == 422
    made = await f["ada"].post(f"/api/v1/questions/{q}/threads", json={"title": "t", "body": "b"})
    thread = made.json()["id"]
    for query in ["sort=id", "page=-1", "page=99999999999", "per_page=0", "page=abc"]:
        response = await f["ben"].get(f"/api/v1/threads/{thread}?{query}")
        assert response.status_code == 422, query
    deep = b"[" * 5000 + b"]" * 5000
    response = await f["ben"].post(
        f"/api/v1/threads/{thread}/posts",
        content=deep,
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    foreign = await f["ben"].post(
        f"/api/v1/threads/{thread}/posts", json={"body": "x", "parent": "not-a-post"}
    )
    assert foreign.status_code == 422


async def test_pages_show_the_question_the_composer_notice_and_the_thread(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    q = f["question"]
    page = await f["ada"].get(f"/questions/{q}")
    assert page.status_code == 200
    assert "Anonymous to classmates" in page.text
    assert "moderators and instructors will see your name" in page.text
    posted = await f["ada"].post(
        f"/questions/{q}/threads", data={"title": "Mine", "body": "Hello", "anonymous": "on"}
    )
    assert posted.status_code == 303
    thread_page = await f["ben"].get(posted.headers["location"])
    assert "Hello" in thread_page.text and "Ada" not in thread_page.text
    assert 'nonce="' in thread_page.text and "discussions.js" in thread_page.text
    listing = (await f["ben"].get(f"/api/v1/questions/{q}/threads")).json()
    assignment = await f["ben"].get(f"/assignments/{listing['assignment']}")
    assert f"/questions/{q}" in assignment.text


async def test_live_events_resume_after_last_event_id_per_viewer(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    made = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads",
        json={"title": "t", "body": "b", "anonymous": True},
    )
    thread = made.json()["id"]
    first = await f["ben"].get(f"/api/v1/threads/{thread}/events?poll=1&last_event_id=0")
    assert first.headers["content-type"].startswith("text/event-stream")
    ids = [int(line[4:]) for line in first.text.splitlines() if line.startswith("id: ")]
    assert len(ids) == 1
    await f["ada"].post(f"/api/v1/threads/{thread}/posts", json={"body": "more", "anonymous": True})
    resumed = await f["ben"].get(
        f"/api/v1/threads/{thread}/events?poll=1", headers={"Last-Event-ID": str(ids[-1])}
    )
    assert resumed.text.count("event: post_created") == 1 and "more" in resumed.text
    assert "Ada" not in resumed.text
    staff = await f["mona"].get(
        f"/api/v1/threads/{thread}/events?poll=1", headers={"Last-Event-ID": str(ids[-1])}
    )
    assert "Ada" in staff.text


async def test_moderation_over_the_api(
    people: People, sessions: async_sessionmaker[AsyncSession], stranger: httpx.AsyncClient
) -> None:
    f = await _forum(people, sessions)
    doc = await document(f["admin"])
    made = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads", json={"title": "t", "body": "b"}
    )
    post = made.json()["opening"]["id"]
    flagged = await f["ben"].post(
        f"/api/v1/posts/{post}/flags", json={"reason": "reveals_identity", "note": "names"}
    )
    assert flagged.status_code == 204
    queue = await f["mona"].get("/api/v1/cohorts/psy/flags")
    check(doc, "/api/v1/cohorts/{cohort}/flags", "get", queue)
    assert queue.json()[0]["flags"][0]["reason"] == "reveals_identity"
    hidden = await f["mona"].post(
        "/api/v1/moderation/actions", json={"action": "hide", "target": post, "reason": "names"}
    )
    check(doc, "/api/v1/moderation/actions", "post", hidden)
    assert hidden.json()["hidden"] is True
    notes = await f["ada"].get("/api/v1/notifications")
    check(doc, "/api/v1/notifications", "get", notes)
    assert notes.json()["unread"] == 1 and "names" in notes.json()["items"][0]["message"]
    read = await f["ada"].post("/api/v1/notifications/read", json={})
    assert read.json()["unread"] == 0
    flags_page = await f["mona"].get("/cohorts/psy/flags")
    assert flags_page.status_code == 200


async def test_idempotency_keys_replay_the_first_answer_and_create_nothing_new(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    q = f["question"]
    body = {"title": "Once", "body": "only once"}
    headers = {"Idempotency-Key": "k-1"}
    first = await f["ada"].post(f"/api/v1/questions/{q}/threads", json=body, headers=headers)
    again = await f["ada"].post(f"/api/v1/questions/{q}/threads", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    listing = (await f["ada"].get(f"/api/v1/questions/{q}/threads")).json()
    assert len(listing["threads"]) == 1
    changed = await f["ada"].post(
        f"/api/v1/questions/{q}/threads", json={**body, "body": "other"}, headers=headers
    )
    assert changed.status_code == 422
    # Keys are per person: ben's k-1 is his own.
    bens = await f["ben"].post(f"/api/v1/questions/{q}/threads", json=body, headers=headers)
    assert bens.status_code == 201 and bens.json()["id"] != first.json()["id"]
    thread = first.json()["id"]
    replies = [
        await f["ben"].post(
            f"/api/v1/threads/{thread}/posts", json={"body": "r"}, headers={"Idempotency-Key": "r"}
        )
        for _ in range(3)
    ]
    assert {r.json()["id"] for r in replies} == {replies[0].json()["id"]}
    assert (await f["ben"].get(f"/api/v1/threads/{thread}")).json()["post_count"] == 2
    # A refused creation stores nothing: the same key works once the input is fixed.
    bad = await f["ben"].post(
        f"/api/v1/threads/{thread}/posts", json={"body": " "}, headers={"Idempotency-Key": "z"}
    )
    assert bad.status_code == 422


async def test_search_over_http_shows_aliases_to_peers(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    doc = await document(f["admin"])
    await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads",
        json={"title": "Mentalizing", "body": "mentalizing again", "anonymous": True},
    )
    found = await f["ben"].get("/api/v1/search", params={"q": '"mentalizing*" -'})
    check(doc, "/api/v1/search", "get", found)
    assert found.json()["hits"] and b"Ada" not in found.content
    page = await f["ben"].get("/search", params={"q": "mentalizing"})
    assert "Mentalizing" in page.text and "Ada" not in page.text.split("<main", 1)[1]


async def test_a_live_vote_is_shown_voted_to_its_voter_only(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The stream reads votes only for posts that may have them (a post only new in a batch
    has none): a vote arrives with its own post_voted event, marked for its voter."""
    f = await _forum(people, sessions)
    made = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads", json={"title": "t", "body": "b"}
    )
    thread, post = made.json()["id"], made.json()["opening"]["id"]
    start = await f["ben"].get(f"/api/v1/threads/{thread}/events?poll=1&last_event_id=0")
    created = [int(line[4:]) for line in start.text.splitlines() if line.startswith("id: ")]
    assert created and '"voted":false' in start.text
    assert (await f["ben"].put(f"/api/v1/posts/{post}/vote", json={"up": True})).status_code == 200

    def voted_event(text: str) -> dict[str, object]:
        lines = text.splitlines()
        at = lines.index("event: post_voted")
        return dict(json.loads(lines[at + 1].removeprefix("data: "))["post"])

    after = {"Last-Event-ID": str(created[-1])}
    for_ben = await f["ben"].get(f"/api/v1/threads/{thread}/events?poll=1", headers=after)
    assert voted_event(for_ben.text)["voted"] is True
    for_mona = await f["mona"].get(f"/api/v1/threads/{thread}/events?poll=1", headers=after)
    assert voted_event(for_mona.text)["voted"] is False
    everything = await f["ben"].get(f"/api/v1/threads/{thread}/events?poll=1&last_event_id=0")
    assert voted_event(everything.text)["voted"] is True  # with its creation, in one batch


async def test_a_new_reply_is_answered_as_the_thread_then_shows_it_to_its_author(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The 201 body is presented from what the reply holds, not read back: differential
    check against the same post read from the thread afterwards, for a named reply, an
    anonymous nested one (name beside alias for its author), a staff reply, and an
    anonymous reply whose author's alias is drawn by that very reply."""
    f = await _forum(people, sessions)
    created = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads", json={"title": "Holding", "body": "Mine"}
    )
    thread = created.json()["id"]
    answered: list[tuple[Any, dict[str, Any]]] = []
    named = await f["ben"].post(f"/api/v1/threads/{thread}/posts", json={"body": "*Named*"})
    answered.append((f["ben"], named.json()))
    nested = await f["ada"].post(
        f"/api/v1/threads/{thread}/posts",
        json={"body": "Nested", "parent": named.json()["id"], "anonymous": True},
    )
    answered.append((f["ada"], nested.json()))
    staff = await f["mona"].post(f"/api/v1/threads/{thread}/posts", json={"body": "Staff"})
    answered.append((f["mona"], staff.json()))
    first_alias = await f["ben"].post(
        f"/api/v1/threads/{thread}/posts", json={"body": "Hidden me", "anonymous": True}
    )
    answered.append((f["ben"], first_alias.json()))
    for client, body in answered:
        view = (await client.get(f"/api/v1/threads/{thread}")).json()
        (same,) = [p for p in view["posts"] if p["id"] == body["id"]]
        assert body == same
    assert nested.json()["parent"] == named.json()["id"]
    assert nested.json()["author"]["name"] == "Ada" and nested.json()["author"]["alias"]
    assert first_alias.json()["author"]["alias"].startswith("Anonymous ")
