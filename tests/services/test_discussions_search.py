"""Search: within my cohorts, respecting anonymity, hidden posts and post-first; user syntax
is only text."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import discussions, moderation, search
from services.models import Post, Role
from tests.discussion_support import build_forum


async def test_search_finds_words_and_respects_every_reading_rule(session: AsyncSession) -> None:
    forum = await build_forum(session, post_first=True)
    other = await build_forum(session, slug="other", names=(("zed", Role.student),))
    q = forum.question_ids[0]
    ben = await forum.actor(session, "ben")
    thread = await discussions.create_thread(
        session,
        actor=ben,
        question_id=q,
        title="Attunement",
        body="Attunement matters",
        anonymous=True,
    )
    ada = await forum.actor(session, "ada")
    # Post-first: ada has not posted under this question yet.
    assert (await search.search(session, actor=ada, query="attunement")).hits == []
    await discussions.create_thread(session, actor=ada, question_id=q, title="Mine", body="x")
    ada = await forum.actor(session, "ada")
    hits = (await search.search(session, actor=ada, query="attunement")).hits
    assert {h.thread for h in hits} == {thread.public_id}
    assert all(h.author is not None and h.author.name.startswith("Anonymous ") for h in hits)
    mona = await forum.actor(session, "mona")
    staff_hits = (await search.search(session, actor=mona, query="attunement")).hits
    assert staff_hits and all(h.author and h.author.name == "Ben" for h in staff_hits)
    zed = await other.actor(session, "zed")
    assert (await search.search(session, actor=zed, query="attunement")).hits == []
    # Hidden posts drop out for classmates.
    opening = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
    await moderation.moderate(
        session, actor=mona, action="hide", target=opening.public_id, reason="r"
    )
    assert (await search.search(session, actor=ada, query="attunement")).hits == []
    assert (await search.search(session, actor=mona, query="attunement")).hits


async def test_query_syntax_is_plain_text(session: AsyncSession) -> None:
    forum = await build_forum(session)
    ada = await forum.actor(session, "ada")
    await discussions.create_thread(
        session, actor=ada, question_id=forum.question_ids[0], title="t", body="100% sure_thing"
    )
    for query in ['"', "NEAR(", "a AND", "*", "-x", "%", "_", "' OR 1=1 --", "title:x", "^a"]:
        result = await search.search(session, actor=ada, query=query)
        assert result.hits == [] or query in ("%", "_")
    assert (await search.search(session, actor=ada, query="sure_thing")).hits
    assert (await search.search(session, actor=ada, query="100%")).hits


async def test_the_demo_threads_seed_once(session: AsyncSession) -> None:
    from services.demo import seed_demo
    from services.demo.discussions import seed_discussions
    from services.models import Thread

    assignment = await seed_demo(session, issuer="https://demo.example")
    await seed_discussions(session, assignment=assignment)
    await seed_discussions(session, assignment=assignment)
    threads = list((await session.execute(select(Thread))).scalars())
    assert len(threads) == 2 and sum(t.anonymous for t in threads) == 1
