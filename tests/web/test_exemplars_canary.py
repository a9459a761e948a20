"""The canary scan over the exemplar area: every person has a unique random name; every byte
each viewer receives from every exemplar, workspace and export route (HTML, JSON, SSE,
headers, and the page a redirect leads to) is recorded, and the scan fails if the name of
an author who did not consent to be named (anonymous, not yet chosen, declined) or of a
reviewer reaches a student, an outsider or a visitor. Positive controls: the author who
chose to be named is seen by classmates, and curators see every author."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import discussions, policy
from services.db import transaction
from services.models import Paper, Phase, Post, Question, Review, ReviewTask, Role
from tests.conftest import People, client_for
from tests.review_support import run_review_round
from tests.web.canary_support import Step, canary, filler, record, route_names
from web import routes_exemplars

STUDENTS = ("anon", "pending", "declined", "named", "reviewer", "peer")
VIEWERS = ("anonymous", "outsider", "peer", "anon", "moderator", "instructor", "administrator")
STAFF = {"moderator", "instructor", "administrator"}
# Whose names only staff may receive (the reviewer's: nobody's business but a reveal's).
UNCONSENTED = {"anon", "pending", "declined", "reviewer"}
NEUTRAL = (  # review_support.paper_text without the name in it
    "A secure base is a reliable presence from which the client explores.\n\n"
    "I disagree that the therapist's own history matters much.\n\n"
    "Attunement means noticing when the client withdraws.\n"
)


async def test_no_exemplar_route_leaks_an_author_who_did_not_consent(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    names = {who: canary("cx") for who in (*STUDENTS, "moderator", "instructor", "outsider",
                                         "administrator")}  # fmt: skip
    admin = await people.client(names["administrator"], administrator=True)
    for slug in ("psy", "other"):
        assert (await admin.post("/api/v1/cohorts", json={"slug": slug, "name": slug})).is_success
    clients: dict[str, httpx.AsyncClient] = {"administrator": admin}
    for who in STUDENTS:
        clients[who] = await people.member(names[who], "psy", Role.student)
    clients["moderator"] = await people.member(names["moderator"], "psy", Role.moderator)
    clients["instructor"] = await people.member(names["instructor"], "psy", Role.instructor)
    clients["outsider"] = await people.member(names["outsider"], "other", Role.student)
    clients["anonymous"] = client_for(people.asgi)
    people._clients.append(clients["anonymous"])
    ids = {who: people.users[names[who]].id or 0 for who in STUDENTS}

    # A finished review round (every paper neutral: no names in the text), then each author
    # writes an anonymous thread in the assignment's discussion.
    a = await run_review_round(
        sessions, slug="psy", users=ids, k=1, until=Phase.feedback,
        text_for=dict.fromkeys(ids, NEUTRAL),
    )  # fmt: skip
    async with transaction(sessions) as session:
        question = await session.scalar(select(col(Question.id)).where(Question.assignment_id == a))
        assert question is not None
        posts = {}
        for who in ("anon", "pending", "declined", "named"):
            actor = await policy.load_actor(session, user_id=ids[who], is_administrator=False)
            thread = await discussions.create_thread(
                session, actor=actor, question_id=question, title=f"Thoughts {who[:2]}",
                # "named" consents to a name, so writes under it (an anonymous post may
                # not be named in the gallery: its alias would follow).
                body="A reliable presence, in my words.", anonymous=who != "named",
            )  # fmt: skip
            posts[who] = await session.scalar(
                select(Post.public_id).where(Post.thread_id == thread.id)
            )
        papers = dict(
            (await session.execute(
                select(Paper.author_id, Paper.public_id).where(Paper.assignment_id == a)
            )).all()
        )  # fmt: skip
        review = await session.scalar(
            select(Review.public_id)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .where(ReviewTask.assignment_id == a, ReviewTask.reviewer_id == ids["reviewer"])
        )
    mona = clients["moderator"]

    async def nominate(**body: Any) -> str:
        made = await mona.post(
            f"/api/v1/assignments/{a}/exemplars",
            json={"note": "Worth reading.", "status": "published", **body},
        )
        assert made.status_code == 201, made.text
        public_id: str = made.json()["id"]
        return public_id

    ex = {who: await nominate(kind="post", source=posts[who], question_id=question)
          for who in posts}  # fmt: skip
    ex["review"] = await nominate(kind="review", source=review)
    ex["paper"] = await nominate(kind="paper", source=papers[ids["pending"]])
    ex["passage"] = await nominate(
        kind="passage", source=papers[ids["anon"]], passage={"start": 0, "end": 30}
    )
    ex["spare"] = await nominate(kind="paper", source=papers[ids["peer"]])
    for who, choice in (("anon", "anonymous"), ("named", "named"), ("declined", "declined"),
                        ("reviewer", "anonymous")):  # fmt: skip
        for exemplar in [ex[who]] if who != "reviewer" else [ex["review"]]:
            chosen = await clients[who].put(
                f"/api/v1/exemplars/{exemplar}/attribution", json={"choice": choice}
            )
            assert chosen.status_code == 200, chosen.text

    w = {"a": a, "q": question, "e": ex["anon"], "n": ex["named"], "r": ex["review"],
         "s": ex["spare"], "post": posts["anon"]}  # fmt: skip
    reads: list[Step] = [
        ("exemplars:gallery", "GET", "/assignments/{a}/exemplars", {}),
        ("exemplars:gallery", "GET", "/assignments/{a}/exemplars?question={q}", {}),
        ("exemplars:gallery", "GET", "/assignments/{a}/exemplars?question=none", {}),
        ("api:exemplars:list", "GET", "/api/v1/assignments/{a}/exemplars", {}),
        ("api:exemplars:list", "GET", "/api/v1/assignments/{a}/exemplars?question={q}", {}),
        ("api:exemplars:detail", "GET", "/api/v1/exemplars/{e}", {}),
        ("api:exemplars:detail", "GET", "/api/v1/exemplars/{r}", {}),
        ("api:exemplars:detail", "GET", "/api/v1/exemplars/{n}", {}),
        ("workspace", "GET", "/assignments/{a}/workspace", {}),
        ("api:workspace", "GET", "/api/v1/assignments/{a}/workspace", {}),
        ("api:workspace:events", "GET",
         "/api/v1/assignments/{a}/workspace/events?poll=1&last_event_id=0", {}),
        ("api:exports", "GET", "/api/v1/assignments/{a}/exports/posts.csv", {}),
        ("api:exports", "GET", "/api/v1/assignments/{a}/exports/posts.json?view=student", {}),
        ("api:exports", "GET", "/api/v1/assignments/{a}/exports/reviews.csv", {}),
        ("api:exports", "GET", "/api/v1/assignments/{a}/exports/participation.json", {}),
        ("api:exports", "GET", "/api/v1/assignments/{a}/exports/audit.csv", {}),
    ]  # fmt: skip
    writes: list[Step] = [
        ("exemplars:attribution", "POST", "/exemplars/{e}/attribution",
         {"data": {"choice": "anonymous"}}),
        ("api:exemplars:attribution", "PUT", "/api/v1/exemplars/{e}/attribution",
         {"json": {"choice": "anonymous"}}),
        ("api:exemplars:create", "POST", "/api/v1/assignments/{a}/exemplars",
         {"json": {"kind": "post", "source": "{post}", "note": "again"}}),
        ("exemplars:nominate", "POST", "/exemplars/nominate",
         {"data": {"kind": "post", "source": "{post}", "question_id": "{q}", "note": "n"}}),
        ("api:exemplars:update", "PATCH", "/api/v1/exemplars/{s}",
         {"json": {"version": 1, "note": "better"}}),
        ("exemplars:edit", "POST", "/exemplars/{s}/edit", {"data": {"version": "2", "note": "b"}}),
        ("exemplars:move", "POST", "/exemplars/{s}/move", {"data": {"direction": "up"}}),
        ("api:exemplars:refresh", "POST", "/api/v1/exemplars/{s}/refresh", {}),
        ("api:exemplars:delete", "DELETE", "/api/v1/exemplars/{s}", {}),
    ]  # fmt: skip
    covered = {(name, method) for name, method, _, _ in reads + writes}
    assert covered == route_names(routes_exemplars)

    fill = filler(w)

    # Everyone reads first; then the writes (which change things) run viewer by viewer.
    received = {viewer: await record(clients[viewer], reads, fill) for viewer in VIEWERS}
    for viewer in VIEWERS:
        received[viewer] += await record(clients[viewer], writes, fill)

    for viewer, blob in received.items():
        seen = {who for who in names if names[who].encode() in blob and who != viewer}
        if viewer in STAFF:
            assert {"anon", "pending", "named"} <= seen, (viewer, seen)  # curators see authors
            continue
        assert not seen & UNCONSENTED, f"{sorted(seen & UNCONSENTED)} reached {viewer}"
        if viewer in ("peer", "anon"):
            assert "named" in seen, "the author who chose to be named should be seen"
        else:
            assert not seen, f"{sorted(seen)} reached {viewer}"
    # The recording covered real content, not only refusals.
    assert b"worth reading." in received["peer"] and b'"a review"' in received["peer"]
