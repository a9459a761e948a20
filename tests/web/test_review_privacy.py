"""The anonymity promise of peer review, tested the two general ways (SECURITY.md):

- Canary scan: everyone gets a unique random name, email and subject; every byte each
  viewer receives over every review route, through a whole round, is recorded; no viewer
  may receive a canary of someone they may not identify (reveals excepted, for staff).
- Differential: two worlds that differ only in who reviews whom; everything each student
  receives is byte-identical once CSRF tokens, nonces, times and random ids are normalized.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services.db import make_engine, make_sessionmaker, transaction
from services.models import Paper, ReviewTask
from tests.conftest import make_settings
from tests.web import review_linkage as linkage
from tests.web import review_scenario
from tests.web.canary_support import route_names
from tests.web.review_linkage import PSEUDONYM
from tests.web.review_scenario import STUDENTS, normalize, personas, random_ids
from web import routes_reviews
from web.app import create_app

STAFF = {"mona", "ivo"}


async def test_canary_scan_over_every_review_route(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    people = personas(random_names=True)
    rec = await review_scenario.run(asgi, sessions, people=people)
    # Every route of the area, pages and API, reads and writes, by every viewer.
    for viewer in (*STUDENTS, *STAFF, "zed", "anonymous"):
        missing = route_names(routes_reviews) - rec.covered[viewer]
        assert not missing, f"{viewer} never requested {sorted(missing)}"
    students = set(STUDENTS)
    checked = 0
    named_for_staff: dict[str, set[str]] = {"mona": set(), "ivo": set()}
    for viewer, responses in rec.responses.items():
        for label, blob in responses:
            checked += 1
            for person in people.values():
                if person.name == viewer:
                    continue  # one's own name may appear ("Signed in as ...")
                if viewer == "ivo" and person.name == "mona" and "/audit" in label:
                    continue  # instructors read who did what in the audit log
                if viewer in STAFF and any(c.encode() in blob for c in person.canaries):
                    named_for_staff[viewer].add(label)
                    continue
                for canary in person.canaries:
                    assert canary.encode() not in blob, (viewer, label, person.name)
    assert checked > 800
    # Staff learn a student's name only from a reveal they made (with a reason, audited),
    # or on the conflicts-of-interest page, which names students and never a paper.
    made = {viewer: {label for v, label in rec.reveals if v == viewer} for viewer in STAFF}
    for viewer, labels in named_for_staff.items():
        assert made[viewer], f"{viewer}'s reveals were refused"
        assert made[viewer] <= labels, "a reveal should show the names (positive control)"
        for label in labels - made[viewer]:
            assert "review-conflicts" in label, (viewer, label)
            blob = dict(rec.responses[viewer])[label]
            assert not PSEUDONYM.search(blob), (viewer, label, "a name next to a pseudonym")
    audit = [b for label, b in rec.responses["ivo"] if label.startswith("feedback GET /api")
             and label.endswith("/audit")]  # fmt: skip
    events = json.loads(audit[0].split(b"\n\n", 1)[1])
    reveals = [e for e in events if e["action"].startswith("review.reveal.")]
    assert len(reveals) == len(rec.reveals) == 4, reveals  # each reveal by each staff member
    assert all(e["reason"] == review_scenario.REASON for e in reveals)
    # The recording covered real content, not just refusals.
    ada = b"".join(blob for _, blob in rec.responses["ada"])
    assert b"Reviewer 1" in ada and b'<mark class="evidence">' in ada and b"Paper " in ada
    mona = b"".join(blob for _, blob in rec.responses["mona"])
    assert b"Krippendorff" in mona and b"event: completion" in mona
    assert students <= set(rec.responses)
    found = await linkage.check(sessions, rec, people)
    assert found.seen > 50, "the linkage scan should have seen pseudonyms"


@pytest.fixture
async def two_worlds(
    sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[list[tuple[Any, async_sessionmaker[AsyncSession]]]]:
    worlds = []
    managers = []
    engines = []
    for name in ("left", "right"):
        path = tmp_path / f"{name}.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite+aiosqlite:///{path}"
        engine = make_engine(url)
        engines.append(engine)
        manager = LifespanManager(create_app(make_settings(url)))
        await manager.__aenter__()
        managers.append(manager)
        worlds.append((manager.app, make_sessionmaker(engine)))
    yield worlds
    for manager in managers:
        await manager.__aexit__(None, None, None)
    for engine in engines:
        await engine.dispose()


async def pairs(sessions: async_sessionmaker[AsyncSession]) -> set[tuple[int, int]]:
    async with transaction(sessions, write=False) as session:
        rows = await session.execute(
            select(Paper.author_id, ReviewTask.reviewer_id).join(
                Paper,
                Paper.id == ReviewTask.paper_id,  # type: ignore[arg-type]
            )
        )
        return {(a, r) for a, r in rows.all()}


async def test_students_cannot_tell_who_reviews_whom(
    two_worlds: list[tuple[Any, async_sessionmaker[AsyncSession]]],
) -> None:
    people = personas(random_names=False)
    (left_app, left_db), (right_app, right_db) = two_worlds
    # Students read and try every route; the staff's allocation changes are left out (they
    # give a task to whoever is free, which differs with the allocation by design).
    common: dict[str, Any] = {"people": people, "viewers": STUDENTS, "staff_writes": False}
    left = await review_scenario.run(left_app, left_db, seed="left-seed", **common)
    right = await review_scenario.run(right_app, right_db, seed="right-seed", **common)
    assert await pairs(left_db) != await pairs(right_db), (
        "the worlds must differ in who reviews whom"
    )
    left_ids, right_ids = await random_ids(left_db), await random_ids(right_db)
    for student in STUDENTS:
        seen_left = [
            (label, normalize(b, ids=left_ids, tokens=set()))
            for label, b in left.responses[student]
        ]
        seen_right = [
            (label, normalize(b, ids=right_ids, tokens=set()))
            for label, b in right.responses[student]
        ]
        assert len(seen_left) == len(seen_right), student
        for (label, a), (_, b) in zip(seen_left, seen_right, strict=True):
            assert a == b, (
                student,
                label,
                a.decode(errors="replace")[:2000],
                b.decode(errors="replace")[:2000],
            )


def test_the_linkage_scan_flags_one_persons_two_pseudonyms() -> None:
    """The scan itself can fail: Ben's paper code next to his number on Ada's paper."""
    world = linkage.World(
        author={"AAAA": 1, "BBBB": 2},
        own={1: "AAAA", 2: "BBBB"},
        reviewer={("AAAA", 1): 2, ("BBBB", 1): 3},
    )
    ben = personas(random_names=True)["ben"]
    _, problems = linkage.scan(world, 4, "x", b"Paper AAAA: Reviewer 1. Paper BBBB", {})
    assert problems and "one person" in problems[0]
    _, problems = linkage.scan(world, 1, "/feedback", b"Reviewer 1 " + ben.email.encode(), {2: ben})
    assert problems and "named next to" in problems[0]
    _, problems = linkage.scan(world, 2, "x", b"Paper AAAA, you are Reviewer 1/2/3", {})
    assert problems == []  # one's own number, and the notice, are nobody's label
