"""Exports: who may take them, what they contain, and that cells cannot run as formulas.

A student's posts export must be the discussion exactly as their thread pages show it: the
same posts (post first, hidden and deleted posts) under the same names."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services import (
    discussions,
    exports,
    identity,
    moderation,
    policy,
    question_threads,
    thread_reading,
)
from services.errors import NotFound
from services.models import FlagReason, Role
from services.policy import Actor
from tests.exemplar_support import ISSUER, ExemplarWorld, build

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
               view: str | None = "moderator", fmt: str = "csv") -> str:  # fmt: skip
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


async def test_students_take_only_the_posts_and_only_instructors_the_audit_log(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    for kind in exports.KINDS:
        with pytest.raises(NotFound):
            await take(session, world, kind, who="zed")  # a student of another cohort
        if kind != "posts":
            with pytest.raises(NotFound):
                await take(session, world, kind, who="ada")
    assert table(await take(session, world, "posts", who="ada"))
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
    assert header[:3] == ["paper", "reviewer", "overall_stance"]
    assert "stance: The therapist as a secure base" in header
    assert "Canary" not in text


async def test_the_reviews_export_cannot_be_joined_with_the_participation_sheet(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    # Each column a per-review row shares with a per-person row (a status, a time, a rating)
    # would let staff match a reviewer's pattern to their name.
    reviews = next(csv.reader(io.StringIO(await take(session, world, "reviews"))))
    participation = next(csv.reader(io.StringIO(await take(session, world, "participation"))))
    joinable = ("status", "submitted", "helpful", "rating", "late", "_at")
    assert [c for c in reviews if any(j in c for j in joinable)] == []
    assert any("helpful" in c for c in participation)  # graders keep it, by name


# --- the student view: the discussion as the student's thread pages show it ----------------


async def join(session: AsyncSession, w: ExemplarWorld, name: str) -> Actor:
    """One more student of psy, with a canary name, email and subject nobody else has."""
    token = secrets.token_hex(5)
    subject = f"s-{name}-{token}"
    await identity.grant(
        session, actor=Actor.system(), issuer=ISSUER, subject=subject, role=Role.student,
        cohort_slug="psy",
    )  # fmt: skip
    user = await identity.sign_in(
        session,
        identity=identity.VerifiedIdentity(
            issuer=ISSUER, subject=subject, name=f"{name.title()} cn{token}",
            email=f"cn{token}@x.test",
        ),
    )  # fmt: skip
    assert user.id is not None
    w.names[name] = user.display_name
    w.actors[name] = await policy.load_actor(session, user_id=user.id, is_administrator=False)
    return w.actors[name]


def canaries(w: ExemplarWorld, name: str) -> list[str]:
    token = w.names[name].split(" cn")[1]
    return [w.names[name], f"cn{token}", f"s-{name}-{token}"]


async def as_the_pages_show(session: AsyncSession, w: ExemplarWorld, who: str) -> dict[str, str]:
    """Every post `who` can read through the question and thread pages, with the author name
    those pages show ("" for a deleted post's placeholder)."""
    actor = w.actors[who]
    shown: dict[str, str] = {}
    for question_id in w.question_ids:
        listing = await question_threads.question_discussion(
            session, actor=actor, question_id=question_id
        )
        for summary in listing.threads:
            thread = await thread_reading.read_thread(
                session, actor=actor, thread_id=summary.id, per_page=200
            )
            for post in [thread["opening"], *thread["posts"]]:
                author = post["author"]
                if post["hidden"] and not (author and author["is_you"]):
                    continue  # a placeholder only: the post itself is not theirs to read
                shown[exports.neutralize(post["id"])] = author["name"] if author else ""
    return shown


async def student_rows(session: AsyncSession, w: ExemplarWorld, who: str) -> list[dict[str, str]]:
    rows = table(await take(session, w, "posts", who=who, view=None))
    assert {r["post"]: r["author"] for r in rows} == await as_the_pages_show(session, w, who)
    assert len({r["post"] for r in rows}) == len(rows)
    return rows


async def test_a_student_gets_aliases_and_never_a_classmates_name(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    w = world
    cy = await join(session, w, "cy")
    mine = await discussions.create_thread(
        session, actor=cy, question_id=w.question_ids[0], title="Unsigned", body="Quietly.",
        anonymous=True,
    )  # fmt: skip
    await discussions.reply(
        session, actor=cy, thread_id=w.thread.public_id, body="Agreed.", anonymous=True
    )
    for fmt in ("csv", "json"):
        text = await take(session, w, "posts", who="ben", view=None, fmt=fmt)
        for canary in [*canaries(w, "cy"), "ada@x.test", "s-ada"]:
            assert canary not in text
    rows = await student_rows(session, w, "ben")
    by_cy = [r for r in rows if r["thread_title"] == "Unsigned" or r["body"] == "Agreed."]
    assert len(by_cy) == 2 and len({r["author"] for r in by_cy}) == 1
    assert by_cy[0]["author"].startswith("Anonymous ")
    quiet = next(r for r in rows if r["thread_title"] == "Quiet thoughts")  # ada, anonymous
    assert quiet["author"].startswith("Anonymous ") and quiet["author"] != by_cy[0]["author"]
    assert {r["author"] for r in rows if r["thread_title"].endswith(("title 0", "title 5"))} == {
        "Ben Canary"
    }
    assert all(r["author_email"] == "" for r in rows)
    for r in rows:  # times to the minute, as the pages give them
        assert datetime.fromisoformat(r["created_at"]).second == 0
    # Their own anonymous posts carry their own name, as the thread page shows them.
    cy_rows = await student_rows(session, w, "cy")
    assert {r["author"] for r in cy_rows if r["thread"] == mine.public_id} == {w.names["cy"]}
    assert [r["author"] for r in cy_rows if r["thread_title"] == "Quiet thoughts"] == [
        quiet["author"]
    ]


async def test_a_post_first_question_stays_closed_until_the_student_posts_there(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    w = world
    cy = await join(session, w, "cy")
    q4 = w.question_ids[3]
    await question_threads.set_post_first(
        session, actor=w.actors["mona"], question_id=q4, post_first=True
    )
    await discussions.create_thread(
        session, actor=cy, question_id=q4, title="First in", body="Mine.", anonymous=True
    )
    await discussions.create_thread(
        session, actor=w.actors["ada"], question_id=q4, title="Second in", body="Also mine."
    )
    before = await student_rows(session, w, "ben")
    assert not [r for r in before if r["question"] == "4"]
    staff_student_view = table(await take(session, w, "posts", view="student"))
    assert {r["thread_title"] for r in staff_student_view if r["question"] == "4"} == {
        "First in",
        "Second in",
    }

    await discussions.create_thread(
        session, actor=w.actors["ben"], question_id=q4, title="Third in", body="Now me."
    )
    after = await student_rows(session, w, "ben")
    assert {r["thread_title"] for r in after if r["question"] == "4"} == {
        "First in", "Second in", "Third in",
    }  # fmt: skip
    assert w.names["cy"] not in json.dumps(after)
    # Staff's student view is this: a classmate who has posted in every question (ben now
    # has, where it matters), with nothing anonymous or hidden of his own.
    assert after == table(await take(session, w, "posts", view="student"))


async def test_hidden_posts_stay_out_of_a_students_export(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    w = world
    cy = await join(session, w, "cy")
    hidden_reply = await discussions.reply(
        session, actor=cy, thread_id=w.thread.public_id, body="Hidden by mona.", anonymous=True
    )
    bens = await discussions.reply(
        session, actor=w.actors["ben"], thread_id=w.thread.public_id, body="Ben's, hidden."
    )
    for post in (hidden_reply, bens):
        await moderation.moderate(
            session, actor=w.actors["mona"], action="hide", target=post.public_id,
            reason="Off topic",
        )  # fmt: skip
    flagged = await discussions.create_thread(
        session, actor=cy, question_id=w.question_ids[0], title="Flagged away", body="Hm."
    )
    await discussions.reply(
        session, actor=w.actors["ada"], thread_id=flagged.public_id, body="Under a flagged one."
    )
    opening = next(
        r["post"]
        for r in table(await take(session, w, "posts"))
        if r["thread_title"] == "Flagged away" and r["parent"] == ""
    )
    for who in ("ada", "mona", "ivo"):  # three flags hide the post pending review
        await moderation.flag_post(
            session, actor=w.actors[who], post_id=opening.lstrip("'"), reason=FlagReason.other
        )

    moderator = table(await take(session, w, "posts"))
    assert {r["body"] for r in moderator if r["status"] == "hidden"} == {
        "Hidden by mona.", "Ben's, hidden.", "Hm.",
    }  # fmt: skip
    ben = await student_rows(session, w, "ben")
    assert {r["body"] for r in ben if r["status"] == "hidden"} == {"Ben's, hidden."}  # his own
    assert not {"Hidden by mona.", "Hm.", "Under a flagged one."} & {r["body"] for r in ben}
    ada = await student_rows(session, w, "ada")
    assert not {"Hidden by mona.", "Ben's, hidden.", "Hm."} & {r["body"] for r in ada}
    # The author of a hidden thread still reads it, replies and all.
    cy_bodies = {r["body"] for r in await student_rows(session, w, "cy")}
    assert {"Hidden by mona.", "Hm.", "Under a flagged one."} <= cy_bodies
    staff_student_view = table(await take(session, w, "posts", view="student"))
    assert all(r["status"] != "hidden" for r in staff_student_view)
    assert "Under a flagged one." not in {r["body"] for r in staff_student_view}


async def test_deleted_posts_stay_only_as_the_thread_page_keeps_them(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    w = world
    cy = await join(session, w, "cy")
    gone = await discussions.reply(
        session, actor=cy, thread_id=w.thread.public_id, body="Soon gone.", anonymous=True
    )
    await discussions.reply(
        session, actor=w.actors["ben"], thread_id=w.thread.public_id, parent_id=gone.public_id,
        body="Still here.",
    )  # fmt: skip
    lonely = await discussions.reply(
        session, actor=w.actors["ada"], thread_id=w.thread.public_id, body="Nobody answered."
    )
    for actor, post in ((cy, gone), (w.actors["ada"], lonely)):
        await discussions.delete_post(session, actor=actor, post_id=post.public_id)

    moderator = table(await take(session, w, "posts"))
    deleted = {r["author"]: r for r in moderator if r["status"] == "deleted"}
    assert set(deleted) == {w.names["cy"], "Ada Canary"}
    ben = await student_rows(session, w, "ben")
    placeholders = [r for r in ben if r["status"] == "deleted"]
    assert [(r["post"], r["author"], r["body"]) for r in placeholders] == [
        (deleted[w.names["cy"]]["post"], "", "")
    ]
    assert "Still here." in {r["body"] for r in ben}
    assert w.names["cy"] not in json.dumps(ben)


async def test_a_student_asking_for_names_gets_the_student_view(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    w = world
    plan = await exports.plan(
        session, actor=w.actors["ben"], assignment_id=w.assignment_id, kind="posts",
        view="moderator",
    )  # fmt: skip
    assert plan.view == "student" and plan.reader == w.actors["ben"]
    asked = await take(session, w, "posts", who="ben", view="moderator")
    assert asked == await take(session, w, "posts", who="ben", view=None)
    assert asked == await take(session, w, "posts", who="ben", view="student")
    assert "Ada Canary" in asked  # her named thread, as the page shows it
    assert "ada@x.test" not in asked and "Quiet thoughts" in asked
    quiet = next(r for r in table(asked) if r["thread_title"] == "Quiet thoughts")
    assert quiet["author"] != "Ada Canary"
    staff = await exports.plan(
        session, actor=w.actors["mona"], assignment_id=w.assignment_id, kind="posts", view=None
    )
    assert staff.view == "moderator" and staff.reader is None


async def test_the_count_bounds_the_student_view(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    w = world
    await question_threads.set_post_first(
        session, actor=w.actors["mona"], question_id=w.question_ids[1], post_first=True
    )
    plan = await exports.plan(
        session, actor=w.actors["ada"], assignment_id=w.assignment_id, kind="posts"
    )
    rows = [row async for row in exports.rows(session, plan)]
    assert await exports.count(session, plan) == len(rows) == 2  # ben's six are closed to ada
