import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import cohorts, policy
from services.errors import AlreadyExists, Invalid, NotFound
from services.models import Cohort, Membership, Role, User
from services.policy import Actor

ADMIN = Actor.system()


async def test_administrator_creates_a_cohort(session: AsyncSession) -> None:
    cohort = await cohorts.create_cohort(
        session, actor=ADMIN, slug="psy-612", name="  PSY 612\n Attachment  "
    )
    assert cohort.id is not None
    assert cohort.name == "PSY 612 Attachment"
    assert [c.slug for c in await cohorts.list_cohorts(session, actor=ADMIN)] == ["psy-612"]


@pytest.mark.parametrize("role", [Role.student, Role.moderator, None])
async def test_students_moderators_and_strangers_do_not_create_cohorts(
    session: AsyncSession, role: Role | None
) -> None:
    first = await cohorts.create_cohort(session, actor=ADMIN, slug="first", name="First")
    assert first.id is not None
    actor = Actor(user_id=1, roles={first.id: role} if role else {})
    with pytest.raises(NotFound):
        await cohorts.create_cohort(session, actor=actor, slug="x", name="X")
    with pytest.raises(NotFound):
        await cohorts.create_cohort(session, actor=Actor.anonymous(), slug="x", name="X")


async def test_an_instructor_creates_a_cohort_and_teaches_it(session: AsyncSession) -> None:
    first = await cohorts.create_cohort(session, actor=ADMIN, slug="first", name="First")
    ivo = User(issuer="https://idp.test", subject="ivo", display_name="Ivo")
    session.add(ivo)
    await session.flush()
    assert first.id is not None and ivo.id is not None
    actor = Actor(user_id=ivo.id, roles={first.id: Role.instructor})
    second = await cohorts.create_cohort(session, actor=actor, slug="second", name="Second")
    role = await session.scalar(
        select(Membership.role).where(
            Membership.cohort_id == second.id, Membership.user_id == ivo.id
        )
    )
    assert role is Role.instructor


@pytest.mark.parametrize(
    "slug", ["", "Upper", "-lead", "trail-", "sp ace", "a" * 65, "dot.ted", "ümlaut"]
)
async def test_slug_must_be_url_safe(session: AsyncSession, slug: str) -> None:
    with pytest.raises(Invalid) as caught:
        await cohorts.create_cohort(session, actor=ADMIN, slug=slug, name="Name")
    assert caught.value.problems[0].field == "slug"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "bad\x00name"])
async def test_name_must_be_present_bounded_and_clean(session: AsyncSession, name: str) -> None:
    with pytest.raises(Invalid) as caught:
        await cohorts.create_cohort(session, actor=ADMIN, slug="ok", name=name)
    assert caught.value.problems[0].field == "name"


async def test_slug_is_unique(session: AsyncSession) -> None:
    await cohorts.create_cohort(session, actor=ADMIN, slug="dup", name="One")
    with pytest.raises(AlreadyExists):
        await cohorts.create_cohort(session, actor=ADMIN, slug="dup", name="Two")


async def test_members_see_their_cohorts_only_and_strangers_get_not_found(
    session: AsyncSession,
) -> None:
    mine = await cohorts.create_cohort(session, actor=ADMIN, slug="mine", name="Mine")
    await cohorts.create_cohort(session, actor=ADMIN, slug="theirs", name="Theirs")
    assert mine.id is not None
    ada = Actor(user_id=7, roles={mine.id: Role.student})

    listed = [c.slug for c in await cohorts.list_cohorts(session, actor=ada)]
    assert listed == ["mine"]
    assert (await cohorts.get_cohort(session, actor=ada, slug="mine")).slug == "mine"
    with pytest.raises(NotFound):
        await cohorts.get_cohort(session, actor=ada, slug="theirs")
    with pytest.raises(NotFound):
        await cohorts.get_cohort(session, actor=ada, slug="missing")


async def test_list_and_single_object_checks_agree(session: AsyncSession) -> None:
    made = [
        await cohorts.create_cohort(session, actor=ADMIN, slug=f"c{i}", name=f"C{i}")
        for i in range(4)
    ]
    ids = [c.id for c in made if c.id is not None]
    actors = [
        Actor.anonymous(),
        ADMIN,
        Actor(user_id=1, roles={ids[0]: Role.student}),
        Actor(user_id=2, roles={ids[1]: Role.moderator, ids[2]: Role.student}),
    ]
    for actor in actors:
        listed = {c.slug for c in await cohorts.list_cohorts(session, actor=actor)}
        everything = (await session.execute(select(Cohort))).scalars()
        allowed = {c.slug for c in everything if policy.can_view_cohort(actor, c)}
        assert listed == allowed
