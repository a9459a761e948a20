"""Rate limits (issue 15, item 9): a join-code guessing loop meets 429 with Retry-After, per
person and per address, and a real student joining once is never bothered."""

from __future__ import annotations

import pytest
from asgi_lifespan import LifespanManager

from services.models import Role
from tests.conftest import People, client_for, make_settings
from tests.web.test_discussions_live import HAVE_REDIS, _free_port, redis_on
from web.app import create_app


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
