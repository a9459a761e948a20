"""LTI 1.3 launches end to end: the tool's real endpoints, a fake platform signing tokens."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import assignments, importing, lti
from services.db import transaction
from services.models import Cohort, LtiContext, Membership, MembershipSource, Role, User
from services.policy import Actor
from tests.lti.conftest import Browser, counts
from tests.lti.platform import INSTRUCTOR, LEARNER, MENTOR, TA, fresh_sub, unsigned

ROLE_CASES = [
    ([INSTRUCTOR], Role.instructor),
    ([TA], Role.moderator),
    ([MENTOR], Role.moderator),
    ([LEARNER], Role.student),
    (["Learner"], Role.student),
    ([LEARNER, INSTRUCTOR], Role.instructor),
]


async def membership_of(
    sessions: async_sessionmaker[AsyncSession], sub: str
) -> tuple[User, Membership, Cohort]:
    async with transaction(sessions, write=False) as session:
        user = await session.scalar(select(User).where(User.subject == sub))
        assert user is not None
        membership = await session.scalar(select(Membership).where(Membership.user_id == user.id))
        assert membership is not None
        cohort = await session.get(Cohort, membership.cohort_id)
        assert cohort is not None
        return user, membership, cohort


@pytest.mark.parametrize(("roles", "expected"), ROLE_CASES)
async def test_a_launch_signs_in_with_the_mapped_role(
    browser: Browser, sessions: async_sessionmaker[AsyncSession], roles: list[str],
    expected: Role,
) -> None:  # fmt: skip
    sub = fresh_sub()
    response = await browser.full_launch(sub=sub, roles=roles, name="Ada Lovelace")
    assert response.status_code == 303, response.text[:500]
    user, membership, cohort = await membership_of(sessions, sub)
    assert response.headers["location"] == f"/cohorts/{cohort.slug}"
    assert user.issuer == browser.platform.issuer and user.display_name == "Ada Lovelace"
    assert membership.role is expected and membership.source is MembershipSource.lti
    assert cohort.name == "PSY 101: Attachment"
    me = (await browser.client.get("/api/v1/me")).json()
    assert me["user"]["id"] == user.id
    page = await browser.client.get(response.headers["location"])
    assert page.status_code == 200
    # The page lives in the LMS's iframe: framing is allowed for the LMS's origin only.
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://lms.example.edu" in csp
    assert "x-frame-options" not in page.headers


async def test_the_course_becomes_one_cohort_however_many_launch(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    subs = [fresh_sub() for _ in range(3)]
    for sub, roles in zip(subs, ([INSTRUCTOR], [LEARNER], [LEARNER]), strict=True):
        browser.client.cookies.clear()
        assert (await browser.full_launch(sub=sub, roles=roles)).status_code == 303
    async with transaction(sessions, write=False) as session:
        contexts = list((await session.execute(select(LtiContext))).scalars())
        cohorts_made = list((await session.execute(select(Cohort))).scalars())
    assert len(contexts) == 1 and len(cohorts_made) == 1
    # Another course of the same platform is another cohort.
    browser.client.cookies.clear()
    other = await browser.full_launch(
        sub=subs[0], roles=[INSTRUCTOR], context_id="course-202", context_title="PSY 202"
    )
    assert other.status_code == 303
    async with transaction(sessions, write=False) as session:
        names = sorted(c.name for c in (await session.execute(select(Cohort))).scalars())
    assert names == ["PSY 101: Attachment", "PSY 202"]


async def test_the_lms_moves_lti_roles_but_not_a_role_set_by_hand(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sub = fresh_sub()
    assert (await browser.full_launch(sub=sub, roles=[LEARNER])).status_code == 303
    browser.client.cookies.clear()
    assert (await browser.full_launch(sub=sub, roles=[TA])).status_code == 303
    _, membership, _ = await membership_of(sessions, sub)
    assert membership.role is Role.moderator
    async with transaction(sessions) as session:
        row = await session.get(Membership, membership.id)
        assert row is not None
        row.role, row.source = Role.instructor, MembershipSource.manual
    browser.client.cookies.clear()
    assert (await browser.full_launch(sub=sub, roles=[LEARNER])).status_code == 303
    _, membership, _ = await membership_of(sessions, sub)
    assert membership.role is Role.instructor


async def test_a_linked_placement_lands_on_its_assignment(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    teacher = fresh_sub()
    first = await browser.full_launch(sub=teacher, roles=[INSTRUCTOR])
    _, _, cohort = await membership_of(sessions, teacher)
    async with transaction(sessions) as session:
        draft = importing.parse_assignment_text("Secure Base\n\nWhat is a secure base?\n")
        made = await assignments.import_assignment(
            session, actor=Actor.system(), cohort=cohort, draft=draft
        )
    assert first.headers["location"] == f"/cohorts/{cohort.slug}"
    browser.client.cookies.clear()
    linked = await browser.full_launch(
        sub=teacher, roles=[INSTRUCTOR], link_id="link-2",
        custom={"peerboard_assignment": str(made.id)},
    )  # fmt: skip
    assert linked.headers["location"] == f"/assignments/{made.id}"
    # A placement cannot be pointed at another cohort's assignment.
    browser.client.cookies.clear()
    other = await browser.full_launch(
        sub=teacher, roles=[INSTRUCTOR], link_id="link-3", context_id="course-9",
        custom={"peerboard_assignment": str(made.id)},
    )  # fmt: skip
    assert other.headers["location"].startswith("/cohorts/")


# --- forged and broken launches: 4xx, and nobody signed in or added -----------------------


MESSAGE_KINDS = ["resource link", "deep linking"]


def _forge(case: str, browser: Browser, nonce: str, kind: str = "resource link") -> str:
    p = browser.platform
    sub = "forged-sub"

    def claims(**overrides: Any) -> dict[str, Any]:
        used = overrides.pop("nonce", nonce)
        if kind == "deep linking":  # an instructor's request, otherwise acceptable
            return p.deep_linking_claims(nonce=used, sub=sub, roles=[INSTRUCTOR], **overrides)
        return p.claims(nonce=used, sub=sub, roles=[LEARNER], **overrides)

    if case == "wrong issuer":
        return p.sign(claims(iss="https://evil.example"))
    if case == "wrong audience":
        return p.sign(claims(aud="someone-else"))
    if case == "several audiences, no azp":
        return p.sign(claims(aud=["someone-else", p.client_id]))
    if case == "unknown deployment":
        return p.sign(claims(**{"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "d9"}))
    if case == "expired":
        return p.sign(claims(exp=1_000_000, iat=999_000))
    if case == "issued in the future":
        return p.sign(claims(iat=4_000_000_000, exp=4_000_000_300))
    if case == "wrong nonce":
        return p.sign(claims(nonce="another-nonce"))
    if case == "bad signature":
        token = p.sign(claims())
        head, body, sig = token.split(".")
        return f"{head}.{body}.{sig[:-4]}AAAA"
    if case == "signed by another key, same kid":
        from tests.lti.platform import new_key

        return p.sign(claims(), key=new_key(p.keys[0].kid))
    if case == "alg none":
        return unsigned(claims())
    if case == "HS256 with the public key":
        public = p.keys[0].as_pem(private=False)
        return p.sign_hs256(claims(), public)
    if case == "token names its own key":
        return p.sign(claims(), header={"jku": "https://evil.example/jwks"})
    if case == "wrong message type":  # the tool's own kind of message, sent back as a launch
        return p.sign(claims(**{lti.MESSAGE_TYPE: "LtiDeepLinkingResponse"}))
    if case == "unknown message type":
        return p.sign(claims(**{lti.MESSAGE_TYPE: "LtiSubmissionReviewRequest"}))
    if case == "wrong version":
        return p.sign(claims(**{"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"}))
    if case == "missing roles claim":
        return p.sign(claims(**{"https://purl.imsglobal.org/spec/lti/claim/roles": None}))
    if case == "no course role":
        staff = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"
        return p.sign(claims(**{"https://purl.imsglobal.org/spec/lti/claim/roles": [staff]}))
    if case == "unknown kid":
        from tests.lti.platform import new_key

        return p.sign(claims(), key=new_key("never-published"))
    if case == "garbage":
        return "not-a-token"
    if case == "none":  # nothing forged
        return p.sign(claims())
    raise AssertionError(case)


FORGERIES = ["wrong issuer", "wrong audience", "several audiences, no azp",
             "unknown deployment", "expired", "issued in the future", "wrong nonce",
             "bad signature", "signed by another key, same kid", "alg none",
             "HS256 with the public key", "token names its own key", "wrong message type",
             "unknown message type", "wrong version", "missing roles claim", "no course role",
             "unknown kid", "garbage", "state mismatch"]  # fmt: skip


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
@pytest.mark.parametrize("case", FORGERIES)
async def test_a_forged_launch_is_refused_and_signs_nobody_in(
    browser: Browser, sessions: async_sessionmaker[AsyncSession], case: str, kind: str
) -> None:
    """Each forgery of a resource link launch and of a deep linking request: a 4xx page,
    no session, no person or member created."""
    before = await counts(sessions)
    request = await browser.login()
    state = request["state"]
    if case == "state mismatch":
        # A valid token of one login, posted with another login's state (same browser,
        # both bindings present): the state's nonce is not the token's.
        state = (await browser.login())["state"]
        token = _forge("none", browser, request["nonce"], kind)
    else:
        token = _forge(case, browser, request["nonce"], kind)
    response = await browser.launch(token, state)
    assert 400 <= response.status_code < 500, (case, response.status_code)
    assert "did not work" in response.text
    # Said inside the LMS's frame, where the launch was opened.
    assert (
        "frame-ancestors 'self' https://lms.example.edu"
        in (response.headers["content-security-policy"])
    )
    assert await counts(sessions) == before
    assert (await browser.client.get("/api/v1/me")).json()["user"] is None


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
async def test_the_same_token_unforged_is_accepted(browser: Browser, kind: str) -> None:
    """The forgeries above differ from a good launch only in what they forge."""
    request = await browser.login()
    response = await browser.launch(_forge("none", browser, request["nonce"], kind),
                                    request["state"])  # fmt: skip
    assert response.status_code == 303, response.text[:300]


async def test_a_replayed_launch_is_refused(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    request = await browser.login()
    token = browser.platform.sign(
        browser.platform.claims(nonce=request["nonce"], sub=fresh_sub(), roles=[LEARNER])
    )
    assert (await browser.launch(token, request["state"])).status_code == 303
    browser.client.cookies.clear()
    before = await counts(sessions)
    assert (await browser.launch(token, request["state"])).status_code == 400
    # The same token with a fresh login's state: that state carries another nonce.
    again = await browser.login()
    assert (await browser.launch(token, again["state"])).status_code == 400
    assert await counts(sessions) == before


async def test_a_launch_in_another_browser_than_its_login_is_refused(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    request = await browser.login()
    token = browser.platform.sign(
        browser.platform.claims(nonce=request["nonce"], sub=fresh_sub(), roles=[LEARNER])
    )
    browser.client.cookies.clear()  # the binding cookie is gone: another browser
    before = await counts(sessions)
    assert (await browser.launch(token, request["state"])).status_code == 400
    assert (await browser.launch(token, "made-up-state")).status_code == 400
    assert await counts(sessions) == before


async def test_an_unknown_kid_refetches_the_platform_keys_once(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    p = browser.platform
    assert (await browser.full_launch(sub=fresh_sub(), roles=[LEARNER])).status_code == 303
    assert p.jwks_requests == 1
    p.rotate("platform-key-2")  # the platform rotates: a kid the tool has not seen
    browser.client.cookies.clear()
    assert (await browser.full_launch(sub=fresh_sub(), roles=[LEARNER])).status_code == 303
    assert p.jwks_requests == 2
    # A made-up kid right after: refused without asking the platform again (rate limit).
    from tests.lti.platform import new_key

    request = await browser.login()
    stranger = new_key("made-up-kid")
    token = p.sign(p.claims(nonce=request["nonce"], sub=fresh_sub(), roles=[LEARNER]),
                   key=stranger)  # fmt: skip
    assert (await browser.launch(token, request["state"])).status_code == 400
    assert p.jwks_requests == 2


async def test_login_refuses_unknown_platforms_and_foreign_targets(browser: Browser) -> None:
    p = browser.platform
    for params in (
        p.login_params(iss="https://unknown.example"),
        p.login_params(client_id="not-ours"),
        p.login_params(target_link_uri="https://evil.example/lti/launch"),
        {"iss": p.issuer},
    ):
        assert (await browser.client.get("/lti/login", params=params)).status_code == 400
    posted = await browser.client.post("/lti/login", data=p.login_params())
    assert posted.status_code == 302
    assert posted.headers["location"].startswith(f"{p.issuer}/auth?")


async def test_the_authentication_request_is_what_the_security_framework_asks(
    browser: Browser,
) -> None:
    request = await browser.login()
    assert request["scope"] == "openid" and request["response_type"] == "id_token"
    assert request["response_mode"] == "form_post" and request["prompt"] == "none"
    assert request["client_id"] == browser.platform.client_id
    assert request["redirect_uri"] == "http://127.0.0.1:8000/lti/launch"
    assert request["login_hint"] == "hint-123"
    assert request["lti_message_hint"] == "message-hint"
    assert len(request["state"]) >= 32 and len(request["nonce"]) >= 32
