"""One full review round driven through HTTP, recording every byte each viewer receives
(status line, headers and body of JSON, HTML and SSE responses). Used by the canary scan
and the differential test in test_review_privacy.py."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select
from starlette.routing import Match

from services import identity
from services.db import transaction
from services.identity import VerifiedIdentity
from services.models import (
    Assignment,
    Exemplar,
    Paper,
    Review,
    ReviewExclusion,
    ReviewTask,
    Role,
    TaskStatus,
    WebSession,
)
from tests.conftest import TEST_ISSUER, People, client_for
from tests.review_support import COMPONENTS, import_review_assignment
from tests.web.canary_support import filler
from web import routes_reviews

STUDENTS = ("ada", "ben", "chen", "dara", "eli")
STAFF = {"mona": Role.moderator, "ivo": Role.instructor}
SAME_PAPER = (
    "A secure base is a reliable presence from which the client explores.\n\n"
    "Attunement means noticing when the client withdraws.\n"
)
REVIEW = {
    "overall_stance": "mostly_agrees",
    "components": {key: "not_addressed" for key in COMPONENTS} | {"attunement": "agrees"},
    "evidence": [
        {"component": None, "text": "A secure base is a reliable presence"},
        {"component": "attunement", "text": "noticing when the client withdraws"},
    ],
    "rationale": "Agrees on attunement.",
    "suggestion": "Quote the source.",
    "submit": True,
}


@dataclass(frozen=True)
class Persona:
    name: str
    display_name: str
    email: str
    subject: str

    @property
    def canaries(self) -> tuple[str, ...]:
        return (self.display_name, self.email, self.subject)


def personas(*, random_names: bool) -> dict[str, Persona]:
    out = {}
    for name in (*STUDENTS, *STAFF, "zed"):
        tag = secrets.token_hex(5) if random_names else name
        out[name] = Persona(
            name,
            f"Canary{tag.capitalize()} Person",
            f"canary.{tag}@mail.test",
            f"subject-{tag}-x",
        )
    return out


Arrange = Callable[[async_sessionmaker[AsyncSession], dict[str, int]], Awaitable[None]]
REASON = "Checking a plagiarism report"
REVIEW_ROUTES = [*routes_reviews.page_routes(), *routes_reviews.api_routes()]


def route_of(method: str, path: str) -> tuple[str, str] | None:
    """The review route (name, method) a request reaches, or None for another area's."""
    scope = {"type": "http", "method": method, "path": path.split("?")[0]}
    for route in REVIEW_ROUTES:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return (route.name, method)
    return None


@dataclass
class Recording:
    responses: dict[str, list[tuple[str, bytes]]] = field(default_factory=lambda: defaultdict(list))
    covered: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    assignment_id: int = 0
    users: dict[str, int] = field(default_factory=dict)
    # (viewer, label) of each reveal that showed names, with its reason
    reveals: list[tuple[str, str]] = field(default_factory=list)

    def add(self, viewer: str, label: str, response: httpx.Response) -> httpx.Response:
        head = f"{response.status_code}\n" + "".join(
            f"{k}: {v}\n" for k, v in response.headers.items()
        )
        self.responses[viewer].append((label, head.encode() + b"\n" + response.content))
        return response


async def run(
    asgi: Any,
    sessions: async_sessionmaker[AsyncSession],
    *,
    people: dict[str, Persona],
    seed: str | None = None,
    uploads: dict[str, bytes] | None = None,
    texts: dict[str, str] | None = None,
    extra_paths: tuple[str, ...] = (),
    viewers: tuple[str, ...] | None = None,
    staff_writes: bool = True,
    arrange: Arrange | None = None,
    exemplars: tuple[str, str] | None = None,
) -> Recording:
    """The round, with every review route asked by every viewer at a stage where it means
    something (a refusal is recorded too). Students named in `uploads` send their paper as
    that file (multipart), the others `texts[name]` or SAME_PAPER; `extra_paths` ("{a}" for
    the assignment id, "{e}" for each exemplar) are read at the last stage.

    `viewers` limits who reads and tries every route (the differential tests compare
    students only); `staff_writes` runs the moderator's allocation changes (exclusions,
    moves, added reviewers, a reopen), which pick the same students in two worlds with the
    same allocation, and one stranger's task and review that every viewer tries to write
    to and rate (the owner's attempt succeeds); `arrange` rewrites the world right after
    allocation (staff then act on each paper as the paper its named student first
    submitted); `exemplars` names the
    student whose first-submitted paper, and the one whose first review, a moderator
    publishes as exemplars in the feedback phase."""
    crowd = People(asgi, sessions)
    rec = Recording()
    async with transaction(sessions) as session:
        for p in people.values():
            user = await identity.sign_in(
                session,
                identity=VerifiedIdentity(
                    issuer=TEST_ISSUER, subject=p.subject, name=p.display_name, email=p.email
                ),
            )
            crowd.users[p.name] = user
    root = await crowd.client("root", administrator=True)
    assert (
        await root.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    ).status_code == 201
    await root.post("/api/v1/cohorts", json={"slug": "other", "name": "Other"})
    c: dict[str, httpx.AsyncClient] = {}
    for name in STUDENTS:
        c[name] = await crowd.member(name, "psy", Role.student)
    for name, role in STAFF.items():
        c[name] = await crowd.member(name, "psy", role)
    c["zed"] = await crowd.member("zed", "other", Role.student)
    c["anonymous"] = client_for(asgi)
    ids = {name: user.id or 0 for name, user in crowd.users.items() if name != "root"}
    rec.users = ids
    async with transaction(sessions) as session:
        a = await import_review_assignment(session, slug="psy", k=2)
        if seed is not None:
            assignment = await session.get(Assignment, a)
            assert assignment is not None
            assignment.allocation_seed = seed
    rec.assignment_id = a
    base = f"/api/v1/assignments/{a}"
    who = tuple(viewers or c)
    w: dict[str, Any] = {"a": a}

    async def ask(viewer: str, label: str, method: str, path: str, **kw: Any) -> httpx.Response:
        if "events" in path:
            kw.setdefault("headers", {"Last-Event-ID": "0"})
        response = await c[viewer].request(method, path, **kw)
        rec.add(viewer, f"{label} {method} {path}", response)
        route = route_of(method, path)
        if route is not None:
            rec.covered[viewer].add(route)
        location = response.headers.get("location", "")
        if response.status_code == 303 and location.startswith("/"):
            rec.add(viewer, f"{label} {method} {path} -> {location}", await c[viewer].get(location))
        return response

    async def everyone(label: str, method: str, path: str, **kw: Any) -> None:
        """Every viewer tries it, and staff too (a staff member's attempt takes effect)."""
        fill = filler(w)
        for viewer in (*who, *(s for s in STAFF if s not in who)):
            await ask(viewer, label, method, fill(path), **fill(kw))

    async def tasks(**where: Any) -> list[ReviewTask]:
        async with transaction(sessions, write=False) as session:
            query = select(ReviewTask).where(
                ReviewTask.assignment_id == a, ReviewTask.status != TaskStatus.withdrawn
            )
            for key, value in where.items():
                query = query.where(getattr(ReviewTask, key) == value)
            # Not by id: tasks are created in random order (reviewer numbers are random).
            query = query.order_by(col(ReviewTask.paper_id), col(ReviewTask.reviewer_id))
            return list((await session.execute(query)).scalars())

    slots: dict[str, int] = {}  # the paper each student submitted (before any `arrange`)

    async def paper_of(name: str) -> Paper:
        async with transaction(sessions, write=False) as session:
            paper = await session.scalar(
                select(Paper).where(Paper.id == slots[name])
                if name in slots
                else select(Paper).where(Paper.assignment_id == a, Paper.author_id == ids[name])
            )
            assert paper is not None
            return paper

    async def look(stage: str) -> None:
        """Every review page and read each viewer can ask about, at this stage."""
        mine = {task.reviewer_id: task.public_id for task in reversed(await tasks())}
        probe = next(iter(mine.values()), None)  # someone's task: a stranger's request
        for viewer in who:
            for path in (
                f"{base}/paper",
                f"{base}/review-tasks",
                f"{base}/feedback",
                f"{base}/stance",
                f"{base}/allocations",
                f"{base}/audit",
                f"{base}/review-events?poll=1",
                f"/assignments/{a}",
                f"/assignments/{a}/paper",
                f"/assignments/{a}/review-tasks",
                f"/assignments/{a}/feedback",
                f"/assignments/{a}/review-dashboard",
                f"/assignments/{a}/review-conflicts",
            ):
                await ask(viewer, stage, "GET", path)
            own = [t.public_id for t in await tasks(reviewer_id=ids.get(viewer, -1))]
            for task in own or ([probe] if probe else []):
                for path in (f"/api/v1/review-tasks/{task}", f"/review-tasks/{task}"):
                    await ask(viewer, f"{stage} task", "GET", path)

    async def write_reviews(stage: str) -> None:
        """Each student submits each task they hold that is not submitted."""
        for name in STUDENTS:
            for task in await tasks(reviewer_id=ids[name]):
                if task.status is TaskStatus.submitted:
                    continue
                shown = (await c[name].get(f"/api/v1/review-tasks/{task.public_id}")).json()
                version = shown["review"]["version"] if shown.get("review") else 0
                saved = await ask(
                    name, stage, "PUT", f"/api/v1/review-tasks/{task.public_id}/review",
                    json=REVIEW | {"version": version},
                )  # fmt: skip
                assert saved.status_code == 200, saved.text

    # --- open, before papers: conflicts of interest, and the paper form ---------------------
    await look("draft")
    if staff_writes:
        pair = {"reviewer": ids["ada"], "author": ids["ben"]}
        await everyone("exclude", "POST", f"{base}/exclusions", json=pair)
        back = {"reviewer": str(ids["ben"]), "author": str(ids["ada"])}
        await everyone("exclude", "POST", "/assignments/{a}/review-conflicts",
                       data=back)  # fmt: skip
        # A pair made and lifted again (every viewer tries to lift it).
        spare = {"reviewer": ids["chen"], "author": ids["dara"]}
        assert (await c["mona"].post(f"{base}/exclusions", json=spare)).status_code == 204
        async with transaction(sessions, write=False) as session:
            w["x"] = await session.scalar(
                select(ReviewExclusion.id).where(
                    ReviewExclusion.assignment_id == a, ReviewExclusion.reviewer_id == ids["chen"]
                )
            )
        await everyone("lift", "POST", "/assignments/{a}/review-conflicts/lift",
                       data={"exclusion": "{x}"})  # fmt: skip
    text_of = {name: (texts or {}).get(name, SAME_PAPER) for name in STUDENTS}
    for viewer in who:
        body = text_of.get(viewer, SAME_PAPER)
        await ask(viewer, "draft", "POST", f"/assignments/{a}/paper",
                  data={"body": body, "action": "save"})  # fmt: skip
        if viewer not in STUDENTS:
            await ask(viewer, "draft", "PUT", f"{base}/paper", json={"body": body})
    for name in STUDENTS:
        if uploads and name in uploads:
            sent = await ask(
                name, "submit", "PUT", f"{base}/paper",
                files={"file": ("paper", uploads[name], "application/octet-stream")},
                data={"submit": "true"},
            )  # fmt: skip
        else:
            sent = await ask(name, "submit", "PUT", f"{base}/paper",
                             json={"body": text_of[name], "submit": True})  # fmt: skip
        assert sent.status_code == 200, sent.text
        slots[name] = (await paper_of(name)).id or 0
    await look("open")

    # --- review: the phase form allocates; staff change the allocation -------------------
    await everyone("phase", "POST", "/assignments/{a}/phase",
                   data={"phase": "review", "confirmed": "yes"})  # fmt: skip
    assert len(await tasks()) == 2 * len(STUDENTS)
    if arrange is not None:
        await arrange(sessions, ids)
    await everyone("allocate", "POST", "/assignments/{a}/allocate")
    await everyone("allocate", "POST", f"{base}/allocations")
    if staff_writes:
        # Ada's paper has one eligible reviewer left (Ben is kept apart): moving one of its
        # tasks, then adding a reviewer, picks the same student in any two worlds.
        ada_paper = await paper_of("ada")
        w["t"] = (await tasks(paper_id=ada_paper.id))[0].public_id
        w["p"] = ada_paper.public_id
        await everyone("move", "POST", "/assignments/{a}/review-dashboard/move",
                       data={"task": "{t}"})  # fmt: skip
        await everyone("assign", "POST", "/assignments/{a}/review-dashboard/assign",
                       data={"paper": "{p}"})  # fmt: skip
        # Named by staff (with a reason, audited): the first eligible student by id.
        chen_paper = await paper_of("chen")
        taken = {t.reviewer_id for t in await tasks(paper_id=chen_paper.id)}
        named = min(set(ids[s] for s in STUDENTS) - taken - {ids["chen"], ids["dara"]})
        await everyone("assign", "POST", f"{base}/allocations/manual",
                       json={"paper": chen_paper.public_id, "reviewer": named,
                             "reason": REASON})  # fmt: skip
        dara_tasks = await tasks(paper_id=(await paper_of("dara")).id)
        taken = {t.reviewer_id for t in dara_tasks}
        target = min(set(ids[s] for s in STUDENTS) - taken - {ids["dara"]})
        w["m"] = dara_tasks[0].public_id
        await everyone("move", "POST", "/api/v1/review-tasks/{m}/move",
                       json={"reviewer": target, "reason": REASON})  # fmt: skip
    await look("review")
    probe = (await tasks())[0].public_id
    if staff_writes:  # whose task it is depends on the allocation
        await everyone("save", "PUT", f"/api/v1/review-tasks/{probe}/review",
                       json=REVIEW | {"version": 0, "submit": False})  # fmt: skip
    await write_reviews("review")
    await look("reviewed")
    if staff_writes:
        # A submitted review reopened (then submitted again by its reviewer).
        w["r"] = (await tasks(paper_id=(await paper_of("eli")).id))[0].public_id
        await everyone("reopen", "POST", "/api/v1/review-tasks/{r}/reopen")
        await write_reviews("resubmit")
    # Reveals: each staff member's own, with a reason (audited); students are refused.
    code = (await paper_of("chen")).code
    await everyone("reveal", "POST", "/assignments/{a}/reveal",
                   data={"paper": code, "target": "author", "reason": REASON})  # fmt: skip
    await everyone("reveal", "POST", f"{base}/reveals",
                   json={"paper": code, "target": "reviewers", "reason": REASON})  # fmt: skip
    for viewer, responses in rec.responses.items():
        for label, blob in responses:
            if label.startswith("reveal ") and blob.startswith((b"200", b"201")):
                rec.reveals.append((viewer, label))

    # --- feedback: ratings, exemplars -----------------------------------------------------
    await everyone("phase", "PUT", f"{base}/phase", json={"phase": "feedback"})
    for name in STUDENTS:
        for review in (await c[name].get(f"{base}/feedback")).json()["reviews"]:
            rated = await ask(name, "rate", "POST", f"/api/v1/reviews/{review['id']}/rating",
                              json={"rating": 4, "comment": "ok"})  # fmt: skip
            assert rated.status_code == 200, rated.text
    async with transaction(sessions, write=False) as session:
        w["v"] = await session.scalar(
            select(Review.public_id)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .where(ReviewTask.assignment_id == a)
            .order_by(col(Review.id))
        )
    if staff_writes:  # whose paper the review is of depends on the allocation
        await everyone("rate", "POST", "/reviews/{v}/rating",
                       data={"rating": "4", "comment": "ok",
                             "back": f"/assignments/{a}/feedback"})  # fmt: skip
        # The same rating again: task lists are sorted by random paper code, so a different
        # one would move between worlds.
        await everyone("rate", "POST", "/api/v1/reviews/{v}/rating",
                       json={"rating": 4, "comment": "ok"})  # fmt: skip
    made_exemplars: list[str] = []
    if exemplars is not None:
        paper = await paper_of(exemplars[0])
        async with transaction(sessions, write=False) as session:
            review = await session.scalar(
                select(Review.public_id)
                .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
                .where(ReviewTask.assignment_id == a, ReviewTask.reviewer_id == ids[exemplars[1]])
                .order_by(col(Review.id))
            )
        for kind, source in (("paper", paper.public_id), ("review", review)):
            made = await c["mona"].post(
                f"{base}/exemplars",
                json={"kind": kind, "source": source, "status": "published", "note": "Good."},
            )
            assert made.status_code == 201, made.text
            made_exemplars.append(made.json()["id"])
    await look("feedback")
    for viewer in who:
        for extra in extra_paths:
            for e in made_exemplars if "{e}" in extra else [""]:
                await ask(viewer, "extra", "GET", extra.format(a=a, e=e))
    await crowd.close()
    await c["anonymous"].aclose()
    return rec


async def random_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Every opaque random id, paper code and CSRF token in the database (to normalize)."""
    async with transaction(sessions, write=False) as session:
        found: set[str] = set()
        for column in (
            ReviewTask.public_id,
            Review.public_id,
            Paper.public_id,
            Paper.code,
            Exemplar.public_id,
            WebSession.csrf_token,
        ):
            found.update((await session.execute(select(column))).scalars())
        return found


TIME = re.compile(rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
DROP_HEADERS = re.compile(rb"^(date|set-cookie|content-length|content-security-policy): .*$", re.M)


def normalize(blob: bytes, *, ids: set[str], tokens: set[str]) -> bytes:
    out = DROP_HEADERS.sub(b"", blob)
    out = TIME.sub(b"<TIME>", out)
    # Times as people read them ("Sun 29 Nov 17:49 UTC", "due in 2 days, …"): two worlds run
    # minutes apart.
    out = re.sub(rb"(<time[^>]*>)[^<]*(</time>)", rb"\1<T>\2", out)
    for value in sorted(ids | tokens, key=len, reverse=True):
        out = out.replace(value.encode(), b"<ID>")
    out = re.sub(rb'nonce="[^"]+"', b'nonce="<NONCE>"', out)
    # SSE event ids are database sequence numbers shared by every channel.
    out = re.sub(rb"(?m)^id: \d+$", b"id: <N>", out)
    return out
