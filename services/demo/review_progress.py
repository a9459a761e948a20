"""Peer review under way on the demo's Secure Base assignment: most reviews submitted, a few
drafts, a few not started, so the workspace has completion, stance charts, Krippendorff's
alpha and the papers reviewers disagree on, while Ada still has reviews to write.

Each reviewer reads the paper much as a careful reader would (READINGS: the paper's stance
toward the source, overall and per rubric component, and passages that show it), give or
take their own leaning and judgment, drawn from a random generator seeded by the pair so
the demo is the same every time. Reviews go through `reviews.save_review`, so every quote
is checked to be a passage of the paper and every submitted review to be complete.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import papers, reviews
from services.models import ComponentStance, Paper, ReviewTask, Stance
from services.policy import Actor


@dataclass(frozen=True)
class Reading:
    """How one paper stands toward the source, overall and per rubric component (key), with
    passages of the paper that show it."""

    overall: Stance
    overall_quotes: tuple[str, ...]
    components: Mapping[str, tuple[ComponentStance, tuple[str, ...]]]


A, D, M, N = (ComponentStance.agrees, ComponentStance.disagrees, ComponentStance.mixed,
              ComponentStance.not_addressed)  # fmt: skip

# Keyed by the author's demo subject. Dara's paper is the assignment's sample paper.
READINGS = {
    "ada-student": Reading(
        Stance.mostly_agrees,
        ("I agree with Mikulincer and Shaver that exploring relational biases only works once "
         "the client feels safe",),
        {
            "secure-base": (A, ("Being a secure base means being reliable, available and "
                                "responsive",)),
            "exploring-biases-safely": (A, ("exploring relational biases only works once the "
                                            "client feels safe",
                                            "I name patterns gently and check in often")),
            "attunement": (N, ()),
            "therapist-attachment-history": (A, ("My own attachment history matters",
                                                 "when a client withdraws I notice my urge to "
                                                 "reassure them too quickly")),
        },
    ),
    "ben-student": Reading(
        Stance.mostly_disagrees,
        ("I am not convinced that the therapist should be a secure base at all",),
        {
            "secure-base": (D, ("I am not convinced that the therapist should be a secure base "
                                "at all",
                                "Clients need to build their own resources rather than lean "
                                "on the therapist")),
            "exploring-biases-safely": (M, ("Pointing out failed relational strategies is the "
                                            "core of the work",
                                            "safety follows from honesty more than from "
                                            "warmth")),
            "attunement": (N, ()),
            "therapist-attachment-history": (N, ()),
        },
    ),
    "chen-student": Reading(
        Stance.mostly_agrees,
        ("The article's claim that the therapist is a secure base fits my experience in "
         "practicum",),
        {
            "secure-base": (A, ("The article's claim that the therapist is a secure base fits "
                                "my experience",)),
            "exploring-biases-safely": (N, ()),
            "attunement": (A, ("Attunement is central",
                               "I adapt my pace to avoidant clients and offer more structure "
                               "to anxious ones")),
            "therapist-attachment-history": (D, ("I disagree that the therapist's own "
                                                 "attachment history is decisive",)),
        },
    ),
    "dara-student": Reading(
        Stance.mostly_agrees,
        ("I appreciated their nuanced understanding of how attachment patterns influence "
         "therapy dynamics",
         "some parts of the article felt somewhat idealized"),
        {
            "secure-base": (A, ("The role of the therapist as a secure base is fundamental in "
                                "fostering effective therapeutic relationships",)),
            "exploring-biases-safely": (A, ("While helping clients become aware of maladaptive "
                                            "relational biases and strategies, the therapist "
                                            "must maintain a steadfast, dependable presence",)),
            # The sample paper spells "client's" here with U+2019, a typographic apostrophe.
            "attunement": (A, ("their emphasis on the therapist's attunement to the client\u2019s "
                               "attachment needs",)),
            "therapist-attachment-history": (M, ("it did not sufficiently address how "
                                                 "therapists' own unresolved attachment issues "
                                                 "might complicate maintaining a secure base",)),
        },
    ),
}  # fmt: skip


class Progress(Enum):
    submitted = "submitted"
    draft = "draft"
    not_started = "not started"


# (reviewer, author) -> how far that review is. Pairs not listed are not started. Ada (the
# person the demo is usually tried as) has one review submitted, one drafted, one to start.
PROGRESS = {
    ("ada-student", "ben-student"): Progress.submitted,
    ("ada-student", "dara-student"): Progress.draft,
    ("ben-student", "ada-student"): Progress.submitted,
    ("ben-student", "chen-student"): Progress.submitted,
    ("ben-student", "dara-student"): Progress.submitted,
    ("chen-student", "ada-student"): Progress.submitted,
    ("chen-student", "ben-student"): Progress.submitted,
    ("chen-student", "dara-student"): Progress.draft,
    ("dara-student", "ada-student"): Progress.submitted,
    ("dara-student", "chen-student"): Progress.submitted,
}

# Some reviewers read more sceptically or more generously than the paper's reading.
LEANING = {"ben-student": -1, "chen-student": 1}
SCALE = [s for s in Stance if s.rank is not None]
SHIFT = {A: (M,), D: (M,), M: (A, D), N: (N,)}
RATIONALE = {
    Stance.strongly_disagrees: "The paper rejects the article's central claim",
    Stance.mostly_disagrees: "The paper argues against the article more than with it",
    Stance.mixed: "The paper agrees with parts of the article and pushes back on others",
    Stance.mostly_agrees: "The paper takes up the article's view, with reservations",
    Stance.strongly_agrees: "The paper adopts the article's view throughout",
}
SUGGESTIONS = (
    "Say which part of Mikulincer & Shaver you disagree with, and quote it.",
    "Add an example from a session for the point you make about safety.",
    "The paper would be stronger if it addressed the therapist's own attachment history.",
    "Tie the conclusion back to the article's claims about exploration.",
)


def judge(reading: Reading, rng: random.Random, *, leaning: int = 0) -> reviews.ReviewInput:
    """One reviewer's review of a paper: the reading, give or take one step here and there,
    each stance backed by one or two of the passages that show it."""
    rank = SCALE.index(reading.overall) + leaning + rng.choice((-1, 0, 0, 1))
    overall = SCALE[min(max(rank, 0), len(SCALE) - 1)]
    components: dict[str, ComponentStance] = {}
    evidence = [reviews.QuoteInput(None, rng.choice(reading.overall_quotes))]
    for key, (stance, quotes) in reading.components.items():
        if rng.random() < 0.25:
            stance = rng.choice(SHIFT[stance])
        components[key] = stance
        if stance is not N:
            picked = rng.sample(quotes, k=min(len(quotes), rng.choice((1, 2))))
            evidence.extend(reviews.QuoteInput(key, quote) for quote in picked)
    return reviews.ReviewInput(
        overall_stance=overall,
        components=components,
        evidence=evidence,
        rationale=f"{RATIONALE[overall]}; the quoted passages show where.",
        suggestion=rng.choice(SUGGESTIONS),
    )


def draft_of(review: reviews.ReviewInput) -> reviews.ReviewInput:
    """A review begun and saved: the overall stance, its first quote and a note to self."""
    return reviews.ReviewInput(
        overall_stance=review.overall_stance,
        evidence=list(review.evidence[:1]),
        rationale="Draft: the paper leans on the secure-base idea; check the other components.",
    )


def _readable(reading: Reading, text: str) -> Reading:
    # The sample paper comes from the assignment document: quote only what it really says
    # (a component none of whose passages is in it counts as not addressed).
    def found(quotes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(q for q in quotes if reviews.find_passage(text, q) is not None)

    components = {
        key: (stance, found(quotes)) if found(quotes) else (N, ())
        for key, (stance, quotes) in reading.components.items()
    }
    first_sentence = (text.split(".")[0].strip(),)
    return Reading(reading.overall, found(reading.overall_quotes) or first_sentence, components)


async def seed_review_progress(
    session: AsyncSession, *, assignment_id: int, people: Mapping[str, Actor]
) -> None:
    """Write the reviews of the demo's review round as PROGRESS says (call once, in review)."""
    subject_of = {actor.user_id: subject for subject, actor in people.items()}
    rows = await session.execute(
        select(ReviewTask, Paper)
        .join(Paper, col(Paper.id) == ReviewTask.paper_id)
        .where(ReviewTask.assignment_id == assignment_id)
    )
    pairs = sorted(
        ((subject_of.get(task.reviewer_id), subject_of.get(paper.author_id), task, paper)
         for task, paper in rows.all()),
        key=lambda row: (row[0] or "", row[1] or ""),
    )  # fmt: skip
    for reviewer, author, task, paper in pairs:
        if reviewer is None or author not in READINGS:
            continue
        progress = PROGRESS.get((reviewer, author), Progress.not_started)
        if progress is Progress.not_started:
            continue
        version = await papers.current_version(session, paper)
        assert version is not None
        # Seeded by the pair, not by the run's allocation seed: the same review every time
        # (this salt gives one contested paper and close calls on the others).
        rng = random.Random(f"demo:{reviewer}:{author}")  # noqa: S311
        reading = _readable(READINGS[author], version.body)
        review = judge(reading, rng, leaning=LEANING.get(reviewer, 0))
        await reviews.save_review(
            session, actor=people[reviewer], task_id=task.public_id,
            data=review if progress is Progress.submitted else draft_of(review),
            expected_version=None, submit=progress is Progress.submitted,
        )  # fmt: skip
