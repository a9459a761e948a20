"""Differential tests of the review area's other anonymous relations (issue 10), on the
pattern of test_review_privacy's who-reviews-whom: two worlds that differ in one hidden
fact, one full review round each (every review route, the staff's allocation changes,
reveals, ratings, exemplars), and everything a student who may not know the fact receives
— JSON, pages, SSE, gallery, notifications, search, the exports a student may take — is
byte-identical once random ids, codes, tokens and times are normalized.

- Who wrote a paper: Ada and Ben wrote different texts; in the right world each text is
  the other's (the papers keep their reviewers, and the text of Ada's is an exemplar).
- Whose work an exemplar is: a moderator publishes Ada's paper and review, or Ben's.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.db import make_engine, make_sessionmaker, transaction
from services.models import Paper, ReviewTask
from tests.conftest import BACKENDS, make_settings, migrated_worlds
from tests.web import review_scenario
from tests.web.review_scenario import SAME_PAPER, STUDENTS, Recording, normalize, personas

Worlds = list[tuple[Any, async_sessionmaker[AsyncSession]]]
EXTRA = (
    "/assignments/{a}/exemplars",
    "/api/v1/assignments/{a}/exemplars",
    "/api/v1/exemplars/{e}",
    "/api/v1/notifications",
    "/notifications",
    "/api/v1/search?q=secure",
    "/api/v1/assignments/{a}/exports/posts.json",
    "/api/v1/assignments/{a}/exports/posts.csv",
)
TEXT = {
    "ada": SAME_PAPER + "\nMy clients test the frame before they trust it.\n",
    "ben": SAME_PAPER + "\nSilence in a session can be a form of holding.\n",
}


@pytest.fixture(params=BACKENDS)
async def two_worlds(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Worlds]:
    """Two empty migrated databases (SQLite files, or PostgreSQL databases), each with its
    app running."""
    async for urls in migrated_worlds(request, tmp_path, backend=request.param, prefix="diff"):
        made = []
        for url in urls:
            engine = make_engine(url)
            manager = LifespanManager(create_app_for(url))
            await manager.__aenter__()
            made.append((manager, engine))
        yield [(m.app, make_sessionmaker(e)) for m, e in made]
        for manager, engine in made:
            await manager.__aexit__(None, None, None)
            await engine.dispose()


def create_app_for(url: str) -> Any:
    from web.app import create_app

    return create_app(make_settings(url))


async def opaque(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    return await review_scenario.random_ids(sessions)


def assert_same(
    left: Recording, right: Recording, ids: tuple[set[str], set[str]], students: tuple[str, ...]
) -> None:
    for student in students:
        one = [(normalized(label.encode(), ids[0]), normalized(b, ids[0]))
               for label, b in left.responses[student]]  # fmt: skip
        two = [(normalized(label.encode(), ids[1]), normalized(b, ids[1]))
               for label, b in right.responses[student]]  # fmt: skip
        labels = difflib.unified_diff([x.decode() for x, _ in one], [x.decode() for x, _ in two],
                                      lineterm="", n=1)  # fmt: skip
        assert [x for x, _ in one] == [x for x, _ in two], "\n".join(list(labels)[:40])
        for (label, a), (_, b) in zip(one, two, strict=True):
            if a != b:
                diff = difflib.unified_diff(
                    a.decode(errors="replace").splitlines(),
                    b.decode(errors="replace").splitlines(),
                    lineterm="",
                    n=1,
                )
                pytest.fail(f"{student}: {label.decode()} differs:\n" + "\n".join(list(diff)[:40]))


NUMBERED = re.compile(rb'Reviewer \d+(?!/)|"reviewer_number":\s*\d+')


def normalized(blob: bytes, ids: set[str]) -> bytes:
    out = normalize(blob, ids=ids, tokens=set())
    # Reviewer numbers are drawn at random per paper (and a moved task keeps its number):
    # keep which labels are equal, in the order they appear, not the digits.
    order: dict[bytes, int] = {}
    out = NUMBERED.sub(
        lambda m: b"<REVIEWER%d>" % order.setdefault(m.group().split()[-1], len(order)), out
    )
    out = out.replace(b"'<ID>", b"<ID>")  # an id starting with "-" in a CSV cell
    return re.sub(rb"(?m)^etag: .*$", b"", out)


async def swap_authors(sessions: async_sessionmaker[AsyncSession], ids: dict[str, int]) -> None:
    """Ada's paper becomes Ben's and Ben's Ada's; each keeps its reviewers (who are neither
    of them: the scenario keeps Ada and Ben apart)."""
    async with transaction(sessions) as session:
        papers = {
            author: pid
            for pid, author in (
                await session.execute(
                    select(Paper.id, Paper.author_id).where(
                        col(Paper.author_id).in_([ids["ada"], ids["ben"]])
                    )
                )
            ).all()
        }
        reviewers = set(
            (
                await session.execute(
                    select(ReviewTask.reviewer_id).where(
                        col(ReviewTask.paper_id).in_(list(papers.values()))
                    )
                )
            ).scalars()
        )
        assert not reviewers & {ids["ada"], ids["ben"]}, "the exclusions keep them apart"
        parked = ids["zed"]  # not in the cohort: a free author id for the swap
        for pid, author in ((papers[ids["ada"]], parked), (papers[ids["ben"]], ids["ada"]),
                            (papers[ids["ada"]], ids["ben"])):  # fmt: skip
            await session.execute(
                update(Paper).where(col(Paper.id) == pid).values(author_id=author)
            )
            await session.flush()


async def test_students_cannot_tell_who_wrote_a_paper(two_worlds: Worlds) -> None:
    people = personas(random_names=False)
    (left_app, left_db), (right_app, right_db) = two_worlds
    common: dict[str, Any] = {
        "people": people, "seed": "same-seed", "texts": TEXT, "viewers": STUDENTS,
        "extra_paths": EXTRA, "exemplars": ("ada", "eli"),
    }  # fmt: skip
    left = await review_scenario.run(left_app, left_db, **common)
    right = await review_scenario.run(right_app, right_db, arrange=swap_authors, **common)
    async with transaction(right_db, write=False) as session:
        ben_wrote = await session.scalar(
            select(Paper.id).where(Paper.author_id == right.users["ben"])
        )
    async with transaction(left_db, write=False) as session:
        ada_wrote = await session.scalar(
            select(Paper.id).where(Paper.author_id == left.users["ada"])
        )
    assert ada_wrote == ben_wrote, "the worlds must differ in who wrote the same paper"
    assert_same(
        left, right, (await opaque(left_db), await opaque(right_db)), ("chen", "dara", "eli")
    )
    # Real content was compared: a reviewer read the text, the gallery showed it.
    seen = b"".join(b for _, b in left.responses["chen"] + left.responses["dara"])
    assert b"test the frame" in seen and b"holding" in seen


async def test_students_cannot_tell_whose_work_an_exemplar_is(two_worlds: Worlds) -> None:
    people = personas(random_names=False)
    (left_app, left_db), (right_app, right_db) = two_worlds
    common: dict[str, Any] = {
        "people": people, "seed": "same-seed", "viewers": STUDENTS, "extra_paths": EXTRA,
    }  # fmt: skip
    left = await review_scenario.run(left_app, left_db, exemplars=("ada", "ada"), **common)
    right = await review_scenario.run(right_app, right_db, exemplars=("ben", "ben"), **common)
    assert_same(
        left, right, (await opaque(left_db), await opaque(right_db)), ("chen", "dara", "eli")
    )
    gallery = b"".join(b for label, b in left.responses["chen"] if "exemplars" in label)
    assert b"good." in gallery.lower() and gallery.count(b"200\n") >= 4
