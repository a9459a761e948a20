"""Exemplars: nomination, consent, gallery visibility, snapshots and refresh."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import discussions, exemplars, policy
from services.db import transaction
from services.errors import Conflict, Invalid, NotFound
from services.models import (
    Alias,
    Attribution,
    AuditEvent,
    Cohort,
    Exemplar,
    ExemplarKind,
    ExemplarStatus,
    Notification,
    Paper,
    Post,
    Question,
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


async def test_a_named_post_shown_as_an_exemplar_never_carries_its_authors_alias(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    # Ada also writes anonymously in the discussion, so she has an alias: the gallery must
    # not put it on her named answer (the thread shows that text under "Ada Canary", so the
    # alias, and every anonymous post under it, would be hers).
    await discussions.create_thread(
        session, actor=world.actors["ada"], question_id=world.question_ids[1],
        title="Quietly", body="Something private.", anonymous=True,
    )  # fmt: skip
    alias = await session.scalar(
        select(Alias.name).where(
            Alias.user_id == world.actors["ada"].user_id,
            Alias.assignment_id == world.assignment_id,
        )
    )
    assert alias
    made = await nominate_post(session, world, publish=True)
    (seen,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id
    )
    assert seen.attribution_label == "A classmate"
    assert alias not in seen.model_dump_json() and "Ada" not in seen.model_dump_json()
    assert seen.status is None and seen.author_name is None and seen.version is None

    await exemplars.choose_attribution(
        session, actor=world.actors["ada"], public_id=made.public_id, choice=Attribution.anonymous
    )
    (anonymous,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id
    )
    assert anonymous.attribution_label == "A classmate"

    await exemplars.choose_attribution(
        session, actor=world.actors["ada"], public_id=made.public_id, choice=Attribution.named
    )
    (named,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id
    )
    assert named.attribution_label == "Ada Canary"


async def test_an_anonymous_post_cannot_be_shown_under_its_authors_name(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    thread = await discussions.create_thread(
        session, actor=world.actors["ada"], question_id=world.question_ids[1],
        title="Quietly", body="Something private.", anonymous=True,
    )  # fmt: skip
    post = await session.scalar(select(Post.public_id).where(Post.thread_id == thread.id))
    made = await exemplars.nominate(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id,
        kind=ExemplarKind.post, source=post, question_id=world.question_ids[1], publish=True,
    )  # fmt: skip
    with pytest.raises(Invalid) as refused:
        await exemplars.choose_attribution(
            session, actor=world.actors["ada"], public_id=made.public_id,
            choice=Attribution.named,
        )  # fmt: skip
    assert "anonymous" in str(refused.value.problems[0].message)
    (seen,) = await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id
    )
    assert seen.attribution_label == "A classmate" and "Ada" not in seen.model_dump_json()


@pytest.mark.parametrize("kind", [ExemplarKind.paper, ExemplarKind.passage])
async def test_paper_exemplars_carry_no_paper_code_and_stay_blind_to_curators(
    session: AsyncSession, world: ExemplarWorld, kind: ExemplarKind
) -> None:
    code = await session.scalar(select(Paper.code).where(Paper.public_id == world.paper_id))
    assert code
    made = await exemplars.nominate(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id, kind=kind,
        source=world.paper_id, passage=(0, 20) if kind is ExemplarKind.passage else None,
        publish=True,
    )  # fmt: skip
    for who in ("ben", "ada", "mona", "ivo"):
        for view in [
            *await exemplars.gallery(
                session, actor=world.actors[who], assignment_id=world.assignment_id
            ),
            await exemplars.get(session, actor=world.actors[who], public_id=made.public_id),
        ]:
            text = view.model_dump_json()
            assert code not in text, who  # "Paper K7Q2" belongs to the review only
            if who != "ben":  # Ben wrote it: he sees his own nomination, to choose
                assert "Ben Canary" not in text, who  # no author, to curators either
    await exemplars.choose_attribution(
        session, actor=world.actors["ben"], public_id=made.public_id, choice=Attribution.named
    )
    curated = await exemplars.get(session, actor=world.actors["mona"], public_id=made.public_id)
    assert curated.author_name == "Ben Canary" == curated.attribution_label


async def test_a_post_first_questions_exemplars_wait_until_the_student_has_posted(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    question = await session.get(Question, world.question_ids[0])
    assert question is not None
    question.post_first = True
    session.add(question)
    made = await nominate_post(session, world, publish=True)
    ben = world.actors["ben"]
    assert ids(await exemplars.gallery(
        session, actor=ben, assignment_id=world.assignment_id
    )) == []  # fmt: skip
    with pytest.raises(NotFound):
        await exemplars.get(session, actor=ben, public_id=made.public_id)
    await discussions.create_thread(
        session, actor=ben, question_id=world.question_ids[0], title="Mine", body="My take."
    )
    assert ids(await exemplars.gallery(
        session, actor=ben, assignment_id=world.assignment_id
    )) == [made.public_id]  # fmt: skip
    assert (await exemplars.get(session, actor=ben, public_id=made.public_id)).id


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


# --- ordering the gallery ------------------------------------------------------------------


async def three_in_question_one(session: AsyncSession, w: ExemplarWorld) -> list[Exemplar]:
    return [await nominate_post(session, w) for _ in range(3)]


async def order(session: AsyncSession, w: ExemplarWorld, **where: object) -> list[str]:
    return ids(await exemplars.gallery(
        session, actor=w.actors["mona"], assignment_id=w.assignment_id, **where,  # type: ignore[arg-type]
    ))  # fmt: skip


async def move(
    session: AsyncSession, w: ExemplarWorld, who: str, e: Exemplar, direction: str, **kw: object
) -> Exemplar:
    return await exemplars.move(
        session, actor=w.actors[who], public_id=e.public_id, direction=direction,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_curators_move_an_exemplar_up_and_down_in_its_gallery(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a, b, c = await three_in_question_one(session, world)
    q1 = world.question_ids[0]
    await move(session, world, "mona", c, "up")
    assert await order(session, world, question_id=q1) == ids_of(a, c, b)
    await move(session, world, "ivo", a, "down", version=a.version, neighbour=c.public_id)
    assert await order(session, world, question_id=q1) == ids_of(c, a, b)
    # What students see agrees once the exemplars are published.
    for e in (a, b, c):
        await exemplars.update(
            session, actor=world.actors["mona"], public_id=e.public_id, version=e.version,
            status=ExemplarStatus.published,
        )  # fmt: skip
    assert ids(await exemplars.gallery(
        session, actor=world.actors["ben"], assignment_id=world.assignment_id, question_id=q1
    )) == ids_of(c, a, b)  # fmt: skip


def ids_of(*made: Exemplar) -> list[str]:
    return [e.public_id for e in made]


async def test_the_first_does_not_move_up_nor_the_last_down(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a, b, c = await three_in_question_one(session, world)
    versions = [e.version for e in (a, b, c)]
    with pytest.raises(Conflict, match="already the first"):
        await move(session, world, "mona", a, "up")
    with pytest.raises(Conflict, match="already the last"):
        await move(session, world, "mona", c, "down")
    with pytest.raises(Invalid):
        await move(session, world, "mona", b, "sideways")
    assert await order(session, world, question_id=world.question_ids[0]) == ids_of(a, b, c)
    assert [e.version for e in (a, b, c)] == versions


async def test_each_gallery_is_ordered_on_its_own(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a, b, c = await three_in_question_one(session, world)
    sample = await exemplars.nominate(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id,
        kind=ExemplarKind.sample_paper,
    )  # fmt: skip
    other = await exemplars.nominate(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id,
        kind=ExemplarKind.post, source=world.post.public_id, question_id=world.question_ids[1],
    )  # fmt: skip
    # Alone in their galleries: the whole assignment's, and question 2's.
    for alone in (sample, other):
        for direction in ("up", "down"):
            with pytest.raises(Conflict):
                await move(session, world, "mona", alone, direction)
    controls = await exemplars.curation_controls(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id
    )
    assert (controls[a.public_id].above, controls[a.public_id].below) == (None, b.public_id)
    assert (controls[c.public_id].above, controls[c.public_id].below) == (b.public_id, None)
    assert controls[sample.public_id].above is None and controls[sample.public_id].below is None
    assert controls[a.public_id].note == "Concrete **behaviours** a camera could see."
    await move(session, world, "mona", a, "down")
    assert await order(session, world, whole_assignment=True) == ids_of(sample)
    assert await order(session, world, question_id=world.question_ids[1]) == ids_of(other)
    assert await order(session, world, question_id=world.question_ids[0]) == ids_of(b, a, c)


async def test_only_curators_reorder(session: AsyncSession, world: ExemplarWorld) -> None:
    a, b, c = [await nominate_post(session, world, publish=True) for _ in range(3)]
    for who in ("ada", "ben", "zed"):  # ada is the author of all three
        with pytest.raises(NotFound):
            await move(session, world, who, b, "up")
    with pytest.raises(NotFound):
        await exemplars.move(
            session, actor=Actor.anonymous(), public_id=b.public_id, direction="up"
        )
    for who in ("ada", "ben"):  # members see the gallery, but get no controls
        assert (
            await exemplars.curation_controls(
                session, actor=world.actors[who], assignment_id=world.assignment_id
            )
            == {}
        )
    assert await order(session, world) == ids_of(a, b, c)
    assert [e.version for e in (a, b, c)] == [1, 1, 1]


async def test_a_move_is_audited_and_makes_older_edits_stale(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a, b, _ = await three_in_question_one(session, world)
    await move(session, world, "mona", b, "up", version=1, neighbour=a.public_id)
    (event,) = (
        await session.execute(select(AuditEvent).where(AuditEvent.action == "exemplar.move"))
    ).scalars()
    assert event.target_id == b.public_id and event.actor_user_id == world.actors["mona"].user_id
    assert event.details == {"direction": "up", "swapped_with": a.public_id, "position": 1}
    assert (a.version, b.version) == (2, 2)
    with pytest.raises(Conflict):  # a PATCH that saw the old position
        await exemplars.update(
            session, actor=world.actors["ivo"], public_id=a.public_id, version=1, position=1
        )


async def test_a_stale_form_moves_nothing(session: AsyncSession, world: ExemplarWorld) -> None:
    a, b, c = await three_in_question_one(session, world)
    # Mona's page shows a, b, c. Meanwhile ivo moves c up: a, c, b.
    await move(session, world, "ivo", c, "up")
    with pytest.raises(Conflict):  # "a down" meant to pass b, which has moved away
        await move(session, world, "mona", a, "down", version=1, neighbour=b.public_id)
    with pytest.raises(Conflict):  # b's own version changed
        await move(session, world, "mona", b, "up", version=1, neighbour=a.public_id)
    assert await order(session, world, question_id=world.question_ids[0]) == ids_of(a, c, b)
    assert (
        await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "exemplar.move")
        )
        == 1
    )


async def test_colliding_positions_are_renumbered_before_the_swap(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a, b, c = await three_in_question_one(session, world)
    for e in (a, b, c):  # the API allows equal positions; ties show in nomination order
        await exemplars.update(
            session, actor=world.actors["mona"], public_id=e.public_id, version=e.version,
            position=7,
        )  # fmt: skip
    await move(session, world, "mona", c, "up")
    assert await order(session, world, question_id=world.question_ids[0]) == ids_of(a, c, b)
    assert [e.position for e in (a, c, b)] == [1, 2, 3]


async def test_two_moves_at_once_queue_and_the_second_sees_the_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        world = await build(session)
        a, b, c = [e.public_id for e in await three_in_question_one(session, world)]

    async def meanwhile() -> None:  # ivo's page also shows a, b, c: "a down" meant past b
        async with transaction(sessions) as session:
            await exemplars.move(
                session, actor=world.actors["ivo"], public_id=a, direction="down", neighbour=b
            )

    async with transaction(sessions) as session:
        await exemplars.move(
            session, actor=world.actors["mona"], public_id=c, direction="up", neighbour=b
        )
        racing = asyncio.create_task(meanwhile())
        await asyncio.sleep(0.3)
        assert not racing.done()  # it waits for mona's move to commit...
    with pytest.raises(Conflict):  # ...then sees that b is no longer below a
        await racing
    async with transaction(sessions) as session:
        assert await order(session, world, question_id=world.question_ids[0]) == [a, c, b]


async def test_a_changed_note_is_audited_and_an_unchanged_one_is_not(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    a, _, _ = await three_in_question_one(session, world)
    await exemplars.update(
        session, actor=world.actors["mona"], public_id=a.public_id, version=a.version,
        note="Names a concrete change in practice.",
    )  # fmt: skip
    await exemplars.update(
        session, actor=world.actors["ivo"], public_id=a.public_id, version=a.version,
        note="  Names a concrete change in practice.  ",
    )  # fmt: skip
    (event,) = (
        await session.execute(select(AuditEvent).where(AuditEvent.action == "exemplar.note"))
    ).scalars()
    assert event.target_id == a.public_id and event.actor_user_id == world.actors["mona"].user_id
