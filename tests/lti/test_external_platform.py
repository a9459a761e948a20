"""Peerboard launched by an LTI platform nobody on the team wrote (`lti1p3platform`, see
tests/lti/lms_server.py), both running as real HTTP servers on loopback: a resource link
launch, a deep linking round trip whose answer the library validates, and a dynamic
registration followed by the whole story (register, add the assignment, students launch)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import assignments, importing, lti, phases
from services.db import transaction
from services.lti_deep_linking import CONTENT_ITEMS, DATA
from services.models import Cohort, LtiPlatform, Membership, MembershipSource, Phase, Role, User
from services.policy import Actor
from tests.conftest import TEST_SECRET, make_settings
from tests.lti.lms_server import INSTRUCTOR, LEARNER, Lms, Scenario, app_for, free_port, serve
from web.app import create_app


@dataclass
class Loopback:
    tool: str
    lms: Lms


@pytest.fixture
def loopback(database_url: str) -> Iterator[Loopback]:
    """Peerboard (on its own database) and the LMS, each on a free loopback port."""
    tool_port, lms_port = free_port(), free_port()
    tool_base = f"http://127.0.0.1:{tool_port}"
    settings = make_settings(database_url, PEERBOARD_BASE_URL=tool_base)
    lms = Lms(base=f"http://127.0.0.1:{lms_port}", tool=tool_base)
    with serve(create_app(settings), tool_port), serve(app_for(lms), lms_port):
        yield Loopback(tool_base, lms)


async def register_by_hand(sessions: async_sessionmaker[AsyncSession], lms: Lms) -> None:
    """What `peerboard lti add` (or the administrators' page) does with the LMS's fields."""
    assert lms.client_id is not None
    async with transaction(sessions) as session:
        await lti.register_platform(
            session, actor=Actor.system(), secret=TEST_SECRET,
            spec=lti.PlatformSpec(
                issuer=lms.issuer, client_id=lms.client_id, auth_login_url=f"{lms.base}/auth",
                token_url=f"{lms.base}/token", jwks_url=f"{lms.base}/jwks",
                deployment_ids=[lms.deployment_id], name="Loopback LMS",
            ),
        )  # fmt: skip


@pytest.fixture
async def person() -> AsyncIterator[httpx.AsyncClient]:
    """A browser: follows nothing by itself, keeps cookies."""
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


async def launch(person: httpx.AsyncClient, lms: Lms, scenario: Scenario) -> httpx.Response:
    """Click the tool's link in the LMS: login initiation → the tool's authentication
    request → the LMS's auto-posted id token → the tool's launch. Returns the launch's answer."""
    initiation = await person.get(lms.start(scenario))
    assert initiation.status_code == 302, initiation.text[:300]
    login = await person.get(initiation.headers["location"])
    assert login.status_code == 302, login.text[:500]
    assert login.headers["location"].startswith(f"{lms.base}/auth?")
    auth = await person.get(login.headers["location"])
    assert auth.status_code == 200, auth.text[:300]
    action = re.search(r'action="([^"]+)"', auth.text)
    fields = dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', auth.text))
    assert action and set(fields) == {"id_token", "state"}, auth.text[:300]
    return await person.post(html.unescape(action.group(1)), data=fields)


async def membership(
    sessions: async_sessionmaker[AsyncSession], sub: str
) -> tuple[Membership, Cohort]:
    async with transaction(sessions, write=False) as session:
        user = await session.scalar(select(User).where(User.subject == sub))
        assert user is not None
        row = await session.scalar(select(Membership).where(Membership.user_id == user.id))
        assert row is not None
        cohort = await session.get(Cohort, row.cohort_id)
        assert cohort is not None
        return row, cohort


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', page)
    assert found, page[:500]
    return found.group(1)


async def deep_link_secure_base(
    person: httpx.AsyncClient, loop: Loopback, sessions: async_sessionmaker[AsyncSession],
    teacher: str,
) -> tuple[int, str]:  # fmt: skip
    """An instructor adds the Secure Base assignment from the LMS's "add an activity": the
    picker, the choice, the signed answer posted back to the LMS. Returns the assignment's
    id and the link the LMS placed."""
    landed = await launch(person, loop.lms, Scenario(teacher, [INSTRUCTOR], kind="deep_link"))
    assert landed.status_code == 303, landed.text[:500]
    picker_url = loop.tool + landed.headers["location"]
    _, cohort = await membership(sessions, teacher)
    async with transaction(sessions) as session:
        draft = importing.parse_assignment_text("Secure Base\n\nWhat is a secure base?\n")
        made = await assignments.import_assignment(
            session, actor=Actor.system(), cohort=cohort, draft=draft
        )
        assert made.id is not None
        await phases.change_phase(
            session, actor=Actor.system(), assignment_id=made.id, phase=Phase.open
        )
    picker = await person.get(picker_url)
    assert picker.status_code == 200 and "Secure Base" in picker.text
    chosen = await person.post(
        picker_url, data={"csrf_token": csrf(picker.text), "assignment": str(made.id)}
    )
    assert chosen.status_code == 200, chosen.text[:500]
    action = re.search(r'<form method="post" action="([^"]+)" id="lti-deep-link-return">',
                       chosen.text)  # fmt: skip
    token = re.search(r'name="JWT" value="([^"]+)"', chosen.text)
    assert action and token
    assert html.unescape(action.group(1)) == f"{loop.lms.base}/deep-link-return"
    answered = await person.post(html.unescape(action.group(1)), data={"JWT": token.group(1)})
    assert answered.status_code == 200, answered.text[:500]
    (placed,) = answered.json()["placed"]
    assert made.id is not None
    return made.id, placed


async def test_a_resource_link_launch_from_the_library_platform(
    loopback: Loopback, person: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await register_by_hand(sessions, loopback.lms)
    landed = await launch(person, loopback.lms, Scenario("lms-teacher-1", [INSTRUCTOR]))
    assert landed.status_code == 303, landed.text[:500]
    row, cohort = await membership(sessions, "lms-teacher-1")
    assert row.role is Role.instructor and row.source is MembershipSource.lti
    assert cohort.name == "PSY 210: Attachment in therapy"
    assert landed.headers["location"] == f"/cohorts/{cohort.slug}"
    page = await person.get(loopback.tool + landed.headers["location"])
    assert page.status_code == 200 and "PSY 210" in page.text
    me = (await person.get(f"{loopback.tool}/api/v1/me")).json()
    assert me["user"] is not None


async def test_a_deep_linking_round_trip_the_library_validates(
    loopback: Loopback, person: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lms = loopback.lms
    await register_by_hand(sessions, lms)
    made_id, placed = await deep_link_secure_base(person, loopback, sessions, "lms-teacher-2")
    # lti1p3platform checked the signature against Peerboard's published keys, the message
    # type and the content item types; the claims it decoded say the rest.
    (answer,) = lms.deep_link_answers
    claims = answer["claims"]
    assert claims["iss"] == lms.client_id and claims["aud"] == lms.issuer
    assert claims[lti.DEPLOYMENT_ID] == lms.deployment_id
    assert claims[lti.MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert claims[DATA] == {"placement": "week-3"}  # the request's data, echoed as it came
    assert answer["items"] == claims[CONTENT_ITEMS] == [
        {"type": "ltiResourceLink", "title": "Secure Base", "url": f"{loopback.tool}/lti/launch",
         "custom": {"peerboard_assignment": str(made_id)}}
    ]  # fmt: skip
    # A student opens the placed link: straight into the assignment, as a student.
    async with httpx.AsyncClient(timeout=20) as student:
        landed = await launch(student, lms, Scenario("lms-student-1", [LEARNER], link_id=placed))
        assert landed.status_code == 303, landed.text[:500]
        assert landed.headers["location"] == f"/assignments/{made_id}"
        page = await student.get(loopback.tool + landed.headers["location"])
        assert page.status_code == 200 and "Secure Base" in page.text
    row, _ = await membership(sessions, "lms-student-1")
    assert row.role is Role.student


async def test_dynamic_registration_then_deep_linking_then_students(
    loopback: Loopback, person: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tool = loopback.tool
    lms = loopback.lms
    lms.forget_tool()
    invite = lti.make_invite(secret=TEST_SECRET)
    query = {
        "invite": invite,
        "openid_configuration": f"{lms.base}/.well-known/openid-configuration",
        "registration_token": lms.registration_token,
    }
    page = await person.get(f"{tool}/lti/register?{urlencode(query)}")
    assert page.status_code == 200 and "Register Peerboard" in page.text
    done = await person.post(f"{tool}/lti/register", data={**query, "csrf_token": csrf(page.text)})
    assert done.status_code == 200, done.text[:500]
    (sent,) = lms.registrations
    assert sent["initiate_login_uri"] == f"{tool}/lti/login"
    assert sent["jwks_uri"] == f"{tool}/lti/jwks.json"
    messages = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    assert {m["type"] for m in messages} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    async with transaction(sessions, write=False) as session:
        stored = (await session.execute(select(LtiPlatform))).scalars().one()
    assert (stored.issuer, stored.client_id, stored.registered_by) == (
        lms.issuer, lms.client_id, "dynamic")  # fmt: skip
    # The instructor adds the assignment through deep linking; students launch into it.
    made_id, placed = await deep_link_secure_base(person, loopback, sessions, "dyn-teacher")
    for sub in ("dyn-student-1", "dyn-student-2"):
        async with httpx.AsyncClient(timeout=20) as student:
            landed = await launch(student, lms, Scenario(sub, [LEARNER], link_id=placed))
            assert landed.headers["location"] == f"/assignments/{made_id}"
        row, _ = await membership(sessions, sub)
        assert row.role is Role.student
