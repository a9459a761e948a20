"""Server-side sessions, CSRF, personal access tokens, and losing access at once."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db import transaction
from services.models import Role, WebSession, utcnow
from tests.conftest import People, client_for


async def test_me_shows_the_person_their_cohorts_and_a_csrf_token(people: People) -> None:
    admin = await people.client("root", administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    ada = await people.member("ada", "psy", Role.student)
    me = (await ada.get("/api/v1/me")).json()
    assert me["user"]["display_name"] == "Ada"
    assert me["cohorts"] == [{"slug": "psy", "name": "PSY", "role": "student"}]
    assert me["csrf_token"] == ada.headers["X-CSRF-Token"]


async def test_anonymous_me_is_empty(stranger: httpx.AsyncClient) -> None:
    assert (await stranger.get("/api/v1/me")).json() == {
        "user": None,
        "cohorts": [],
        "csrf_token": None,
    }


async def test_unsafe_requests_need_the_csrf_token(people: People) -> None:
    admin = await people.client("root", administrator=True)
    token = admin.headers.pop("X-CSRF-Token")
    missing = await admin.post("/api/v1/cohorts", json={"slug": "a", "name": "A"})
    assert missing.status_code == 403
    assert missing.json()["code"] == "csrf_failed"
    wrong = await admin.post(
        "/api/v1/cohorts", json={"slug": "a", "name": "A"}, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403
    right = await admin.post(
        "/api/v1/cohorts", json={"slug": "a", "name": "A"}, headers={"X-CSRF-Token": token}
    )
    assert right.status_code == 201
    # The refused attempts changed nothing.
    assert [c["slug"] for c in (await admin.get("/api/v1/cohorts")).json()] == ["a"]


async def test_forms_carry_the_csrf_token(people: People) -> None:
    admin = await people.client("root", administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    code = (await admin.post("/api/v1/cohorts/psy/join-code", json={})).json()["join_code"]
    ada = await people.client("ada")
    token = ada.headers.pop("X-CSRF-Token")
    refused = await ada.post("/join", data={"code": code})
    assert refused.status_code == 403
    assert "security token" in refused.text
    joined = await ada.post("/join", data={"code": code, "csrf_token": token})
    assert joined.status_code == 303
    assert joined.headers["location"] == "/cohorts/psy"


async def test_logout_kills_the_session_and_a_copied_cookie_stops_working(
    people: People, asgi: object
) -> None:
    ada = await people.client("ada")
    cookie = ada.cookies["peerboard_session"]
    copy = client_for(asgi)
    copy.cookies.set("peerboard_session", cookie)
    assert (await copy.get("/api/v1/me")).json()["user"]["display_name"] == "Ada"

    out = await ada.post("/auth/logout", data={"csrf_token": ada.headers["X-CSRF-Token"]})
    assert out.status_code == 303
    assert "Max-Age=0" in out.headers["set-cookie"]

    replay = await copy.get("/api/v1/me")
    assert replay.json()["user"] is None
    assert "Max-Age=0" in replay.headers["set-cookie"]  # the dead cookie is cleared
    await copy.aclose()


async def test_idle_and_absolute_timeouts_end_sessions(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await people.client("ada")
    ben = await people.client("ben")
    users = people.users
    async with transaction(sessions) as session:
        await session.execute(
            update(WebSession)
            .where(WebSession.user_id == users["ada"].id)
            .values(last_seen_at=utcnow() - timedelta(hours=13))
        )
        await session.execute(
            update(WebSession)
            .where(WebSession.user_id == users["ben"].id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await ada.get("/api/v1/me")).json()["user"] is None
    assert (await ben.get("/api/v1/me")).json()["user"] is None


async def test_activity_is_recorded_without_a_write_on_every_request(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await people.client("ada")
    past = utcnow() - timedelta(minutes=30)
    async with transaction(sessions) as session:
        await session.execute(update(WebSession).values(last_seen_at=past))
    await ada.get("/api/v1/me")
    async with transaction(sessions, write=False) as session:
        seen = (await session.execute(select(WebSession.last_seen_at))).scalar_one()
    assert seen > past + timedelta(minutes=29)


async def test_a_removed_member_loses_access_at_once(people: People) -> None:
    admin = await people.client("root", administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    ada = await people.member("ada", "psy", Role.student)
    assert (await ada.get("/api/v1/cohorts/psy")).status_code == 200
    ada_id = people.users["ada"].id
    assert (await admin.delete(f"/api/v1/cohorts/psy/members/{ada_id}")).status_code == 204
    assert (await ada.get("/api/v1/cohorts/psy")).status_code == 404
    assert (await ada.get("/cohorts/psy")).status_code == 404


async def test_personal_access_tokens(people: People, asgi: object) -> None:
    admin = await people.client("root", administrator=True)
    created = await admin.post("/api/v1/tokens", json={"name": "grading script"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    raw = body["token"]
    assert raw.startswith("pbt_") and body["prefix"] == raw[:10]

    program = client_for(asgi)
    program.headers["Authorization"] = f"Bearer {raw}"
    # No cookie and no CSRF token: the bearer token alone authorizes.
    made = await program.post("/api/v1/cohorts", json={"slug": "via-token", "name": "T"})
    assert made.status_code == 201

    listed = (await admin.get("/api/v1/tokens")).json()
    assert [t["name"] for t in listed] == ["grading script"]
    assert "token" not in listed[0]
    assert listed[0]["last_used_at"] is not None

    assert (await admin.delete(f"/api/v1/tokens/{body['id']}")).status_code == 204
    refused = await program.get("/api/v1/cohorts")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert "Bearer" in refused.headers["www-authenticate"]
    await program.aclose()


async def test_tokens_belong_to_their_owner_and_malformed_bearers_are_401(
    people: People, asgi: object
) -> None:
    ada = await people.client("ada")
    ben = await people.client("ben")
    made = (await ada.post("/api/v1/tokens", json={"name": "mine", "expires_in_days": 30})).json()
    assert made["expires_at"] is not None
    assert (await ben.delete(f"/api/v1/tokens/{made['id']}")).status_code == 404
    assert (await ben.get("/api/v1/tokens")).json() == []
    bad = await ada.post("/api/v1/tokens", json={"name": "x", "expires_in_days": 0})
    assert bad.status_code == 422
    program = client_for(asgi)
    for header in ("Bearer", "Basic abc", "Bearer pbt_unknown"):
        response = await program.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
    await program.aclose()


async def test_joining_by_code(people: People) -> None:
    ivo = await people.client("ivo", administrator=True)
    await ivo.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    code = (await ivo.post("/api/v1/cohorts/psy/join-code", json={})).json()["join_code"]
    ada = await people.client("ada")
    lower = "-".join([code[:4].lower(), code[4:].lower()])  # typed loosely, still accepted
    joined = await ada.post("/api/v1/join", json={"code": lower})
    assert joined.status_code == 200
    assert joined.json()["my_role"] == "student"

    # A rotated code: the old one stops working, with the same answer as a made-up one.
    await ivo.post("/api/v1/cohorts/psy/join-code", json={})
    ben = await people.client("ben")
    old = await ben.post("/api/v1/join", json={"code": code})
    made_up = await ben.post("/api/v1/join", json={"code": "ZZZZ9999"})
    assert old.status_code == made_up.status_code == 422
    assert old.json()["errors"] == made_up.json()["errors"]

    off = await ivo.post("/api/v1/cohorts/psy/join-code", json={"disable": True})
    assert off.json() == {"join_code": None, "expires_at": None}


async def test_over_https_the_cookie_is_host_prefixed_and_secure(database_url: str) -> None:
    import json

    from asgi_lifespan import LifespanManager

    from tests.conftest import make_settings
    from tests.oidc.rogue import run_rogue_provider
    from web.app import create_app

    base = "https://board.uni.example"
    with run_rogue_provider(redirect_uris=[f"{base}/auth/uni/callback"]) as idp:
        providers = [{"name": "uni", "issuer": idp.issuer, "client_id": idp.client_id,
                      "client_secret": idp.client_secret}]  # fmt: skip
        settings = make_settings(
            database_url, PEERBOARD_BASE_URL=base, PEERBOARD_OIDC_PROVIDERS=json.dumps(providers)
        )
        async with LifespanManager(create_app(settings)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url=base) as browser:
                start = await browser.get("/auth/uni/login")
    assert start.status_code == 302
    cookie = start.headers["set-cookie"]
    assert cookie.startswith("__Host-peerboard=")
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Domain" not in cookie and "Path=/" in cookie
    assert start.headers["strict-transport-security"].startswith("max-age=")


async def test_an_instructor_creates_a_cohort_from_the_home_page(people: People) -> None:
    admin = await people.client("root", administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    ivo = await people.member("ivo", "psy", Role.instructor)
    home = await ivo.get("/")
    assert 'action="/cohorts"' in home.text
    made = await ivo.post("/cohorts", data={"slug": "psy-2027", "name": "PSY 2027"})
    assert made.status_code == 303 and made.headers["location"] == "/cohorts/psy-2027"
    page = await ivo.get("/cohorts/psy-2027")
    assert "PSY 2027 is ready" in page.text
    bad = await ivo.post("/cohorts", data={"slug": "Not Valid", "name": "X"})
    assert bad.status_code == 422 and "lowercase letters" in bad.text
    ada = await people.member("ada", "psy", Role.student)
    assert 'action="/cohorts"' not in (await ada.get("/")).text
