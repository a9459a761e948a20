"""One full review round driven through HTTP, recording every byte each viewer receives
(status line, headers and body of JSON, HTML and SSE responses). Used by the canary scan
and the differential test in test_review_privacy.py."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import identity
from services.db import transaction
from services.identity import VerifiedIdentity
from services.models import Assignment, Paper, Review, ReviewTask, Role, WebSession
from tests.conftest import TEST_ISSUER, People, client_for
from tests.review_support import COMPONENTS, import_review_assignment

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


@dataclass
class Recording:
    responses: dict[str, list[tuple[str, bytes]]] = field(default_factory=lambda: defaultdict(list))
    assignment_id: int = 0

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
    extra_paths: tuple[str, ...] = (),
) -> Recording:
    """The round; students named in `uploads` send their paper as that file (multipart),
    and `extra_paths` ("{a}" for the assignment id) are looked at too at every stage."""
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
    async with transaction(sessions) as session:
        a = await import_review_assignment(session, slug="psy", k=2)
        if seed is not None:
            assignment = await session.get(Assignment, a)
            assert assignment is not None
            assignment.allocation_seed = seed
    rec.assignment_id = a
    base = f"/api/v1/assignments/{a}"

    async def look(stage: str) -> None:
        """Every review route each viewer can ask about, at this stage."""
        for viewer, client in c.items():
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
                *(extra.format(a=a) for extra in extra_paths),
            ):
                headers = {"Last-Event-ID": "0"} if "events" in path else {}
                rec.add(viewer, f"{stage} GET {path}", await client.get(path, headers=headers))
            listed = await client.get(f"{base}/review-tasks")
            if listed.status_code == 200:
                for task in listed.json():
                    for path in (
                        f"/api/v1/review-tasks/{task['id']}",
                        f"/review-tasks/{task['id']}",
                    ):
                        rec.add(viewer, f"{stage} GET task", await client.get(path))

    await look("draft")
    for name in STUDENTS:
        if uploads and name in uploads:
            sent = await c[name].put(
                f"{base}/paper",
                files={"file": ("paper", uploads[name], "application/octet-stream")},
                data={"submit": "true"},
            )
            assert sent.status_code == 200, sent.text
        else:
            sent = await c[name].put(f"{base}/paper", json={"body": SAME_PAPER, "submit": True})
        rec.add(name, "PUT paper", sent)
    await look("open")
    rec.add("ivo", "PUT phase", await c["ivo"].put(f"{base}/phase", json={"phase": "review"}))
    await look("review")
    for name in STUDENTS:
        for task in (await c[name].get(f"{base}/review-tasks")).json():
            saved = await c[name].put(
                f"/api/v1/review-tasks/{task['id']}/review", json=REVIEW | {"version": 0}
            )
            assert saved.status_code == 200, saved.text
            rec.add(name, "PUT review", saved)
    await look("reviewed")
    rec.add("ivo", "PUT phase", await c["ivo"].put(f"{base}/phase", json={"phase": "feedback"}))
    for name in STUDENTS:
        for review in (await c[name].get(f"{base}/feedback")).json()["reviews"]:
            rec.add(
                name,
                "POST rating",
                await c[name].post(
                    f"/api/v1/reviews/{review['id']}/rating", json={"rating": 4, "comment": "ok"}
                ),
            )
    await look("feedback")
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
            WebSession.csrf_token,
        ):
            found.update((await session.execute(select(column))).scalars())
        return found


TIME = re.compile(rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
DROP_HEADERS = re.compile(rb"^(date|set-cookie|content-length|content-security-policy): .*$", re.M)


def normalize(blob: bytes, *, ids: set[str], tokens: set[str]) -> bytes:
    out = DROP_HEADERS.sub(b"", blob)
    out = TIME.sub(b"<TIME>", out)
    for value in sorted(ids | tokens, key=len, reverse=True):
        out = out.replace(value.encode(), b"<ID>")
    out = re.sub(rb'nonce="[^"]+"', b'nonce="<NONCE>"', out)
    # SSE event ids are database sequence numbers shared by every channel.
    out = re.sub(rb"(?m)^id: \d+$", b"id: <N>", out)
    return out
