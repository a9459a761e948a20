"""People and memberships: sign-in, grants, group rules, member management, the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services import audit, cohorts, identity, memberships, policy
from services.errors import Invalid, NotFound, PermissionDenied
from services.identity import VerifiedIdentity
from services.models import AuditEvent, Membership, MembershipSource, Role, User
from services.policy import Actor

SYSTEM = Actor.system()
ISSUER = "https://login.uni.example"


async def sign_in(session: AsyncSession, sub: str, **kwargs: object) -> User:
    return await identity.sign_in(
        session,
        identity=VerifiedIdentity(issuer=ISSUER, subject=sub, **kwargs),  # type: ignore[arg-type]
    )


async def actor_for(session: AsyncSession, user: User) -> Actor:
    assert user.id is not None
    return await policy.load_actor(session, user_id=user.id, is_administrator=user.is_administrator)


async def test_a_person_is_issuer_and_subject_never_email(session: AsyncSession) -> None:
    a = await sign_in(session, "1", name="Ada", email="same@uni.example")
    b = await identity.sign_in(
        session,
        identity=VerifiedIdentity(
            issuer="https://other.example", subject="1", email="same@uni.example"
        ),
    )
    again = await sign_in(session, "1", name="Ada L.", email="new@uni.example")
    assert a.id == again.id != b.id
    assert (again.display_name, again.email) == ("Ada L.", "new@uni.example")
    assert b.display_name == "same"  # from the email's local part when there is no name


async def test_a_grant_before_first_sign_in_is_kept(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    granted = await identity.grant(
        session, actor=SYSTEM, issuer=ISSUER, subject="ivo", role=Role.instructor,
        cohort_slug="psy",
    )  # fmt: skip
    user = await sign_in(session, "ivo", name="Ivo Ivanov")
    assert user.id == granted.id
    assert user.display_name == "Ivo Ivanov"
    assert (await actor_for(session, user)).roles == {1: Role.instructor}


async def test_only_administrators_grant(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    with pytest.raises(NotFound):
        await identity.grant(
            session, actor=Actor(user_id=5, roles={1: Role.instructor}), issuer=ISSUER,
            subject="x", role=Role.student, cohort_slug="psy",
        )  # fmt: skip
    with pytest.raises(Invalid):
        await identity.grant(
            session, actor=SYSTEM, issuer=ISSUER, subject="x", role=Role.student,
            administrator=True,
        )  # fmt: skip


async def test_group_rules_follow_the_groups_claim(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    await cohorts.create_cohort(session, actor=SYSTEM, slug="lab", name="Lab")
    for slug, group, role in [("psy", "psy-students", Role.student),
                              ("psy", "psy-tas", Role.moderator),
                              ("lab", "lab", Role.student)]:  # fmt: skip
        await memberships.add_group_rule(
            session, actor=SYSTEM, slug=slug, issuer=ISSUER, group=group, role=role
        )
    user = await sign_in(session, "ben", groups=["psy-students", "psy-tas", "lab"])
    assert (await actor_for(session, user)).roles == {1: Role.moderator, 2: Role.student}
    # Leaving a group at the provider removes the group-made membership at next sign-in...
    user = await sign_in(session, "ben", groups=["psy-students"])
    assert (await actor_for(session, user)).roles == {1: Role.student}
    # ...but a membership someone set by hand is left alone.
    await session.execute(
        update(Membership).where(Membership.user_id == user.id)
        .values(source=MembershipSource.manual)
    )  # fmt: skip
    user = await sign_in(session, "ben", groups=[])
    assert (await actor_for(session, user)).roles == {1: Role.student}


async def test_a_rule_for_another_issuer_does_not_apply(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    await memberships.add_group_rule(
        session, actor=SYSTEM, slug="psy", issuer="https://elsewhere.example", group="g",
        role=Role.student,
    )  # fmt: skip
    user = await sign_in(session, "x", groups=["g"])
    assert (await actor_for(session, user)).roles == {}


async def test_moderators_cannot_touch_instructors_or_themselves(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    people = {}
    for name, role in [("ivo", Role.instructor), ("mona", Role.moderator), ("ada", Role.student)]:
        people[name] = await identity.grant(
            session, actor=SYSTEM, issuer=ISSUER, subject=name, role=role, cohort_slug="psy"
        )
    mona = await actor_for(session, people["mona"])
    ivo = await actor_for(session, people["ivo"])
    ada_id, ivo_id, mona_id = (people[n].id for n in ("ada", "ivo", "mona"))
    assert ada_id and ivo_id and mona_id

    promoted = await memberships.set_member_role(
        session, actor=mona, slug="psy", user_id=ada_id, role=Role.moderator
    )
    assert promoted.role is Role.moderator
    for target, role in [(ada_id, Role.instructor), (ivo_id, Role.student),
                         (mona_id, Role.instructor)]:  # fmt: skip
        with pytest.raises(Invalid):
            await memberships.set_member_role(
                session, actor=mona, slug="psy", user_id=target, role=role
            )
    with pytest.raises(Invalid):
        await memberships.remove_member(session, actor=mona, slug="psy", user_id=ivo_id)
    await memberships.set_member_role(
        session, actor=ivo, slug="psy", user_id=mona_id, role=Role.instructor
    )
    with pytest.raises(NotFound):
        await memberships.list_members(
            session, actor=Actor(user_id=99, roles={1: Role.student}), slug="psy"
        )


async def test_member_changes_are_audited_and_the_chain_verifies(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    ada = await identity.grant(
        session, actor=SYSTEM, issuer=ISSUER, subject="ada", role=Role.student, cohort_slug="psy"
    )
    assert ada.id is not None
    await memberships.set_member_role(
        session, actor=SYSTEM, slug="psy", user_id=ada.id, role=Role.moderator
    )
    await memberships.remove_member(session, actor=SYSTEM, slug="psy", user_id=ada.id)
    actions = (await session.execute(select(AuditEvent.action).order_by(AuditEvent.id))).scalars()
    assert list(actions) == ["member.grant", "member.role", "member.remove"]
    assert await audit.verify_chain(session) is None

    # Tampering with a past event breaks the chain at that event.
    second = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()[1]
    await session.execute(
        update(AuditEvent).where(AuditEvent.id == second.id).values(reason="rewritten")
    )
    session.expire_all()
    assert await audit.verify_chain(session) == second.id


async def test_a_moderator_cannot_remove_the_rule_that_makes_instructors(
    session: AsyncSession,
) -> None:
    # Removing it and adding the group back as moderators would demote every instructor it
    # made: removal follows the same rule as creation.
    await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
    people = {}
    for name, role in [("ivo", Role.instructor), ("mona", Role.moderator)]:
        people[name] = await identity.grant(
            session, actor=SYSTEM, issuer=ISSUER, subject=name, role=role, cohort_slug="psy"
        )
    mona = await actor_for(session, people["mona"])
    ivo = await actor_for(session, people["ivo"])
    teachers = await memberships.add_group_rule(
        session, actor=ivo, slug="psy", issuer=ISSUER, group="teachers", role=Role.instructor
    )
    tas = await memberships.add_group_rule(
        session, actor=mona, slug="psy", issuer=ISSUER, group="tas", role=Role.moderator
    )
    with pytest.raises(PermissionDenied):
        await memberships.delete_group_rule(session, actor=mona, slug="psy", rule_id=teachers.id)
    assert {r.id for r in await memberships.list_group_rules(session, actor=ivo, slug="psy")} == {
        teachers.id,
        tas.id,
    }
    await memberships.delete_group_rule(session, actor=mona, slug="psy", rule_id=tas.id)
    await memberships.delete_group_rule(session, actor=ivo, slug="psy", rule_id=teachers.id)
    assert await memberships.list_group_rules(session, actor=ivo, slug="psy") == []
