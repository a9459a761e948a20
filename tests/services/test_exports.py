"""Exports: who may take them, what they contain, and that cells cannot run as formulas."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services import discussions, exports
from services.errors import NotFound
from services.policy import Actor
from tests.exemplar_support import ExemplarWorld, build

HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR"]


@pytest.fixture
async def world(session: AsyncSession) -> ExemplarWorld:
    w = await build(session)
    for i, text in enumerate(HOSTILE):
        await discussions.create_thread(
            session, actor=w.actors["ben"], question_id=w.question_ids[1],
            title=f"{text} title {i}", body=f"{text} body",
        )  # fmt: skip
    await discussions.create_thread(
        session, actor=w.actors["ada"], question_id=w.question_ids[2],
        title="Quiet thoughts", body="Posted anonymously.", anonymous=True,
    )  # fmt: skip
    return w


async def take(session: AsyncSession, w: ExemplarWorld, kind: str, *, who: str = "mona",
               view: str = "moderator", fmt: str = "csv") -> str:  # fmt: skip
    actor = Actor.system() if who == "system" else w.actors[who]
    plan = await exports.plan(
        session, actor=actor, assignment_id=w.assignment_id, kind=kind, view=view
    )
    encode = exports.as_csv if fmt == "csv" else exports.as_json
    chunks = [c async for c in encode(plan.columns, exports.rows(session, plan))]
    return b"".join(chunks).decode()


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_cells_cannot_run_as_formulas(session: AsyncSession, world: ExemplarWorld) -> None:
    rows = table(await take(session, world, "posts"))
    cells = [value for row in rows for value in row.values()]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    titles = {row["thread_title"] for row in rows}
    assert '\'=HYPERLINK("http://evil","x") title 0' in titles
    # Leading tabs and CRs are trimmed by the discussion service on the way in; the
    # neutralizer still covers them for any other source.
    assert exports.neutralize("\tTAB") == "'\tTAB" and exports.neutralize("\rCR") == "'\rCR"
    assert exports.neutralize("plain") == "plain" and exports.neutralize(None) == ""


async def test_student_and_moderator_views_differ_exactly_in_identity_columns(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    moderator = table(await take(session, world, "posts"))
    student = table(await take(session, world, "posts", view="student"))
    assert len(moderator) == len(student) == 8
    identity = set(exports.IDENTITY_COLUMNS["posts"])
    for m, s in zip(moderator, student, strict=True):
        assert {k: v for k, v in m.items() if k not in identity} == {
            k: v for k, v in s.items() if k not in identity
        }
    anonymous = [s for s in student if s["anonymous"] == "true"]
    assert [a["author"].startswith("Anonymous ") for a in anonymous] == [True]
    assert "Ada Canary" not in json.dumps(anonymous)
    assert all(s["author_email"] == "" for s in student)
    assert any(m["author"] == "Ada Canary" and m["anonymous"] == "true" for m in moderator)


async def test_only_staff_export_and_only_instructors_export_the_audit_log(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    for who in ("ada", "zed"):
        for kind in exports.KINDS:
            with pytest.raises(NotFound):
                await take(session, world, kind, who=who)
    with pytest.raises(NotFound):
        await take(session, world, "audit", who="mona")
    audit = table(await take(session, world, "audit", who="ivo"))
    assert {row["action"] for row in audit} >= {"member.grant"}
    assert all(len(row["hash"]) == 64 for row in audit)


async def test_participation_counts_each_students_work(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    rows = {row["name"]: row for row in table(await take(session, world, "participation"))}
    assert set(rows) == {"Ada Canary", "Ben Canary"}  # students of this cohort only
    assert rows["Ben Canary"]["threads"] == "6" and rows["Ben Canary"]["posts q2"] == "6"
    assert rows["Ada Canary"]["threads"] == "2"
    assert rows["Ben Canary"]["paper_submitted_at"] != ""
    assert rows["Ada Canary"]["paper_submitted_at"] == ""


async def test_json_export_is_valid_json_with_the_same_rows(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    as_csv = table(await take(session, world, "posts"))
    as_json = json.loads(await take(session, world, "posts", fmt="json"))
    assert as_json == as_csv


async def test_the_reviews_export_names_nobody(session: AsyncSession, world: ExemplarWorld) -> None:
    text = await take(session, world, "reviews", who="system")
    header = next(csv.reader(io.StringIO(text)))
    assert header[:4] == ["paper", "reviewer", "status", "overall_stance"]
    assert "stance: The therapist as a secure base" in header
    assert "Canary" not in text
