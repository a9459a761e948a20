"""Demo data: the Secure Base assignment (the fixture document) and a small cohort."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib.resources import files

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import assignments, cohorts, identity, phases
from services.importing import RubricComponentDraft, parse_assignment_text
from services.models import Assignment, Cohort, Phase, Role
from services.policy import Actor

DEMO_COHORT_SLUG = "demo"
DEMO_COHORT_NAME = "PSY 612 · Attachment in Psychotherapy (demo)"


@dataclass(frozen=True)
class DemoPerson:
    subject: str
    display_name: str
    email: str
    role: Role


# The subject doubles as the button label on the demo identity provider's page.
DEMO_PEOPLE = (
    DemoPerson("ivo-instructor", "Ivo Ivanov", "ivo@demo.peerboard.test", Role.instructor),
    DemoPerson("mona-moderator", "Mona Okafor", "mona@demo.peerboard.test", Role.moderator),
    DemoPerson("ada-student", "Ada Lindqvist", "ada@demo.peerboard.test", Role.student),
    DemoPerson("ben-student", "Ben Haddad", "ben@demo.peerboard.test", Role.student),
    DemoPerson("chen-student", "Chen Wei", "chen@demo.peerboard.test", Role.student),
    DemoPerson("dara-student", "Dara Müller", "dara@demo.peerboard.test", Role.student),
)


def fixture_text() -> str:
    return files("services.demo").joinpath("secure-base-assignment.txt").read_text("utf-8")


def secure_base_rubric() -> tuple[str, tuple[RubricComponentDraft, ...]]:
    data = json.loads(files("services.demo").joinpath("secure-base-rubric.json").read_text())
    components = tuple(
        RubricComponentDraft(key=c["key"], label=c["label"], description=c["description"])
        for c in data["components"]
    )
    return data["source"], components


async def seed_demo(session: AsyncSession, *, issuer: str) -> Assignment:
    """Create the demo cohort and the Secure Base assignment once, and make sure the demo
    people (identified at `issuer`, the demo identity provider) are members."""
    system = Actor.system()
    cohort = await session.scalar(select(Cohort).where(Cohort.slug == DEMO_COHORT_SLUG))
    if cohort is None:
        cohort = await cohorts.create_cohort(
            session, actor=system, slug=DEMO_COHORT_SLUG, name=DEMO_COHORT_NAME
        )
    for person in DEMO_PEOPLE:
        user = await identity.grant(
            session,
            actor=system,
            issuer=issuer,
            subject=person.subject,
            role=person.role,
            cohort_slug=DEMO_COHORT_SLUG,
        )
        if user.last_sign_in_at is None:  # their provider has not told us their name yet
            user.display_name, user.email = person.display_name, person.email
    found = await session.scalar(
        select(Assignment).where(Assignment.cohort_id == cohort.id).limit(1)
    )
    if found is not None:
        return found
    source, rubric = secure_base_rubric()
    draft = replace(parse_assignment_text(fixture_text()), stance_source=source, rubric=rubric)
    assignment = await assignments.import_assignment(
        session, actor=system, cohort=cohort, draft=draft
    )
    assert assignment.id is not None
    opened, _ = await phases.change_phase(
        session, actor=system, assignment_id=assignment.id, phase=Phase.open
    )
    return opened
