"""Rate limits (issue 15, item 9): a join-code guessing loop meets 429 with Retry-After, per
person and per address, and a real student joining once is never bothered."""

from __future__ import annotations

from services.models import Role
from tests.conftest import People


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
