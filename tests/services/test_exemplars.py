"""Exemplars: nomination, consent, gallery visibility, snapshots and refresh."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services import discussions, exemplars, policy
from services.errors import Conflict, Invalid, NotFound
from services.models import (
    Attribution,
    Cohort,
    Exemplar,
    ExemplarKind,
    ExemplarStatus,
    Notification,
)
from services.policy import Actor
from tests.exemplar_support import PAPER, ExemplarWorld, build


@pytest.fixture
async def world(session: AsyncSession) -> ExemplarWorld:
    return await build(session)


async def nominate_post(session: AsyncSession, w: ExemplarWorld, **kwargs: object) -> Exemplar:
    return await exemplars.nominate(
        session, actor=w.actors["mona"], assignment_id=w.assignment_id,
        kind=ExemplarKind.post, source=w.post.public_id, question_id=w.question_ids[0],
        note="Concrete **behaviours** a camera could see.", **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def ids(views: list[object]) -> list[str]:
    return [v.id for v in views]  # type: ignore[attr-defined]


async def test_a_nomination_is_a_draft_that_tells_the_author(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    made = await nominate_post(session, world)
    assert made.status is ExemplarStatus.draft
    assert made.attribution is Attribution.pending
    notices = (
        (
            await session.execute(
                select(Notification.kind).where(Notification.user_id == world.actors["ada"].user_id)
            )
        )
        .scalars()
        .all()
    )
    assert "exemplar.nominated" in notices
    gallery = lambda who: exemplars.gallery(  # noqa: E731
        session, actor=world.actors[who], assignment_id=world.assignment_id
    )
    assert ids(await gallery("ben")) == []  # drafts are for curators
    (mine,) = await gallery("ada")  # the author sees the nomination, to choose
    assert mine.is_mine and mine.attribution == "pending"
    (curated,) = await gallery("mona")
    assert curated.author_name == "Ada Canary" and curated.status == "draft"
    assert "<strong>behaviours</strong>" in curated.note_html


async def test_published_exemplars_show_an_alias_until_the_author_consents_to_a_name(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    made = await nominate_post(session, world, publish=True)
    (seen,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id
    )
    assert seen.attribution_label.startswith("Anonymous ")
    assert "Ada" not in seen.model_dump_json()
    assert seen.status is None and seen.author_name is None and seen.version is None

    await exemplars.choose_attribution(
        session, actor=world.actors["ada"], public_id=made.public_id, choice=Attribution.named
    )
    (named,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id
    )
    assert named.attribution_label == "Ada Canary"


async def test_declining_removes_it_from_every_gallery_but_the_curators(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    made = await nominate_post(session, world, publish=True)
    await exemplars.choose_attribution(
        session, actor=world.actors["ada"], public_id=made.public_id, choice=Attribution.declined
    )
    for who in ("ben", "zed"):
        with pytest.raises(NotFound):
            await exemplars.get(session, actor=world.actors[who], public_id=made.public_id)
    assert ids(await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id,
        question_id=world.question_ids[0],
    )) == []  # fmt: skip
    (curated,) = await exemplars.gallery(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id
    )
    assert curated.attribution == "declined"


async def test_only_the_author_chooses_and_only_curators_nominate(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    made = await nominate_post(session, world)
    for who in ("ben", "mona", "zed"):
        with pytest.raises(NotFound):
            await exemplars.choose_attribution(
                session, actor=world.actors[who], public_id=made.public_id,
                choice=Attribution.named,
            )  # fmt: skip
    for who in ("ada", "ben", "zed"):
        with pytest.raises(NotFound):
            await exemplars.nominate(
                session, actor=world.actors[who], assignment_id=world.assignment_id,
                kind=ExemplarKind.sample_paper,
            )  # fmt: skip


async def test_the_sample_paper_is_attributed_to_the_assignment(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    await exemplars.nominate(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id,
        kind=ExemplarKind.sample_paper, publish=True, note="A model answer.",
    )  # fmt: skip
    (seen,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id,
        whole_assignment=True,
    )  # fmt: skip
    assert seen.attribution_label == "From the assignment"
    assert "The role of the therapist as a secure base" in seen.body_html


async def test_snapshots_do_not_follow_edits_silently_and_can_be_refreshed(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    made = await nominate_post(session, world, publish=True)
    await discussions.edit_post(
        session, actor=world.actors["ada"], post_id=world.post.public_id,
        body="I would lean in, listen, and *name* what I hear.", version=world.post.version,
    )  # fmt: skip
    (stale,) = await exemplars.gallery(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id
    )
    assert stale.source_changed is True
    assert "name" not in stale.body_html  # the published snapshot did not change
    await exemplars.refresh(session, actor=world.actors["mona"], public_id=made.public_id)
    (fresh,) = await exemplars.gallery(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id
    )
    assert fresh.source_changed is False and "<em>name</em>" in fresh.body_html


async def test_a_passage_of_a_paper(session: AsyncSession, world: ExemplarWorld) -> None:
    start = PAPER.index("I disagree")
    made = await exemplars.nominate(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id,
        kind=ExemplarKind.passage, source=world.paper_id, passage=(start, len(PAPER)),
    )  # fmt: skip
    assert made.body == PAPER[start:]
    with pytest.raises(Invalid):
        await exemplars.nominate(
            session, actor=world.actors["mona"], assignment_id=world.assignment_id,
            kind=ExemplarKind.passage, source=world.paper_id, passage=(5, 10_000),
        )  # fmt: skip


async def test_stale_edits_conflict(session: AsyncSession, world: ExemplarWorld) -> None:
    made = await nominate_post(session, world)
    await exemplars.update(
        session, actor=world.actors["mona"], public_id=made.public_id, version=made.version,
        position=5, status=ExemplarStatus.published,
    )  # fmt: skip
    with pytest.raises(Conflict):
        await exemplars.update(
            session, actor=world.actors["ivo"], public_id=made.public_id, version=1, note="x"
        )


async def test_gallery_lists_agree_with_the_single_object_rule(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a = await nominate_post(session, world, publish=True)
    b = await nominate_post(session, world)
    c = await exemplars.nominate(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id,
        kind=ExemplarKind.sample_paper, publish=True,
    )  # fmt: skip
    await exemplars.choose_attribution(
        session, actor=world.actors["ada"], public_id=a.public_id, choice=Attribution.declined
    )
    cohort = (await session.execute(select(Cohort).where(Cohort.slug == "psy"))).scalar_one()
    everything = [a, b, c]
    for name, actor in [*world.actors.items(), ("system", Actor.system())]:
        try:
            listed = set(ids(await exemplars.gallery(
                session, actor=actor, assignment_id=world.assignment_id
            )))  # fmt: skip
        except NotFound:
            listed = set()
        allowed = {
            e.public_id
            for e in everything
            if policy.can_view_assignment(actor, await _assignment(session, world))
            and policy.can_see_exemplar(
                actor,
                cohort,
                published=e.status is ExemplarStatus.published,
                declined=e.attribution is Attribution.declined,
                author_id=e.author_id,
            )
        }
        assert listed == allowed, name
    assert await session.scalar(select(func.count()).select_from(Exemplar)) == 3


async def _assignment(session: AsyncSession, world: ExemplarWorld):  # type: ignore[no-untyped-def]
    from services.models import Assignment

    return await session.get(Assignment, world.assignment_id)
