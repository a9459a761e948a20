"""Authorization expectations for LTI Advantage (roster sync, grades), merged into
test_route_policy.py. The cohort psy is made an LMS course here whose services are
unreachable (a closed loopback port): instructors get their page and a readable outcome,
never a 500; everybody else gets what a missing page gets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import select

from services import lti, lti_grades
from services.db import transaction
from services.models import Cohort, LtiContext, LtiContextServices, LtiDeployment, utcnow
from services.policy import Actor
from tests.conftest import TEST_SECRET
from tests.web.policy_support import expect, get, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

INSTRUCTOR_FORM = expect(303, 404, 404, 404, 303, 303)
DEAD = "http://127.0.0.1:9"  # nothing listens there: the LMS is unreachable
GRADES = "/assignments/{w.assignment_id}/grades"
API = "/api/v1/assignments/{w.assignment_id}"
NOBODY = (404, 404, 404, 404)  # anonymous (API) / outsider / student / moderator

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("cohorts:members:roster-sync", "POST"): (
        send("POST", "/cohorts/psy/members/roster-sync"),
        INSTRUCTOR_FORM,
    ),
    # Moderators read the gradebook; instructors choose the grade and send it.
    ("grades:page", "GET"): (get(GRADES), expect(303, 404, 404, 200, 200, 200)),
    ("grades:save", "POST"): (
        send("POST", GRADES, data={"enabled": "on", "weight:paper": "50"}),
        INSTRUCTOR_FORM,
    ),
    ("grades:send", "POST"): (send("POST", GRADES + "/send"), INSTRUCTOR_FORM),
    ("api:grading", "GET"): (get(API + "/grading"), expect(*NOBODY, 200, 200)),
    ("api:grading:save", "PUT"): (
        send("PUT", API + "/grading", json={"enabled": True, "weights": {"paper": 50}}),
        expect(*NOBODY, 200, 200),
    ),
    ("api:grading:send", "POST"): (send("POST", API + "/grading/send"), expect(*NOBODY, 202, 202)),
    ("api:gradebook", "GET"): (get(API + "/gradebook"), expect(404, 404, 404, 200, 200, 200)),
}


async def setup(world: World) -> None:
    async with transaction(world.sessions) as session:
        platform = await lti.register_platform(
            session, actor=Actor.system(), secret=TEST_SECRET,
            spec=lti.PlatformSpec(
                issuer=DEAD, client_id="c-dead", auth_login_url=f"{DEAD}/auth",
                token_url=f"{DEAD}/token", jwks_url=f"{DEAD}/jwks", deployment_ids=["d1"],
            ),
        )  # fmt: skip
        deployment = await session.scalar(
            select(LtiDeployment).where(LtiDeployment.platform_id == platform.id)
        )
        cohort = await session.scalar(select(Cohort).where(Cohort.slug == "psy"))
        assert deployment is not None and deployment.id is not None
        assert cohort is not None and cohort.id is not None
        context = LtiContext(deployment_id=deployment.id, context_id="psy-course",
                             cohort_id=cohort.id)  # fmt: skip
        session.add(context)
        await session.flush()
        assert context.id is not None
        session.add(
            LtiContextServices(
                context_pk=context.id,
                memberships_url=f"{DEAD}/memberships",
                lineitems_url=f"{DEAD}/lineitems",
                updated_at=utcnow(),
            )
        )
        await lti_grades.save_grading(
            session, actor=Actor.system(), assignment_id=world.assignment_id,
            weights={"paper": 50}, enabled=True,
        )  # fmt: skip
