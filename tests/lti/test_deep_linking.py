"""LTI Deep Linking 2.0 end to end: the tool's real endpoints, the fake platform signing the
request; the answer verified with the tool's published keys, then launched as the platform
would launch the link it stored."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import assignments, cohorts, importing, lti
from services.db import transaction
from services.lti_deep_linking import CONTENT_ITEMS, DATA
from services.models import Assignment, Cohort
from services.policy import Actor
from tests.lti.conftest import Browser, counts
from tests.lti.platform import INSTRUCTOR, LEARNER, TA, fresh_sub
from tests.lti.test_launch import membership_of
from tests.web.test_authoring_pages import _as_form, _fields

RETURN_URL = "https://lms.example.edu/deep-link-return"


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def answer_of(page: str) -> tuple[str, str]:
    """The auto-posted form's action and its JWT field."""
    form = re.search(r'<form method="post" action="([^"]+)" id="lti-deep-link-return">', page)
    token = re.search(r'<input type="hidden" name="JWT" value="([^"]+)">', page)
    assert form and token, page[:800]
    return html.unescape(form.group(1)), token.group(1)


async def deep_link(browser: Browser, *, sub: str, roles: list[str], **settings: Any) -> Any:
    request = await browser.login()
    claims = browser.platform.deep_linking_claims(
        nonce=request["nonce"], sub=sub, roles=roles, **settings
    )
    return await browser.launch(browser.platform.sign(claims), request["state"])


async def add_assignment(
    sessions: async_sessionmaker[AsyncSession], cohort: Cohort, title: str
) -> Assignment:
    async with transaction(sessions) as session:
        draft = importing.parse_assignment_text(f"{title}\n\nWhat is a secure base?\n")
        return await assignments.import_assignment(
            session, actor=Actor.system(), cohort=cohort, draft=draft
        )


async def verify_answer(browser: Browser, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set((await browser.client.get("/lti/jwks.json")).json())
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


async def test_an_instructor_picks_an_assignment_and_the_lms_gets_a_signed_link(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    teacher = fresh_sub()
    landed = await deep_link(browser, sub=teacher, roles=[INSTRUCTOR])
    assert landed.status_code == 303, landed.text[:500]
    picker_url = landed.headers["location"]
    assert picker_url.startswith("/lti/deep-link/")
    _, _, cohort = await membership_of(sessions, teacher)
    made = await add_assignment(sessions, cohort, "Secure Base")
    picker = await browser.client.get(picker_url)
    assert picker.status_code == 200
    assert "Secure Base" in picker.text and "Week 3 activity" in picker.text
    assert f"/cohorts/{cohort.slug}/assignments/new?deep_link=" in picker.text
    # The picker lives in the LMS's iframe too.
    assert (
        "frame-ancestors 'self' https://lms.example.edu"
        in (picker.headers["content-security-policy"])
    )
    chosen = await browser.client.post(
        picker_url, data={"csrf_token": csrf(picker.text), "assignment": str(made.id)}
    )
    assert chosen.status_code == 200, chosen.text[:500]
    action, token = answer_of(chosen.text)
    assert action == RETURN_URL
    # The answer's form may post to the LMS, and nowhere else but here.
    assert (
        "form-action 'self' https://lms.example.edu;" in chosen.headers["content-security-policy"]
    )
    claims = await verify_answer(browser, token)
    # Nothing about the person who chose goes back to the platform (the canary rule for
    # everything sent there): not their sub, name or e-mail, in the token or beside it.
    sent = json.dumps(claims) + chosen.text.split('id="lti-deep-link-return"', 1)[1]
    for trace in (teacher, "Test Person", f"{teacher}@example.edu"):
        assert trace not in sent
    p = browser.platform
    assert claims["iss"] == p.client_id and claims["aud"] == p.issuer
    assert claims[lti.MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert claims[lti.VERSION] == "1.3.0" and claims[lti.DEPLOYMENT_ID] == p.deployment_id
    assert claims[DATA] == "platform-data-42"
    assert isinstance(claims["nonce"], str) and len(claims["nonce"]) >= 16
    assert claims["iat"] <= claims["exp"]
    assert claims[CONTENT_ITEMS] == [
        {"type": "ltiResourceLink", "title": "Secure Base",
         "url": "http://127.0.0.1:8000/lti/launch",
         "custom": {"peerboard_assignment": str(made.id)}}
    ]  # fmt: skip
    # The request is used up: choosing again (a replayed form) finds nothing.
    again = await browser.client.post(
        picker_url, data={"csrf_token": csrf(picker.text), "assignment": str(made.id)}
    )
    assert again.status_code == 404
    # The LMS stores the link; a student's launch of it lands on the assignment.
    browser.client.cookies.clear()
    student = await browser.full_launch(
        sub=fresh_sub(), roles=[LEARNER], link_id="placed-by-deep-linking",
        custom=claims[CONTENT_ITEMS][0]["custom"],
    )  # fmt: skip
    assert student.headers["location"] == f"/assignments/{made.id}"


async def test_an_assignment_made_from_the_picker_comes_back_to_it(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    teacher = fresh_sub()
    picker_url = (await deep_link(browser, sub=teacher, roles=[INSTRUCTOR])).headers["location"]
    request_id = picker_url.rsplit("/", 1)[1]
    _, _, cohort = await membership_of(sessions, teacher)
    picker = await browser.client.get(picker_url)
    assert "has no assignment yet" in picker.text
    upload = await browser.client.get(
        f"/cohorts/{cohort.slug}/assignments/new", params={"deep_link": request_id}
    )
    assert upload.status_code == 200
    assert f"/assignments/new?deep_link={request_id}" in upload.text
    token = csrf(upload.text)
    read = await browser.client.post(
        f"/cohorts/{cohort.slug}/assignments/new?deep_link={request_id}",
        data={"csrf_token": token, "source": "Attachment essay\n\nWhat is a secure base?\n",
              "kind": "text"},
    )  # fmt: skip
    assert read.status_code == 200, read.text[:800]
    assert f"/assignments/create?deep_link={request_id}" in read.text
    action = f"/cohorts/{cohort.slug}/assignments/create?deep_link={request_id}"
    created = await browser.client.post(
        action, data=_as_form([*_fields(read.text, action), ("action", "create")])
    )
    assert created.status_code == 303, created.text[:800]
    assert created.headers["location"].startswith(f"{picker_url}?made=")
    made_id = created.headers["location"].rsplit("=", 1)[1]
    back = await browser.client.get(created.headers["location"])
    assert "Attachment essay" in back.text
    assert f'value="{made_id}" checked' in back.text


@pytest.mark.parametrize("roles", [[LEARNER], [TA]])
async def test_only_instructors_may_deep_link(
    browser: Browser, sessions: async_sessionmaker[AsyncSession], roles: list[str]
) -> None:
    before = await counts(sessions)
    refused = await deep_link(browser, sub=fresh_sub(), roles=roles)
    assert refused.status_code == 403
    assert "Only the course's instructors" in html.unescape(refused.text)
    assert await counts(sessions) == before
    assert (await browser.client.get("/api/v1/me")).json()["user"] is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"accept_types": ["link", "html"]}, "ltiResourceLink"),
        ({"accept_types": []}, "ltiResourceLink"),
        ({"return_url": "javascript:alert(1)"}, "no usable address"),
        ({"return_url": "http://lms.example.edu/insecure"}, "no usable address"),
        ({lti.DEEP_LINKING_SETTINGS: None}, "did not say where to return"),
        ({lti.CONTEXT: None}, "launched from a course"),
    ],
)
async def test_a_deep_linking_request_peerboard_cannot_answer_is_refused_clearly(
    browser: Browser, sessions: async_sessionmaker[AsyncSession], changes: dict[str, Any],
    says: str,
) -> None:  # fmt: skip
    before = await counts(sessions)
    refused = await deep_link(browser, sub=fresh_sub(), roles=[INSTRUCTOR], **changes)
    assert refused.status_code == 400
    assert says in html.unescape(refused.text)
    assert await counts(sessions) == before


async def test_the_picker_answers_only_its_instructor_and_its_cohort(
    browser: Browser, asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from tests.conftest import client_for

    teacher = fresh_sub()
    picker_url = (await deep_link(browser, sub=teacher, roles=[INSTRUCTOR])).headers["location"]
    _, _, cohort = await membership_of(sessions, teacher)
    await add_assignment(sessions, cohort, "Secure Base")
    picker = await browser.client.get(picker_url)
    token = csrf(picker.text)
    # Another course's assignment cannot be placed in this one.
    async with transaction(sessions) as session:
        stranger = await cohorts.create_cohort(
            session, actor=Actor.system(), slug="other-course", name="Other course"
        )
    foreign = await add_assignment(sessions, stranger, "Not yours")
    refused = await browser.client.post(
        picker_url, data={"csrf_token": token, "assignment": str(foreign.id)}
    )
    assert refused.status_code == 404
    # Nothing chosen: the page again, with the CSRF token and a message.
    empty = await browser.client.post(picker_url, data={"csrf_token": token})
    assert empty.status_code == 422 and "Choose an assignment" in empty.text
    assert csrf(empty.text) == token
    # Without the session's CSRF token: refused.
    assert (await browser.client.post(picker_url, data={"assignment": "1"})).status_code == 403
    # An unknown request, and the same request from another browser: not found / sign in.
    assert (await browser.client.get("/lti/deep-link/made-up")).status_code == 404
    async with client_for(asgi) as elsewhere:
        away = await elsewhere.get(picker_url)
        assert away.status_code == 303 and "/signin" in away.headers["location"]
