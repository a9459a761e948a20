"""Every route has an authorization expectation for every kind of visitor.

Adding a route without adding it to EXPECTATIONS fails `test_every_route_has_expectations`;
each (route, role) pair is then exercised against a fresh world.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from starlette.routing import Route

from services import assignments, cohorts, importing, memberships, phases
from services.db import make_engine, make_sessionmaker, transaction
from services.models import Phase, Role
from services.policy import Actor
from tests.conftest import People, make_settings
from tests.web import (
    route_expectations_authoring,
    route_expectations_discussions,
    route_expectations_exemplars,
    route_expectations_lti,
    route_expectations_lti_services,
    route_expectations_mail,
    route_expectations_reviews,
    route_expectations_webhooks,
)
from tests.web.policy_support import (
    API_MEMBER,
    PAGE_MEMBER,
    ROLES,
    STAFF_ONLY,
    TEXT,
    Builder,
    World,
    expect,
    get,
    own_token,
    same,
    send,
)
from web.app import create_app

AREAS = (
    route_expectations_discussions,
    route_expectations_reviews,
    route_expectations_exemplars,
    route_expectations_mail,
    route_expectations_webhooks,
    route_expectations_lti,
    route_expectations_lti_services,
    route_expectations_authoring,
)

EXPECTATIONS: dict[tuple[str, str], tuple[Builder, dict[str, int]]] = {
    ("home", "GET"): (get("/"), same(200)),
    ("auth:signin", "GET"): (get("/signin"), same(200)),
    ("auth:providers", "GET"): (get("/auth/providers"), same(200)),
    # No provider is configured in this world; the flow itself is tested in test_signin.py.
    ("auth:login", "GET"): (get("/auth/uni/login"), same(404)),
    ("auth:callback", "GET"): (get("/auth/uni/callback?code=x&state=y"), same(404)),
    ("auth:logout", "POST"): (send("POST", "/auth/logout"), same(303)),
    ("join", "POST"): (send("POST", "/join", data={"code": "{w.join_code}"}), same(303)),
    ("cohorts:create", "POST"): (
        send("POST", "/cohorts", data={"slug": "new", "name": "New"}),
        expect(303, 404, 404, 404, 303, 303),
    ),
    ("cohorts:detail", "GET"): (get("/cohorts/psy"), PAGE_MEMBER),
    ("cohorts:members", "GET"): (get("/cohorts/psy/members"), expect(303, 404, 404, 200, 200, 200)),
    ("cohorts:members:role", "POST"): (
        send("POST", "/cohorts/psy/members/{w.ben_id}/role", data={"role": "moderator"}),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    ("cohorts:members:remove", "POST"): (
        send("POST", "/cohorts/psy/members/{w.ben_id}/remove"),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    ("cohorts:time-zone", "POST"): (
        send("POST", "/cohorts/psy/time-zone", data={"time_zone": "Europe/Berlin"}),
        expect(303, 404, 403, 403, 303, 303),
    ),
    ("cohorts:join-code", "POST"): (
        send("POST", "/cohorts/psy/join-code", data={"action": "rotate"}),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    ("cohorts:group-rules:add", "POST"): (
        send(
            "POST",
            "/cohorts/psy/group-rules",
            data={"issuer": "https://idp", "group": "g2", "role": "student"},
        ),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    ("cohorts:group-rules:delete", "POST"): (
        send("POST", "/cohorts/psy/group-rules/{w.rule_id}/delete"),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    ("assignments:detail", "GET"): (get("/assignments/{w.assignment_id}"), PAGE_MEMBER),
    ("assignments:settings", "GET"): (
        get("/assignments/{w.assignment_id}/settings"),
        expect(303, 404, 404, 200, 200, 200),
    ),
    ("assignments:settings:save", "POST"): (
        send(
            "POST",
            "/assignments/{w.assignment_id}/settings",
            data={
                "version": "2",
                "title": "Renamed",
                "late_policy": "accept",
                "reviews_per_paper": "2",
            },
        ),
        expect(303, 404, 404, 303, 303, 303),
    ),
    ("healthz", "GET"): (get("/healthz"), same(200)),
    ("readyz", "GET"): (get("/readyz"), same(200)),
    ("api:openapi", "GET"): (get("/api/v1/openapi.json"), same(200)),
    ("api:cohorts:list", "GET"): (get("/api/v1/cohorts"), same(200)),
    ("api:cohorts:create", "POST"): (
        send("POST", "/api/v1/cohorts", json={"slug": "new", "name": "New"}),
        expect(404, 404, 404, 404, 201, 201),
    ),
    ("api:cohorts:detail", "GET"): (get("/api/v1/cohorts/psy"), API_MEMBER),
    ("api:assignments:list", "GET"): (get("/api/v1/cohorts/psy/assignments"), API_MEMBER),
    ("api:assignments:create", "POST"): (
        send("POST", "/api/v1/cohorts/psy/assignments", **TEXT),
        expect(*STAFF_ONLY, 201, 201, 201),
    ),
    ("api:assignments:detail", "GET"): (get("/api/v1/assignments/{w.assignment_id}"), API_MEMBER),
    ("api:assignments:update", "PATCH"): (
        send(
            "PATCH",
            "/api/v1/assignments/{w.assignment_id}",
            json={"version": 2, "auto_advance": True},
        ),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:me", "GET"): (get("/api/v1/me"), same(200)),
    ("api:tokens:list", "GET"): (get("/api/v1/tokens"), expect(401, 200, 200, 200, 200, 200)),
    ("api:me:data", "GET"): (get("/api/v1/me/data"), expect(401, 200, 200, 200, 200, 200)),
    ("api:tokens:create", "POST"): (
        send("POST", "/api/v1/tokens", json={"name": "t"}),
        expect(401, 201, 201, 201, 201, 201),
    ),
    ("api:tokens:revoke", "DELETE"): (own_token, expect(401, 204, 204, 204, 204, 204)),
    ("api:join", "POST"): (
        send("POST", "/api/v1/join", json={"code": "{w.join_code}"}),
        expect(401, 200, 200, 200, 200, 200),
    ),
    ("api:members:list", "GET"): (
        get("/api/v1/cohorts/psy/members"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:members:rate-limited", "GET"): (
        get("/api/v1/cohorts/psy/rate-limits"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:members:role", "PUT"): (
        send("PUT", "/api/v1/cohorts/psy/members/{w.ben_id}", json={"role": "moderator"}),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:members:remove", "DELETE"): (
        send("DELETE", "/api/v1/cohorts/psy/members/{w.ben_id}"),
        expect(*STAFF_ONLY, 204, 204, 204),
    ),
    ("api:join-code:get", "GET"): (
        get("/api/v1/cohorts/psy/join-code"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:join-code:rotate", "POST"): (
        send("POST", "/api/v1/cohorts/psy/join-code", json={}),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:group-rules:list", "GET"): (
        get("/api/v1/cohorts/psy/group-rules"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:group-rules:create", "POST"): (
        send(
            "POST",
            "/api/v1/cohorts/psy/group-rules",
            json={"issuer": "https://idp", "group": "g2", "role": "student"},
        ),
        expect(*STAFF_ONLY, 201, 201, 201),
    ),
    ("api:group-rules:delete", "DELETE"): (
        send("DELETE", "/api/v1/cohorts/psy/group-rules/{w.rule_id}"),
        expect(*STAFF_ONLY, 204, 204, 204),
    ),
}


# Each area keeps its expectations in its own module, merged here.
for _area in AREAS:
    EXPECTATIONS.update(_area.EXPECTATIONS)


def served_routes() -> set[tuple[str, str]]:
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
    return {
        (route.name, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_has_expectations() -> None:
    missing = served_routes() - set(EXPECTATIONS)
    stale = set(EXPECTATIONS) - served_routes()
    assert not missing, f"routes without an authorization expectation: {sorted(missing)}"
    assert not stale, f"expectations for routes that no longer exist: {sorted(stale)}"


@pytest.fixture
async def world(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[World]:
    path = tmp_path / "policy.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    system = Actor.system()
    async with LifespanManager(create_app(make_settings(url))) as manager:
        people = People(manager.app, sessions)
        async with transaction(sessions) as session:
            await cohorts.create_cohort(session, actor=system, slug="psy", name="PSY")
            await cohorts.create_cohort(session, actor=system, slug="other", name="Other")
        for name, slug, role in [("ivo", "psy", Role.instructor), ("mona", "psy", Role.moderator),
                                 ("ada", "psy", Role.student), ("ben", "psy", Role.student),
                                 ("zed", "other", Role.student)]:  # fmt: skip
            await people.member(name, slug, role)
        await people.user("root", administrator=True)
        async with transaction(sessions) as session:
            cohort = await cohorts.get_cohort(session, actor=system, slug="psy")
            draft = importing.parse_assignment_text("Title\n\nWhat is a secure base?\n")
            made = await assignments.import_assignment(
                session, actor=system, cohort=cohort, draft=draft
            )
            assert made.id is not None
            await phases.change_phase(
                session, actor=system, assignment_id=made.id, phase=Phase.open
            )
            rule = await memberships.add_group_rule(
                session, actor=system, slug="psy", issuer="https://idp", group="g",
                role=Role.student,
            )  # fmt: skip
            code = await memberships.rotate_join_code(session, actor=system, slug="psy")
        assert code.join_code is not None
        ben = people.users["ben"]
        assert ben.id is not None
        world = World(people, made.id, rule.id, ben.id, code.join_code, sessions)
        for area in AREAS:
            await area.setup(world)
        yield world
        await people.close()
    await engine.dispose()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(EXPECTATIONS), ids=lambda r: f"{r[1]} {r[0]}")
async def test_route_answers_each_role_as_expected(
    world: World, route: tuple[str, str], role: str
) -> None:
    builder, expected = EXPECTATIONS[route]
    client = await world.client(role)
    method, path, kwargs = await builder(world, client)
    response = await client.request(method, path, **kwargs)
    assert response.status_code == expected[role], (route, role, response.text[:300])
