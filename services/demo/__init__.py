"""Demo data: the Secure Base assignment (the fixture document) and a small cohort."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib.resources import files

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import assignments, cohorts
from services.importing import RubricComponentDraft, parse_assignment_text
from services.models import Assignment, Cohort, Membership, Phase, Role, User
from services.policy import Actor

DEMO_COHORT_SLUG = "demo"
DEMO_COHORT_NAME = "PSY 612 · Attachment in Psychotherapy (demo)"
DEMO_ISSUER = "urn:peerboard:demo"


@dataclass(frozen=True)
class DemoPerson:
    subject: str
    display_name: str
    email: str
    role: Role


DEMO_PEOPLE = (
    DemoPerson("ivo", "Ivo Instructor", "ivo@demo.peerboard.test", Role.instructor),
    DemoPerson("mona", "Mona Moderator", "mona@demo.peerboard.test", Role.moderator),
    DemoPerson("ada", "Ada Student", "ada@demo.peerboard.test", Role.student),
    DemoPerson("ben", "Ben Student", "ben@demo.peerboard.test", Role.student),
    DemoPerson("chen", "Chen Student", "chen@demo.peerboard.test", Role.student),
    DemoPerson("dara", "Dara Student", "dara@demo.peerboard.test", Role.student),
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


async def seed_demo(session: AsyncSession) -> Assignment:
    """Create the demo cohort, people and the Secure Base assignment, once."""
    existing = await session.scalar(select(Cohort).where(Cohort.slug == DEMO_COHORT_SLUG))
    if existing is not None:
        found = await session.scalar(
            select(Assignment).where(Assignment.cohort_id == existing.id).limit(1)
        )
        if found is not None:
            return found
    system = Actor.system()
    cohort = existing or await cohorts.create_cohort(
        session, actor=system, slug=DEMO_COHORT_SLUG, name=DEMO_COHORT_NAME
    )
    assert cohort.id is not None
    for person in DEMO_PEOPLE:
        user = User(
            issuer=DEMO_ISSUER,
            subject=person.subject,
            display_name=person.display_name,
            email=person.email,
        )
        session.add(user)
        await session.flush()
        assert user.id is not None
        session.add(Membership(cohort_id=cohort.id, user_id=user.id, role=person.role))
    source, rubric = secure_base_rubric()
    draft = replace(parse_assignment_text(fixture_text()), stance_source=source, rubric=rubric)
    assignment = await assignments.import_assignment(
        session, actor=system, cohort=cohort, draft=draft
    )
    assert assignment.id is not None
    return await assignments.set_phase(
        session, actor=system, assignment_id=assignment.id, phase=Phase.open
    )
