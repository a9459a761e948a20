"""Bad input at the edge (issue 15, items 4 and 5): integers beyond the database's INTEGER
columns and NUL characters in ids are a 404 (in the path) or a 422 (in a query, form or
body), on SQLite and PostgreSQL alike, and never reach a query. Before the edge checks each
of these was a 500 on PostgreSQL (int4 overflow, NUL in text) and the 64-bit ones on both."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import phases
from services.db import transaction
from services.models import Phase, Role
from services.policy import Actor
from tests.conftest import People
from web.convertors import ID_MAX, IdConvertor, decimal_at_most
from web.endpoints.parsing import INT_MAX

HUGE = "99999999999999999999"  # beyond 64 bits
INT4_PLUS = "3000000000"  # beyond int4, within int8


async def _world(people: People, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
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
    ada = await people.member("ada", "psy", Role.student)
    ivo = await people.member("ivo", "psy", Role.instructor)
    question = assignment["questions"][0]["id"]
    thread = await ada.post(
        f"/api/v1/questions/{question}/threads", json={"title": "T", "body": "Opening"}
    )
    assert thread.status_code == 201
    return {
        "admin": admin,
        "ada": ada,
        "ivo": ivo,
        "assignment": assignment["id"],
        "question": question,
        "thread": thread.json()["id"],
        "post": thread.json()["opening"]["id"],
    }


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/assignments/{HUGE}",
        f"/api/v1/assignments/{INT4_PLUS}",
        f"/api/v1/assignments/{2**63}",
        f"/api/v1/questions/{INT4_PLUS}/threads",
        f"/api/v1/assignments/{INT4_PLUS}/exemplars",
        f"/api/v1/assignments/{INT4_PLUS}/exports/posts.csv",
        f"/api/v1/assignments/{HUGE}/review-events?poll=1",
        "/api/v1/threads/%00abc",
        "/api/v1/threads/ab%00",
        "/api/v1/review-tasks/x%00y",
        "/api/v1/exemplars/%00",
        "/api/v1/cohorts/ps%00y",
        "/api/v1/cohorts/psy/members",  # a real one, as the control
    ],
)
async def test_a_path_id_beyond_its_column_or_with_nul_is_404(
    people: People, sessions: async_sessionmaker[AsyncSession], path: str
) -> None:
    w = await _world(people, sessions)
    response = await w["ivo"].get(path)
    if path.endswith("/members"):
        assert response.status_code == 200
        return
    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"/api/v1/tokens/{INT4_PLUS}"),
        ("DELETE", f"/api/v1/cohorts/psy/members/{HUGE}"),
        ("DELETE", f"/api/v1/cohorts/psy/group-rules/{INT4_PLUS}"),
        ("DELETE", "/api/v1/posts/a%00b"),
    ],
)
async def test_unsafe_methods_on_out_of_range_ids_are_404(
    people: People, sessions: async_sessionmaker[AsyncSession], method: str, path: str
) -> None:
    w = await _world(people, sessions)
    assert_problem(await w["admin"].request(method, path), 404)


async def test_the_pages_answer_a_readable_404(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await _world(people, sessions)
    for path in (f"/assignments/{INT4_PLUS}", f"/questions/{HUGE}", "/threads/a%00"):
        page = await w["ada"].get(path)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")


async def test_body_ids_out_of_range_or_with_nul_are_422(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await _world(people, sessions)
    a, thread, post = w["assignment"], w["thread"], w["post"]
    cases: list[tuple[httpx.AsyncClient, str, str, Any, str]] = [
        (w["ivo"], "POST", f"/api/v1/assignments/{a}/exclusions",
         {"reviewer": 3_000_000_000, "author": 1}, "reviewer"),
        (w["ivo"], "POST", f"/api/v1/assignments/{a}/exclusions",
         {"reviewer": 1, "author": int(HUGE)}, "author"),
        (w["ivo"], "POST", f"/api/v1/assignments/{a}/allocations/manual",
         {"paper": "p", "reviewer": 3e9}, "reviewer"),
        (w["ada"], "POST", "/api/v1/notifications/read", {"ids": ["a\u0000b"]}, "ids[0]"),
        (w["ada"], "POST", f"/api/v1/threads/{thread}/posts",
         {"body": "x", "parent": "a\u0000"}, "parent"),
        (w["ivo"], "POST", f"/api/v1/assignments/{a}/exemplars",
         {"kind": "post", "source": "\u0000"}, "source"),
        (w["ivo"], "POST", f"/api/v1/assignments/{a}/exemplars",
         {"kind": "post", "source": post, "question_id": 2**40}, "question_id"),
        (w["ada"], "PATCH", f"/api/v1/posts/{post}", {"body": "x", "version": 2**31}, "version"),
        (w["ivo"], "PATCH", f"/api/v1/assignments/{a}", {"version": -(2**31) - 1}, "version"),
        (w["ivo"], "POST", "/api/v1/moderation/actions",
         {"action": "hide", "target": "\u0000"}, "target"),
    ]  # fmt: skip
    for client, method, path, body, field in cases:
        response = await client.request(method, path, json=body)
        problem = assert_problem(response, 422)
        assert problem["code"] == "invalid"
        assert [e.get("field") for e in problem["errors"]] == [field], (path, problem)


@pytest.mark.parametrize(
    "query",
    [f"page={HUGE}", f"per_page={INT4_PLUS}", "page=%C2%B2", "page=1_0", "focus=a%00", "sort=%00"],
)
async def test_query_values_out_of_range_or_with_nul_are_422(
    people: People, sessions: async_sessionmaker[AsyncSession], query: str
) -> None:
    w = await _world(people, sessions)
    assert_problem(await w["ada"].get(f"/api/v1/threads/{w['thread']}?{query}"), 422)


async def test_search_with_nul_is_422(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await _world(people, sessions)
    assert_problem(await w["ada"].get("/api/v1/search?q=secure%00base"), 422)
    page = await w["ada"].get("/search?q=%00")
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "resume",
    [
        {"headers": {"Last-Event-ID": HUGE}},
        {"headers": {"Last-Event-ID": INT4_PLUS}},
        {"headers": {"Last-Event-ID": "\uff11\uff12".encode()}},  # fullwidth digits
        {"headers": {"Last-Event-ID": "12abc"}},
        {"params": {"last_event_id": HUGE}},
        {"params": {"last_event_id": "-5"}},
    ],
)
async def test_an_unusable_last_event_id_is_ignored_and_the_stream_starts_from_now(
    people: People, sessions: async_sessionmaker[AsyncSession], resume: dict[str, Any]
) -> None:
    w = await _world(people, sessions)
    thread, ada, ivo, a = w["thread"], w["ada"], w["ivo"], w["assignment"]
    params = {"poll": "1", **resume.get("params", {})}
    headers = resume.get("headers", {})
    for client, path in (
        (ada, f"/api/v1/threads/{thread}/events"),
        (ivo, f"/api/v1/assignments/{a}/review-events"),
        (ivo, f"/api/v1/assignments/{a}/workspace/events"),
    ):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        # From now: the thread's opening, made before, is not replayed.
        assert "Opening" not in response.text


async def test_forms_with_bad_numbers_or_nul_are_422_pages(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await _world(people, sessions)
    ada, ivo = w["ada"], w["ivo"]
    csrf = {"csrf_token": ada.headers["X-CSRF-Token"]}
    staff_csrf = {"csrf_token": ivo.headers["X-CSRF-Token"]}
    cases = [
        (ada, f"/posts/{w['post']}/edit", {**csrf, "body": "x", "version": "²"}),
        (ada, f"/posts/{w['post']}/edit", {**csrf, "body": "x", "version": HUGE}),
        (ada, f"/threads/{w['thread']}/posts", {**csrf, "body": "x", "parent": "a\x00"}),
        (ivo, f"/assignments/{w['assignment']}/review-conflicts",
         {**staff_csrf, "reviewer": INT4_PLUS, "author": "1"}),
        (ivo, "/cohorts/psy/join-code", {**staff_csrf, "valid_days": "²"}),
        (ivo, f"/assignments/{w['assignment']}/settings", {**staff_csrf, "version": HUGE}),
    ]  # fmt: skip
    for client, path, form in cases:
        response = await client.post(path, data=form)
        assert response.status_code == 422, (path, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")


async def test_nothing_changed_after_refused_input(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await _world(people, sessions)
    before = (await w["ada"].get(f"/api/v1/threads/{w['thread']}")).json()
    refused = await w["ada"].post(
        f"/api/v1/threads/{w['thread']}/posts", json={"body": "sneaky", "parent": "x\u0000"}
    )
    assert refused.status_code == 422
    after = (await w["ada"].get(f"/api/v1/threads/{w['thread']}")).json()
    assert after == before


@given(st.integers(min_value=0, max_value=2**70))
def test_the_id_convertor_matches_exactly_the_database_range(number: int) -> None:
    pattern = re.compile(IdConvertor.regex)
    assert (pattern.fullmatch(str(number)) is not None) == (number <= ID_MAX)
    assert ID_MAX == INT_MAX


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**7))
def test_decimal_at_most_any_limit(limit: int, number: int) -> None:
    pattern = re.compile(decimal_at_most(limit))
    assert (pattern.fullmatch(str(number)) is not None) == (number <= limit)
    assert pattern.fullmatch("0" + str(number)) is None  # no leading zeros
