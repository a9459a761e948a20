"""Stance reviews: drafts, evidence quotes, optimistic versions, submit and reopen,
feedback with highlights, ratings."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import reviews
from services.db import transaction
from services.errors import Conflict, Invalid, NotFound
from services.models import ComponentStance, Phase, Stance, TaskStatus
from tests.review_support import (
    ReviewWorld,
    full_review,
    make_world,
    review_all,
    set_phase,
    submit_papers,
    tasks_of,
)

STUDENTS = ("ada", "ben", "chen", "dara")


async def reviewing_world(sessions: async_sessionmaker[AsyncSession]) -> ReviewWorld:
    world = await make_world(sessions)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    return world


async def save(world: ReviewWorld, name: str, task_id: str, data, *, version=None, submit=False):  # type: ignore[no-untyped-def]
    async with transaction(world.sessions) as session:
        detail = await reviews.save_review(
            session,
            actor=await world.actor(session, name),
            task_id=task_id,
            data=data,
            expected_version=version,
            submit=submit,
        )
        return reviews.present_task(detail, actor=await world.actor(session, name))


def test_find_passage_is_whitespace_tolerant() -> None:
    text = "A secure base is a   reliable presence\nfrom which the client explores."
    assert reviews.find_passage(text, "reliable presence from which") == (21, 49)
    assert reviews.find_passage(text, "  a secure BASE") is None
    assert reviews.find_passage(text, "") is None
    assert reviews.find_passage(text, "explores.*") is None  # no regex injection


async def test_reviewer_sees_paper_code_and_text_never_the_author(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await reviewing_world(sessions)
    (task, *_) = await tasks_of(world, "ada")
    async with transaction(sessions, write=False) as session:
        actor = await world.actor(session, "ada")
        view = reviews.present_task(
            await reviews.get_task(session, actor=actor, task_id=task.public_id), actor=actor
        )
    assert view.paper.startswith("Paper ") and len(view.paper) == 10
    assert "secure base" in view.paper_text
    assert view.rubric[0].key == "secure-base"
    assert view.can_edit and view.review is None
    dumped = view.model_dump_json()
    assert "sub-psy" not in dumped


async def test_other_students_get_not_found(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await reviewing_world(sessions)
    (task, *_) = await tasks_of(world, "ada")
    other = ""
    for name in STUDENTS:
        if task.public_id not in {t.public_id for t in await tasks_of(world, name)}:
            other = name
    with pytest.raises(NotFound):
        await save(world, other, task.public_id, reviews.ReviewInput())
    with pytest.raises(NotFound):
        await save(world, "ada", "no-such-task", reviews.ReviewInput())


async def test_draft_saves_then_submit_locks_and_moderator_reopens(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await reviewing_world(sessions)
    (task, *_) = await tasks_of(world, "ada")
    draft = await save(
        world, "ada", task.public_id, reviews.ReviewInput(overall_stance=Stance.mixed), version=0
    )
    assert draft.status is TaskStatus.started and draft.review is not None
    assert draft.review.version == 1 and not draft.review.submitted
    # A stale version is refused: two tabs never overwrite each other.
    with pytest.raises(Conflict, match="now version 1"):
        await save(world, "ada", task.public_id, reviews.ReviewInput(), version=0)
    # Incomplete reviews cannot be submitted; the problems say what is missing.
    with pytest.raises(Invalid) as refused:
        await save(world, "ada", task.public_id, reviews.ReviewInput(overall_stance=Stance.mixed),
                   version=1, submit=True)  # fmt: skip
    fields = {p.field for p in refused.value.problems}
    assert {"evidence", "components.secure-base", "rationale"} <= fields
    done = await save(world, "ada", task.public_id, full_review(), version=1, submit=True)
    assert done.status is TaskStatus.submitted and done.review is not None
    assert done.review.submitted and not done.can_edit
    assert {e.component for e in done.review.evidence} == {
        None,
        "secure-base",
        "attunement",
        "therapist-attachment-history",
    }
    quote = next(e for e in done.review.evidence if e.component is None)
    assert quote.text == "A secure base is a   reliable presence\nfrom which"  # as in the paper
    with pytest.raises(Conflict):
        await save(world, "ada", task.public_id, full_review(), version=2)
    # Only staff reopen.
    for name in ("ada", "ben"):
        with pytest.raises(NotFound):
            async with transaction(sessions) as session:
                await reviews.reopen_review(
                    session, actor=await world.actor(session, name), task_id=task.public_id
                )
    async with transaction(sessions) as session:
        reopened = await reviews.reopen_review(
            session, actor=await world.actor(session, "mona"), task_id=task.public_id
        )
    assert reopened.task.status is TaskStatus.started
    again = await save(world, "ada", task.public_id, full_review(Stance.mixed), version=3)
    assert again.review is not None and again.review.overall_stance is Stance.mixed


async def test_quotes_must_be_passages_of_the_paper(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await reviewing_world(sessions)
    (task, *_) = await tasks_of(world, "ada")
    bad = reviews.ReviewInput(
        components={"attunement": ComponentStance.agrees, "nope": ComponentStance.agrees},
        evidence=(
            reviews.QuoteInput("attunement", "words the paper never says"),
            reviews.QuoteInput("unknown", "secure base"),
        ),
    )
    with pytest.raises(Invalid) as refused:
        await save(world, "ada", task.public_id, bad)
    assert {p.field for p in refused.value.problems} == {
        "components.nope",
        "evidence[0].text",
        "evidence[1].component",
    }


async def test_does_not_engage_needs_no_overall_quote(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await reviewing_world(sessions)
    (task, *_) = await tasks_of(world, "ada")
    data = reviews.ReviewInput(
        overall_stance=Stance.does_not_engage,
        components=dict.fromkeys(
            (
                "secure-base",
                "exploring-biases-safely",
                "attunement",
                "therapist-attachment-history",
            ),
            ComponentStance.not_addressed,
        ),
        rationale="It never mentions the source.",
    )
    view = await save(world, "ada", task.public_id, data, submit=True)
    assert view.status is TaskStatus.submitted


async def test_feedback_shows_reviewer_numbers_and_highlights_then_rating(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await reviewing_world(sessions)
    await review_all(world, STUDENTS, {})
    async with transaction(sessions, write=False) as session:
        with pytest.raises(NotFound):  # not released during review
            await reviews.my_feedback(
                session, actor=await world.actor(session, "ada"), assignment_id=world.assignment_id
            )
    await set_phase(world, Phase.feedback)
    async with transaction(sessions, write=False) as session:
        feedback = await reviews.my_feedback(
            session, actor=await world.actor(session, "ada"), assignment_id=world.assignment_id
        )
    assert [r.reviewer for r in feedback.reviews] == ["Reviewer 1", "Reviewer 2"]
    assert '<mark class="evidence">reliable presence' not in feedback.paper_html  # merged span
    assert '<mark class="evidence">A secure base is a   reliable presence\nfrom which</mark>' in (
        feedback.paper_html
    )
    assert '<mark class="evidence">noticing when the client withdraws</mark>' in feedback.paper_html
    assert feedback.can_rate
    dumped = feedback.model_dump_json()
    for name in STUDENTS:
        assert f"sub-psy-{name}" not in dumped
    review_id = feedback.reviews[0].id
    # Only the author rates, 1-5.
    async with transaction(sessions) as session:
        with pytest.raises(NotFound):
            await reviews.rate_review(
                session, actor=await world.actor(session, "ben"), review_id=review_id, rating=5
            )
    async with transaction(sessions) as session:
        with pytest.raises(Invalid):
            await reviews.rate_review(
                session, actor=await world.actor(session, "ada"), review_id=review_id, rating=9
            )
    async with transaction(sessions) as session:
        rated = await reviews.rate_review(
            session, actor=await world.actor(session, "ada"), review_id=review_id, rating=4,
            comment="Helpful quotes",
        )  # fmt: skip
    assert rated.rating == 4
    # The reviewer sees the rating on their task, with no author anywhere.
    reviewer_tasks = []
    for name in STUDENTS:
        async with transaction(sessions, write=False) as session:
            listed = await reviews.list_my_tasks(
                session, actor=await world.actor(session, name), assignment_id=world.assignment_id
            )
        reviewer_tasks.extend(t for t in listed if t.rating is not None)
    assert len(reviewer_tasks) == 1
    assert (
        reviewer_tasks[0].rating is not None
        and reviewer_tasks[0].rating.comment == "Helpful quotes"
    )
