"""Staff are blind where the design says so (issue 10): a moderator who was granted no
reveal cannot learn who wrote a paper or a review — not through the exemplar gallery (where
nominating a paper once showed its author), the review dashboard, the stance analytics,
the workspace or the exports — and the one named sheet (participation) holds no paper code
or reviewer number that would join it to those views. Canary names make a leak visible."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.db import transaction
from services.models import Paper, Phase, Review, ReviewTask, Role
from tests.conftest import People
from tests.review_support import run_review_round
from tests.web.canary_support import canary
from tests.web.test_exemplars_canary import NEUTRAL

STUDENTS = ("s1", "s2", "s3", "s4")


def objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside a document."""
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from objects(inner)


async def test_a_moderator_without_a_reveal_learns_no_author_or_reviewer(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    names = {who: canary("sb") for who in STUDENTS}
    admin = await people.client("root", administrator=True)
    assert (await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})).is_success
    clients = {who: await people.member(names[who], "psy", Role.student) for who in STUDENTS}
    mona = await people.member("mona", "psy", Role.moderator)
    ids = {who: people.users[names[who]].id or 0 for who in STUDENTS}
    a = await run_review_round(
        sessions, slug="psy", users=ids, k=2, until=Phase.feedback,
        text_for=dict.fromkeys(ids, NEUTRAL),
    )  # fmt: skip
    async with transaction(sessions, write=False) as session:
        papers = dict(
            (await session.execute(
                select(Paper.author_id, Paper.public_id).where(Paper.assignment_id == a)
            )).all()
        )  # fmt: skip
        codes = set((await session.execute(select(Paper.code))).scalars())
        review = await session.scalar(
            select(Review.public_id)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .where(ReviewTask.reviewer_id == ids["s3"])
            .limit(1)
        )
    made = {}
    for label, body in [
        ("paper", {"kind": "paper", "source": papers[ids["s1"]]}),
        ("passage", {"kind": "passage", "source": papers[ids["s2"]],
                     "passage": {"start": 0, "end": 30}}),
        ("review", {"kind": "review", "source": review}),
    ]:  # fmt: skip
        response = await mona.post(
            f"/api/v1/assignments/{a}/exemplars", json={**body, "note": "Good.", "status": "draft"}
        )
        assert response.status_code == 201, response.text
        made[label] = response.json()["id"]

    blind = [
        f"/assignments/{a}/exemplars",
        f"/api/v1/assignments/{a}/exemplars",
        *[f"/api/v1/exemplars/{e}" for e in made.values()],
        f"/assignments/{a}/review-dashboard",
        f"/api/v1/assignments/{a}/allocations",
        f"/api/v1/assignments/{a}/stance",
        f"/assignments/{a}/workspace",
        f"/api/v1/assignments/{a}/workspace",
        f"/api/v1/assignments/{a}/workspace/events?poll=1&last_event_id=0",
        f"/api/v1/assignments/{a}/exports/reviews.csv",
        f"/api/v1/assignments/{a}/exports/reviews.json",
    ]
    for path in blind:
        response = await mona.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        # The workspace lists who has not posted yet, by name (its job), and the papers
        # reviewers disagree on, by code: what matters is that no entry pairs the two.
        if path == f"/api/v1/assignments/{a}/workspace":
            for entry in objects(response.json()):
                flat = " ".join(
                    str(v) for v in entry.values() if not isinstance(v, dict | list)
                ).lower()
                paired = any(n in flat for n in names.values()) and any(
                    c.lower() in flat for c in codes
                )
                assert not paired, entry
            continue
        if "workspace" in path:
            continue  # the same sections, as a page and as a stream
        leaked = [who for who in STUDENTS if names[who].encode() in response.content.lower()]
        assert leaked == [], (path, leaked)

    # The named sheet: names, and nothing that keys the blind views (codes, numbers).
    participation = (await mona.get(f"/api/v1/assignments/{a}/exports/participation.csv")).text
    assert all(names[who] in participation.lower() for who in STUDENTS)
    assert not any(code in participation for code in codes)
    assert not re.search(r"Reviewer \d|Paper [A-Z0-9]{4}", participation)

    # Positive control: once the author consents to a name, curators see it.
    consent = await clients["s1"].put(
        f"/api/v1/exemplars/{made['paper']}/attribution", json={"choice": "named"}
    )
    assert consent.status_code == 200, consent.text
    shown = await mona.get(f"/api/v1/exemplars/{made['paper']}")
    assert names["s1"] in shown.text.lower() and names["s2"] not in shown.text.lower()
