"""Rate limits (issue 15, item 9): a join-code guessing loop meets 429 with Retry-After, per
person and per address, and a real student joining once is never bothered. The other rules
(posts, flags, searches, tokens, exports, sign-in, LTI) run here with small limits
(PEERBOARD_RATE_LIMITS), and once with the defaults at a real class's pace; staff see who
is being limited, students do not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import phases
from services.db import transaction
from services.models import Phase, Role
from services.policy import Actor
from tests.conftest import People, client_for, make_settings
from tests.web.test_discussions_live import HAVE_REDIS, _free_port, redis_on
from tests.web.test_openapi import check, document
from web.app import create_app
from web.settings import Settings

# Small limits, per person and per address; join keeps its defaults (tested above).
SMALL = {
    "post": ["3 per minute", "6 per minute"],
    "flag": ["2 per minute", "20 per minute"],
    "search": ["3 per minute", "20 per minute"],
    "token": ["2 per hour", "20 per hour"],
    "export": ["2 per minute", "20 per minute"],
    "sign-in": ["1 per minute", "4 per minute"],
    "lti-launch": ["1 per minute", "3 per minute"],
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, PEERBOARD_RATE_LIMITS=SMALL)


async def _cohort_code(people: People) -> str:
    admin = await people.client("root", administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    mona = await people.member("mona", "psy", Role.moderator)
    made = await mona.post("/api/v1/cohorts/psy/join-code", json={})
    assert made.status_code == 200, made.text
    return str(made.json()["join_code"])


async def test_a_join_code_guessing_loop_meets_429(people: People) -> None:
    code = await _cohort_code(people)
    guesser = await people.client("mallory")
    answers = [
        (await guesser.post("/api/v1/join", json={"code": f"WRONG{i:04d}"})).status_code
        for i in range(10)
    ]
    assert 429 not in answers  # ten honest mistakes are allowed
    refused = await guesser.post("/api/v1/join", json={"code": code})  # even the right one
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= 600
    doc = await document(guesser)
    check(doc, "/api/v1/join", "post", refused)
    documented = doc["paths"]["/api/v1/join"]["post"]["responses"]["429"]["$ref"]
    response = doc["components"]["responses"][documented.rsplit("/", 1)[1]]
    assert response["headers"]["Retry-After"]["required"] is True  # as it is sent
    page = await guesser.post(
        "/join", data={"code": code, "csrf_token": guesser.headers["X-CSRF-Token"]}
    )
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert (await guesser.get("/api/v1/me")).json()["cohorts"] == []  # nothing joined

    student = await people.client("ada")  # someone else, joining once: not bothered
    joined = await student.post("/api/v1/join", json={"code": code})
    assert joined.status_code == 200, joined.text


async def test_one_address_cycling_accounts_is_limited_too(people: People) -> None:
    await _cohort_code(people)
    statuses: list[int] = []
    for n in range(4):
        client = await people.client(f"bot{n}")  # all from the same test address
        for i in range(10):
            response = await client.post("/api/v1/join", json={"code": f"X{n}{i:04d}"})
            statuses.append(response.status_code)
    assert statuses[:30].count(429) == 0
    assert set(statuses[30:]) == {429}


async def test_with_redis_the_limit_holds_across_processes(
    database_url: str, people: People
) -> None:
    """Two app instances on one Redis share the window: guesses spread over both still
    meet 429 after ten."""
    if not HAVE_REDIS:
        pytest.skip("redis-server is not installed")
    await _cohort_code(people)
    guesser = await people.client("mallory")
    port = _free_port()
    settings = make_settings(database_url, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    with redis_on(port):
        one, two = create_app(settings), create_app(settings)
        async with LifespanManager(one) as a, LifespanManager(two) as b:
            statuses = []
            for i in range(12):
                client = client_for(a.app if i % 2 else b.app)
                client.cookies = guesser.cookies
                client.headers["X-CSRF-Token"] = guesser.headers["X-CSRF-Token"]
                async with client:
                    answer = await client.post("/api/v1/join", json={"code": f"NOPE{i}"})
                statuses.append(answer.status_code)
    assert 429 not in statuses[:10]
    assert statuses[10:] == [429, 429]


def assert_limited(response: httpx.Response, *, html: bool = False) -> None:
    assert response.status_code == 429, response.text
    assert 0 < int(response.headers["retry-after"]) <= 3600
    if html:
        assert response.headers["content-type"].startswith("text/html")
        return
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "rate_limited" and problem["status"] == 429
    assert "wait" in problem["detail"]


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
        "assignment": assignment["id"],
        "question": assignment["questions"][0]["id"],
        "ada": await people.member("ada", "psy", Role.student),
        "ben": await people.member("ben", "psy", Role.student),
        "mona": await people.member("mona", "psy", Role.moderator),
    }


def _form(client: httpx.AsyncClient, **fields: str) -> dict[str, str]:
    return {**fields, "csrf_token": client.headers["X-CSRF-Token"]}


async def test_posts_meet_429_after_the_limit_and_staff_see_who(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    doc = await document(f["admin"])
    ada, q = f["ada"], f["question"]
    opened = await ada.post(f"/api/v1/questions/{q}/threads", json={"title": "T", "body": "B"})
    assert opened.status_code == 201, opened.text
    thread = opened.json()["id"]
    for n in range(2):
        reply = await ada.post(f"/api/v1/threads/{thread}/posts", json={"body": f"r{n}"})
        assert reply.status_code == 201, reply.text
    over = await ada.post(f"/api/v1/threads/{thread}/posts", json={"body": "one more"})
    assert_limited(over)
    check(doc, "/api/v1/threads/{thread}/posts", "post", over)
    again = await ada.post(f"/api/v1/questions/{q}/threads", json={"title": "U", "body": "B"})
    assert_limited(again)
    check(doc, "/api/v1/questions/{question}/threads", "post", again)
    form_reply = await ada.post(f"/threads/{thread}/posts", data=_form(ada, body="form"))
    assert_limited(form_reply, html=True)
    form_thread = await ada.post(f"/questions/{q}/threads", data=_form(ada, title="V", body="form"))
    assert_limited(form_thread, html=True)
    view = (await ada.get(f"/api/v1/threads/{thread}")).json()
    assert view["post_count"] == 3  # nothing refused was stored

    # Someone else at the same pace is not bothered (the address allows 6).
    ben_reply = await f["ben"].post(f"/api/v1/threads/{thread}/posts", json={"body": "hi"})
    assert ben_reply.status_code == 201, ben_reply.text

    listed = await f["mona"].get("/api/v1/cohorts/psy/rate-limits")
    assert listed.status_code == 200, listed.text
    check(doc, "/api/v1/cohorts/{cohort}/rate-limits", "get", listed)
    rows = listed.json()
    assert [(r["display_name"], r["rule"], r["count"]) for r in rows] == [("Ada", "post", 4)]
    members = await f["mona"].get("/cohorts/psy/members")
    assert "Rate limited in the last hour" in members.text
    assert "4 × too many posts" in members.text
    assert (await f["ben"].get("/api/v1/cohorts/psy/rate-limits")).status_code == 404
    assert "Rate limited" not in (await f["ben"].get("/cohorts/psy/members")).text


async def test_one_address_posting_as_many_people_is_limited(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    q = f["question"]
    statuses = []
    for who in ("ada", "ben", "mona"):
        for n in range(3):
            made = await f[who].post(
                f"/api/v1/questions/{q}/threads", json={"title": f"{who}{n}", "body": "B"}
            )
            statuses.append(made.status_code)
    assert statuses[:6] == [201] * 6
    assert set(statuses[6:]) == {429}


async def test_flags_searches_tokens_and_exports_meet_429(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    doc = await document(f["admin"])
    ada, ben, mona = f["ada"], f["ben"], f["mona"]
    opened = await ben.post(
        f"/api/v1/questions/{f['question']}/threads", json={"title": "T", "body": "B"}
    )
    thread = opened.json()["id"]
    posts = [opened.json()["opening"]["id"]]
    for n in range(2):
        reply = await ben.post(f"/api/v1/threads/{thread}/posts", json={"body": f"r{n}"})
        posts.append(reply.json()["id"])
    flag = {"reason": "off_topic"}
    for post in posts[:2]:
        answer = await ada.post(f"/api/v1/posts/{post}/flags", json=flag)
        assert answer.status_code == 204, answer.text
    over = await ada.post(f"/api/v1/posts/{posts[2]}/flags", json=flag)
    assert_limited(over)
    check(doc, "/api/v1/posts/{post}/flags", "post", over)
    form = await ada.post(f"/posts/{posts[2]}/flag", data=_form(ada, reason="off_topic"))
    assert_limited(form, html=True)

    for _ in range(3):
        assert (await ada.get("/api/v1/search", params={"q": "B"})).status_code == 200
    over = await ada.get("/api/v1/search", params={"q": "B"})
    assert_limited(over)
    check(doc, "/api/v1/search", "get", over)
    assert_limited(await ada.get("/search", params={"q": "B"}), html=True)

    for n in range(2):
        made = await ada.post("/api/v1/tokens", json={"name": f"t{n}"})
        assert made.status_code == 201, made.text
    over = await ada.post("/api/v1/tokens", json={"name": "t3"})
    assert_limited(over)
    check(doc, "/api/v1/tokens", "post", over)
    assert len((await ada.get("/api/v1/tokens")).json()) == 2

    path = f"/api/v1/assignments/{f['assignment']}/exports/posts.csv"
    for _ in range(2):
        assert (await mona.get(path)).status_code == 200
    over = await mona.get(path)
    assert_limited(over)
    check(doc, "/api/v1/assignments/{assignment}/exports/{kind}.{format}", "get", over)

    rows = (await mona.get("/api/v1/cohorts/psy/rate-limits")).json()
    seen = {(r["display_name"], r["rule"]): r["count"] for r in rows}
    assert seen == {
        ("Ada", "flag"): 2, ("Ada", "search"): 2, ("Ada", "token"): 1, ("Mona", "export"): 1,
    }  # fmt: skip


async def test_sign_in_and_lti_launches_are_limited_by_address(stranger: httpx.AsyncClient) -> None:
    """Counted before anything else (even for an unknown provider), per address."""
    answers = [(await stranger.get("/auth/nowhere/login")).status_code for _ in range(4)]
    assert 429 not in answers
    assert_limited(await stranger.get("/auth/nowhere/callback"), html=True)
    lti = [(await stranger.post("/lti/login", data={})).status_code for _ in range(3)]
    assert 429 not in lti
    assert (await stranger.post("/lti/launch", data={})).status_code == 429


async def test_defaults_never_bother_a_real_class_pace(
    database_url: str, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """With the default limits: a student posting 8 times, searching 20 times, flagging 3
    posts and an instructor taking 5 exports in a minute meet no 429."""
    f = await _forum(people, sessions)
    app = create_app(make_settings(database_url))
    async with LifespanManager(app) as manager:

        def as_(who: str) -> httpx.AsyncClient:
            client = client_for(manager.app)
            client.cookies = f[who].cookies
            client.headers["X-CSRF-Token"] = f[who].headers["X-CSRF-Token"]
            return client

        statuses: list[int] = []
        async with as_("ada") as ada, as_("ben") as ben, as_("mona") as mona:
            opened = await ada.post(
                f"/api/v1/questions/{f['question']}/threads", json={"title": "T", "body": "B"}
            )
            thread = opened.json()["id"]
            for n in range(7):
                reply = await ada.post(f"/api/v1/threads/{thread}/posts", json={"body": f"r{n}"})
                statuses.append(reply.status_code)
                if n < 3:
                    flagged = await ben.post(
                        f"/api/v1/posts/{reply.json()['id']}/flags", json={"reason": "off_topic"}
                    )
                    statuses.append(flagged.status_code)
            for _ in range(20):
                statuses.append((await ada.get("/api/v1/search", params={"q": "r"})).status_code)
            path = f"/api/v1/assignments/{f['assignment']}/exports/posts.csv"
            for _ in range(5):
                statuses.append((await mona.get(path)).status_code)
            statuses.append((await ada.post("/api/v1/tokens", json={"name": "x"})).status_code)
    assert 429 not in statuses
    assert set(statuses) <= {200, 201, 204}
