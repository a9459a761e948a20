"""Discussions: every refusal, then the effects of success."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import (
    discussions,
    moderation,
    notifications,
    policy,
    question_threads,
    thread_reading,
)
from services.errors import AlreadyExists, Invalid, NotFound, PermissionDenied
from services.models import (
    Alias,
    AuditEvent,
    FlagReason,
    Phase,
    Post,
    Role,
    Thread,
    ThreadFollow,
)
from services.policy import Actor
from services.views import ThreadView
from tests.conftest import compiled_in, statements_of
from tests.discussion_support import Forum, build_forum


@pytest.fixture
async def forum(session: AsyncSession) -> Forum:
    return await build_forum(session)


async def _thread(
    session: AsyncSession, forum: Forum, who: str = "ada", *, anonymous: bool = False, q: int = 0
) -> Thread:
    actor = await forum.actor(session, who)
    return await discussions.create_thread(
        session,
        actor=actor,
        question_id=forum.question_ids[q],
        title="On safety",
        body="A *secure* base.",
        anonymous=anonymous,
    )


async def test_a_member_opens_a_thread_and_others_reply_in_a_tree(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum)
    ben = await forum.actor(session, "ben")
    first = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="Yes")
    ada = await forum.actor(session, "ada")
    nested = await discussions.reply(
        session, actor=ada, thread_id=thread.public_id, body="Why?", parent_id=first.public_id
    )
    assert nested.depth == 2 and nested.path.startswith(first.path + "/")
    view = ThreadView.model_validate(
        await thread_reading.read_thread(session, actor=ben, thread_id=thread.public_id)
    )
    assert view.opening.body_html == "<p>A <em>secure</em> base.</p>\n"
    assert [p.id for p in view.posts] == [first.public_id, nested.public_id]
    assert view.posts[1].parent == first.public_id
    assert view.post_count == 3
    # The parent's author hears of the reply; so do followers (the opener follows).
    ben_notes = await notifications.list_notifications(session, actor=ben)
    assert ben_notes.unread == 1 and "replied to your post" in ben_notes.items[0].message
    # Ada's reply is named, so the notice names her (issue 12, item 7); an anonymous reply
    # reads as its alias (tests/web/test_whats_due.py).
    assert ben_notes.items[0].message.startswith("Ada replied to your post")
    assert ben_notes.items[0].replier == "Ada"


async def test_strangers_and_students_of_a_draft_assignment_cannot_post(
    session: AsyncSession,
) -> None:
    forum = await build_forum(session, phase=Phase.draft)
    ada = await forum.actor(session, "ada")
    with pytest.raises(NotFound):
        await discussions.create_thread(
            session, actor=ada, question_id=forum.question_ids[0], title="t", body="b"
        )
    other = await build_forum(session, slug="other", names=(("zed", Role.student),))
    zed = await other.actor(session, "zed")
    with pytest.raises(NotFound):
        await question_threads.question_discussion(
            session, actor=zed, question_id=forum.question_ids[0]
        )
    ivo = await forum.actor(session, "ivo")  # staff see drafts
    assert await discussions.create_thread(
        session, actor=ivo, question_id=forum.question_ids[0], title="t", body="b"
    )


async def test_closed_assignments_and_locked_threads_refuse_posts(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum)
    mona = await forum.actor(session, "mona")
    await moderation.moderate(
        session, actor=mona, action="lock", target=thread.public_id, reason="cool down"
    )
    ben = await forum.actor(session, "ben")
    with pytest.raises(PermissionDenied):
        await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="x")
    assert await discussions.reply(session, actor=mona, thread_id=thread.public_id, body="ok")


async def test_empty_long_nul_and_foreign_parent_inputs_are_refused(
    session: AsyncSession, forum: Forum
) -> None:
    ada = await forum.actor(session, "ada")
    q = forum.question_ids[0]
    for title, body in [
        ("", "b"),
        ("t", "   "),
        ("t", "a\x00b"),
        ("t" * 201, "b"),
        ("t", "x" * 20_001),
    ]:
        with pytest.raises(Invalid):
            await discussions.create_thread(
                session, actor=ada, question_id=q, title=title, body=body
            )
    one = await _thread(session, forum)
    two = await _thread(session, forum, "ben")
    other_post = await discussions.reply(session, actor=ada, thread_id=two.public_id, body="in two")
    with pytest.raises(Invalid):
        await discussions.reply(
            session, actor=ada, thread_id=one.public_id, body="x", parent_id=other_post.public_id
        )
    with pytest.raises(Invalid):
        await thread_reading.read_thread(
            session, actor=ada, thread_id=one.public_id, sort="id; drop"
        )
    with pytest.raises(Invalid):
        await thread_reading.read_thread(session, actor=ada, thread_id=one.public_id, page=-1)
    with pytest.raises(Invalid):
        await thread_reading.read_thread(
            session, actor=ada, thread_id=one.public_id, per_page=10**9
        )


async def test_text_is_normalized_and_markdown_sanitized(
    session: AsyncSession, forum: Forum
) -> None:
    ada = await forum.actor(session, "ada")
    thread = await discussions.create_thread(
        session,
        actor=ada,
        question_id=forum.question_ids[0],
        title="a\u202eb  c",
        body="<script>alert(1)</script> [x](javascript:alert(1)) [y](https://e.x)",
    )
    assert thread.title == "ab c"
    post = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
    assert "<script" not in post.body_html and 'href="javascript' not in post.body_html
    assert 'rel="nofollow ugc noopener"' in post.body_html


async def test_anonymous_posts_show_the_alias_to_peers_and_the_name_to_staff(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum, anonymous=True)
    alias = (await session.execute(select(Alias))).scalar_one()
    assert alias.name.startswith("Anonymous ")
    for who, expected_name, sees_alias in [
        ("ben", alias.name, False),
        ("mona", "Ada", True),
        ("ivo", "Ada", True),
        ("ada", "Ada", True),
    ]:
        actor = await forum.actor(session, who)
        view = await thread_reading.read_thread(session, actor=actor, thread_id=thread.public_id)
        author = view["opening"]["author"]
        assert author["name"] == expected_name, who
        assert (author["alias"] == alias.name) is sees_alias
        listing = await question_threads.question_discussion(
            session, actor=actor, question_id=forum.question_ids[0]
        )
        assert listing.threads[0].author.name == expected_name
    # Stable within the assignment: a second anonymous post gets the same alias.
    ada = await forum.actor(session, "ada")
    await discussions.reply(
        session, actor=ada, thread_id=thread.public_id, body="r", anonymous=True
    )
    assert (await session.scalar(select(func.count()).select_from(Alias))) == 1


async def test_aliases_differ_across_assignments_and_are_unique_within_one(
    session: AsyncSession,
) -> None:
    from services import aliases

    names = set()
    for i in range(30):
        made = await aliases.alias_for(
            session, assignment_id=await _assignment(session, i), user_id=1
        )
        names.add(made.name)
    assert len(names) > 20  # drawn at random per assignment, not derived from the person


async def _assignment(session: AsyncSession, i: int) -> int:
    from tests.discussion_support import build_forum as bf

    if i == 0 or not hasattr(_assignment, "forum"):
        forum = await bf(session, slug=f"a{i}", names=(("p", Role.student),))
        _assignment.forum = forum  # type: ignore[attr-defined]
        return forum.assignment_id
    from services.models import Assignment

    base = await session.get(Assignment, _assignment.forum.assignment_id)  # type: ignore[attr-defined]
    assert base is not None
    copy = Assignment(cohort_id=base.cohort_id, title=f"A{i}")
    session.add(copy)
    await session.flush()
    assert copy.id is not None
    return copy.id


async def test_anonymity_is_refused_where_not_allowed_and_for_staff(session: AsyncSession) -> None:
    forum = await build_forum(session, anonymous=False)
    ada = await forum.actor(session, "ada")
    with pytest.raises(Invalid):
        await discussions.create_thread(
            session,
            actor=ada,
            question_id=forum.question_ids[0],
            title="t",
            body="b",
            anonymous=True,
        )
    forum2 = await build_forum(session, slug="p2")
    mona = await forum2.actor(session, "mona")
    with pytest.raises(Invalid):
        await discussions.create_thread(
            session,
            actor=mona,
            question_id=forum2.question_ids[0],
            title="t",
            body="b",
            anonymous=True,
        )


async def test_post_first_withholds_classmates_threads_until_you_post(
    session: AsyncSession,
) -> None:
    forum = await build_forum(session, post_first=True)
    q = forum.question_ids[0]
    theirs = await _thread(session, forum, "ben")
    ada = await forum.actor(session, "ada")
    view = await question_threads.question_discussion(session, actor=ada, question_id=q)
    assert view.withheld and view.threads == []
    with pytest.raises(NotFound):
        await thread_reading.read_thread(session, actor=ada, thread_id=theirs.public_id)
    with pytest.raises(NotFound):
        await discussions.reply(session, actor=ada, thread_id=theirs.public_id, body="x")
    mona = await forum.actor(session, "mona")
    assert (
        len(
            (await question_threads.question_discussion(session, actor=mona, question_id=q)).threads
        )
        == 1
    )
    await _thread(session, forum, "ada")
    ada = await forum.actor(session, "ada")
    view = await question_threads.question_discussion(session, actor=ada, question_id=q)
    assert not view.withheld and len(view.threads) == 2
    assert await thread_reading.read_thread(session, actor=ada, thread_id=theirs.public_id)


async def test_list_and_single_thread_checks_agree(session: AsyncSession) -> None:
    forum = await build_forum(session, post_first=True)
    q = forum.question_ids[0]
    await _thread(session, forum, "ben")
    hidden = await _thread(session, forum, "chen")
    mona = await forum.actor(session, "mona")
    opening = (await session.execute(select(Post).where(Post.thread_id == hidden.id))).scalar_one()
    await moderation.moderate(
        session, actor=mona, action="hide", target=opening.public_id, reason="r"
    )
    await _thread(session, forum, "ada")
    all_threads = list((await session.execute(select(Thread))).scalars())
    for who in ("ada", "ben", "chen", "mona", "ivo"):
        actor = await forum.actor(session, who)
        listed = {
            t.id
            for t in (
                await question_threads.question_discussion(session, actor=actor, question_id=q)
            ).threads
        }
        single = set()
        for t in all_threads:
            try:
                await discussions.access_thread(session, actor=actor, thread_id=t.public_id)
                single.add(t.public_id)
            except NotFound:
                pass
        assert listed == single, who


async def test_edits_keep_revisions_and_stale_versions_conflict(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum, anonymous=True)
    post = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
    ada = await forum.actor(session, "ada")
    ben = await forum.actor(session, "ben")
    with pytest.raises(PermissionDenied):
        await discussions.edit_post(session, actor=ben, post_id=post.public_id, body="x", version=1)
    edited = await discussions.edit_post(
        session, actor=ada, post_id=post.public_id, body="Better", version=1
    )
    assert edited.version == 2 and edited.body_html == "<p>Better</p>\n"
    with pytest.raises(discussions.StaleVersion) as stale:
        await discussions.edit_post(session, actor=ada, post_id=post.public_id, body="y", version=1)
    assert stale.value.current_version == 2
    mona = await forum.actor(session, "mona")
    revisions = await thread_reading.list_revisions(session, actor=mona, post_id=post.public_id)
    assert [r.version for r in revisions] == [1] and revisions[0].edited_by.name == "Ada"
    with pytest.raises(NotFound):  # peers never read edit histories (they carry names)
        await thread_reading.list_revisions(session, actor=ben, post_id=post.public_id)


async def test_deleting_leaves_a_placeholder_only_when_there_are_replies(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum)
    ada = await forum.actor(session, "ada")
    ben = await forum.actor(session, "ben")
    parent = await discussions.reply(session, actor=ada, thread_id=thread.public_id, body="p")
    await discussions.reply(
        session, actor=ben, thread_id=thread.public_id, body="c", parent_id=parent.public_id
    )
    lonely = await discussions.reply(session, actor=ada, thread_id=thread.public_id, body="l")
    with pytest.raises(PermissionDenied):
        await discussions.delete_post(session, actor=ben, post_id=parent.public_id)
    await discussions.delete_post(session, actor=ada, post_id=parent.public_id)
    await discussions.delete_post(session, actor=ada, post_id=lonely.public_id)
    view = await thread_reading.read_thread(session, actor=ben, thread_id=thread.public_id)
    ids = [p["id"] for p in view["posts"]]
    assert parent.public_id in ids and lonely.public_id not in ids
    placeholder = view["posts"][0]
    assert placeholder["deleted"] and placeholder["author"] is None
    assert placeholder["body_html"] == discussions.DELETED_HTML
    # A thread whose only post is deleted goes away.
    solo = await _thread(session, forum, "ben")
    opening = (await session.execute(select(Post).where(Post.thread_id == solo.id))).scalar_one()
    assert await discussions.delete_post(session, actor=ben, post_id=opening.public_id)


async def test_votes_order_top_and_cannot_be_cast_on_your_own_post(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum)
    ada = await forum.actor(session, "ada")
    ben = await forum.actor(session, "ben")
    chen = await forum.actor(session, "chen")
    low = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="low")
    high = await discussions.reply(session, actor=chen, thread_id=thread.public_id, body="high")
    with pytest.raises(PermissionDenied):
        await discussions.vote(session, actor=chen, post_id=high.public_id, up=True)
    assert (await discussions.vote(session, actor=ada, post_id=high.public_id, up=True)).score == 1
    assert (await discussions.vote(session, actor=ada, post_id=high.public_id, up=True)).score == 1
    top = await thread_reading.read_thread(
        session, actor=ada, thread_id=thread.public_id, sort="top"
    )
    assert [p["id"] for p in top["posts"]] == [high.public_id, low.public_id]
    newest = await thread_reading.read_thread(
        session, actor=ada, thread_id=thread.public_id, sort="newest"
    )
    assert [p["id"] for p in newest["posts"]] == [high.public_id, low.public_id]
    oldest = await thread_reading.read_thread(session, actor=ada, thread_id=thread.public_id)
    assert [p["id"] for p in oldest["posts"]] == [low.public_id, high.public_id]
    assert oldest["posts"][1]["voted"] is True


async def test_depth_cap_and_pagination(session: AsyncSession, forum: Forum) -> None:
    thread = await _thread(session, forum)
    ada = await forum.actor(session, "ada")
    parent = None
    chain = []
    for i in range(discussions.DISPLAY_DEPTH + 3):
        made = await discussions.reply(
            session, actor=ada, thread_id=thread.public_id, body=f"d{i}", parent_id=parent
        )
        chain.append(made.public_id)
        parent = made.public_id
    view = await thread_reading.read_thread(session, actor=ada, thread_id=thread.public_id)
    assert len(view["posts"]) == discussions.DISPLAY_DEPTH
    assert view["posts"][-1]["more_replies"] == 3
    focus = await thread_reading.read_thread(
        session, actor=ada, thread_id=thread.public_id, focus=view["posts"][-1]["id"]
    )
    assert [p["id"] for p in focus["posts"]] == chain[discussions.DISPLAY_DEPTH - 1 :]
    for i in range(4):
        await discussions.reply(session, actor=ada, thread_id=thread.public_id, body=f"t{i}")
    page2 = await thread_reading.read_thread(
        session, actor=ada, thread_id=thread.public_id, page=2, per_page=2
    )
    assert page2["page"]["pages"] == 3 and len(page2["posts"]) == 2


async def test_flags_hide_at_the_threshold_and_moderators_act_with_audit(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum, anonymous=True)
    post = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
    ada = await forum.actor(session, "ada")
    with pytest.raises(PermissionDenied):
        await moderation.flag_post(
            session, actor=ada, post_id=post.public_id, reason=FlagReason.spam
        )
    extra = await build_forum(session, slug="x", names=(("dora", Role.student),))
    from services import identity
    from services.policy import Actor
    from tests.discussion_support import ISSUER

    dora = await identity.grant(
        session,
        actor=Actor.system(),
        issuer=ISSUER,
        subject="x-dora",
        role=Role.student,
        cohort_slug="psy",
    )
    forum.users["dora"] = dora.id or 0
    del extra
    for i, who in enumerate(("ben", "chen", "dora")):
        actor = await forum.actor(session, who)
        count = await moderation.flag_post(
            session, actor=actor, post_id=post.public_id, reason=FlagReason.reveals_identity
        )
        assert count == i + 1
        if who == "ben":
            with pytest.raises(AlreadyExists):
                await moderation.flag_post(
                    session, actor=actor, post_id=post.public_id, reason=FlagReason.spam
                )
    ben = await forum.actor(session, "ben")
    await session.refresh(post)
    assert post.hidden_at is not None
    # Hidden: readers lose the thread (its opening post), the author is told why.
    with pytest.raises(NotFound):
        await thread_reading.read_thread(session, actor=ben, thread_id=thread.public_id)
    notes = await notifications.list_notifications(session, actor=ada)
    assert any("hid your post" in n.message for n in notes.items)
    mona = await forum.actor(session, "mona")
    queue = await moderation.flag_queue(session, actor=mona, cohort_slug="psy")
    assert queue[0].open_flags == 3 and queue[0].author.name == "Ada"
    with pytest.raises(NotFound):
        await moderation.flag_queue(session, actor=ben, cohort_slug="psy")
    with pytest.raises(NotFound):
        await moderation.moderate(session, actor=ben, action="pin", target=thread.public_id)
    with pytest.raises(Invalid):
        await moderation.moderate(session, actor=mona, action="unhide", target=post.public_id)
    with pytest.raises(Invalid):
        await moderation.moderate(session, actor=mona, action="explode", target=post.public_id)
    await moderation.moderate(
        session, actor=mona, action="unhide", target=post.public_id, reason="It is fine"
    )
    await moderation.moderate(session, actor=mona, action="pin", target=thread.public_id)
    assert await moderation.flag_queue(session, actor=mona, cohort_slug="psy") == []
    actions = list((await session.execute(select(AuditEvent.action, AuditEvent.reason))).all())
    assert ("post.unhide", "It is fine") in actions and ("thread.pin", "") in actions
    assert any(a == "post.hide" for a, _ in actions)
    assert await thread_reading.read_thread(session, actor=ben, thread_id=thread.public_id)


async def test_policy_staff_and_author_rules() -> None:
    from services.policy import Actor, DiscussionScope

    scope = DiscussionScope(1, 1, Phase.open, True, 1, True, False)
    student = Actor(user_id=5, roles={1: Role.student})
    staff = Actor(user_id=6, roles={1: Role.moderator})
    assert not policy.can_see_author(student, scope, author_id=7, anonymous=True)
    assert policy.can_see_author(student, scope, author_id=5, anonymous=True)
    assert policy.can_see_author(staff, scope, author_id=7, anonymous=True)
    assert not policy.can_see_others_threads(student, scope)
    assert policy.can_see_others_threads(staff, scope)
    assert not policy.can_reply(student, scope, locked=True)
    assert policy.can_reply(staff, scope, locked=True)


@pytest.mark.parametrize("size", [10, 100, 1000])
async def test_reading_a_thread_costs_a_constant_number_of_queries(
    session: AsyncSession, forum: Forum, size: int
) -> None:
    thread = await _thread(session, forum, anonymous=True)
    assert thread.id is not None
    authors = [forum.users[n] for n in ("ada", "ben", "chen")]
    # Bulk rows straight in: the read path is what is measured here.
    for i in range(size):
        session.add(
            Post(
                public_id=f"p{size}-{i}",
                thread_id=thread.id,
                author_id=authors[i % 3],
                anonymous=i % 2 == 0,
                depth=1,
                path=f"x/{i:010d}",
                body="b",
                body_html="<p>b</p>",
            )
        )
    await session.flush()
    opening = (
        await session.execute(select(Post).where(Post.thread_id == thread.id, Post.depth == 0))
    ).scalar_one()
    await session.execute(
        Post.__table__.update()  # type: ignore[attr-defined]
        .where(Post.__table__.c.depth == 1)  # type: ignore[attr-defined]
        .values(parent_id=opening.id, path=opening.path + "/" + Post.__table__.c.public_id)  # type: ignore[attr-defined]
    )
    ben = await forum.actor(session, "ben")
    with statements_of(session) as statements:
        view = await thread_reading.read_thread(
            session, actor=ben, thread_id=thread.public_id, per_page=200
        )
    assert view["page"]["top_level_replies"] == size
    assert len(statements) <= 6, statements


async def test_cached_renderings_never_serve_stale_posts_or_another_viewers_bits(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum)
    ada = await forum.actor(session, "ada")
    ben = await forum.actor(session, "ben")
    post = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="one")
    first = await thread_reading.read_thread(session, actor=ada, thread_id=thread.public_id)
    assert first["posts"][0]["score"] == 0 and not first["posts"][0]["voted"]
    await discussions.vote(session, actor=ada, post_id=post.public_id, up=True)
    voted = await thread_reading.read_thread(session, actor=ada, thread_id=thread.public_id)
    assert voted["posts"][0]["score"] == 1 and voted["posts"][0]["voted"]
    # The same cached rendering, seen by its author: their own edit rights, not ada's vote.
    as_ben = await thread_reading.read_thread(session, actor=ben, thread_id=thread.public_id)
    assert as_ben["posts"][0]["can_edit"] and not as_ben["posts"][0]["voted"]
    assert as_ben["posts"][0]["body"] == "one" and voted["posts"][0]["body"] is None
    await discussions.edit_post(session, actor=ben, post_id=post.public_id, body="two", version=1)
    edited = await thread_reading.read_thread(session, actor=ada, thread_id=thread.public_id)
    assert edited["posts"][0]["body_html"] == "<p>two</p>\n"


async def test_a_thread_one_may_not_see_answers_exactly_like_a_missing_one(
    session: AsyncSession, forum: Forum
) -> None:
    thread = await _thread(session, forum)
    post = await session.scalar(select(Post.public_id).where(Post.thread_id == thread.id))
    assert post is not None
    elsewhere = await build_forum(session, slug="lab", names=(("zed", Role.student),))
    zed = await elsewhere.actor(session, "zed")
    for call, real, missing in [
        (discussions.access_thread, {"thread_id": thread.public_id}, {"thread_id": "nope"}),
        (discussions.access_post, {"post_id": post}, {"post_id": "nope"}),
    ]:
        with pytest.raises(NotFound) as hidden:
            await call(session, actor=zed, **real)  # type: ignore[operator]
        with pytest.raises(NotFound) as absent:
            await call(session, actor=zed, **missing)  # type: ignore[operator]
        assert str(hidden.value) == str(absent.value)


async def _followers(session: AsyncSession, thread: Thread, *, count: int) -> list[int]:
    """`count` new students of the cohort who follow `thread`: their ids."""
    from services import identity

    made = []
    for n in range(count):
        user = await identity.grant(
            session,
            actor=Actor.system(),
            issuer="https://idp.disc.example",
            subject=f"follower-{thread.public_id}-{n}",
            role=Role.student,
            cohort_slug="psy",
        )
        assert user.id is not None
        made.append(user.id)
        session.add(ThreadFollow(thread_id=thread.id, user_id=user.id))
    return made


async def test_a_reply_costs_the_same_statements_for_two_followers_or_forty(
    session: AsyncSession, forum: Forum
) -> None:
    """Notices and mail for a thread's followers are written set-wise: a lecture hall
    following one thread does not make each reply hundreds of statements."""
    from services import outbox
    from services.models import Notification, OutboxMessage

    async def reply_statements(thread: Thread) -> int:
        ben = await forum.actor(session, "ben")
        with statements_of(session) as statements:
            await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="Yes.")
        return len(statements)

    few = await _thread(session, forum)
    await discussions.reply(
        session, actor=await forum.actor(session, "chen"), thread_id=few.public_id, body="Hm."
    )
    many = await _thread(session, forum)
    followers = await _followers(session, many, count=40)
    quiet = followers[0]  # chose no mail for followed threads: the notice, but no mail
    await outbox.set_modes(session, user_id=quiet, modes={"followed_thread": outbox.Mode.never})
    await session.flush()

    assert await reply_statements(many) == await reply_statements(few)

    notices = (
        await session.execute(
            select(Notification.user_id, Notification.kind).where(Notification.thread_id == many.id)
        )
    ).all()
    assert sorted(u for u, _ in notices) == sorted([*followers, forum.users["ada"]])
    assert {k for u, k in notices if u != forum.users["ada"]} == {"followed_thread"}
    mail = dict(
        (
            await session.execute(
                select(OutboxMessage.user_id, OutboxMessage.status).where(
                    OutboxMessage.thread_ref == many.public_id
                )
            )
        ).all()
    )
    assert mail[quiet] == "skipped"
    assert {mail[u] for u in followers[1:]} == {"held"}  # the daily digest, by default
    assert mail[forum.users["ada"]] == "pending"  # a reply to her own post: at once


async def test_once_warm_a_reply_and_its_live_delivery_compile_no_statement(
    session: AsyncSession, forum: Forum
) -> None:
    """Every statement of a reply (identity, thread, post, notices and mail for however many
    followers, events, webhooks) and of the live feed's reading comes from SQLAlchemy's
    statement cache after the first time: a statement without a cache key would be compiled
    on every reply."""
    from services import live_posts
    from services.live_posts import LiveViewer

    few = await _thread(session, forum)
    many = await _thread(session, forum)
    await _followers(session, many, count=12)
    await session.flush()
    ben, chen = await forum.actor(session, "ben"), await forum.actor(session, "chen")
    viewers = [LiveViewer(actor=chen, has_posted=True, channel="")]

    async def reply_and_deliver(thread: Thread, actor: Actor, parent: str | None) -> None:
        post = await discussions.reply(
            session, actor=actor, thread_id=thread.public_id, body="Yes.", parent_id=parent
        )
        assert post.id is not None
        await live_posts.present_live_posts(
            session, thread_id=thread.public_id, post_ids=[post.id], viewers=viewers
        )

    await reply_and_deliver(few, chen, None)  # warm: each statement compiled once
    await reply_and_deliver(many, ben, None)
    with compiled_in(session) as compiled:
        await reply_and_deliver(few, ben, None)  # two followers, not thirteen
        await reply_and_deliver(many, chen, None)
    assert compiled == []


async def test_live_updates_read_votes_only_for_posts_that_may_have_them(
    session: AsyncSession, forum: Forum
) -> None:
    """A post that is only new in a batch has no vote that batch must show (a vote made
    since comes with its own post_voted event): its delivery skips the votes query. A voted
    post is presented to its voter as voted."""
    from services import events, live_posts
    from services.live_posts import LiveViewer

    thread = await _thread(session, forum)
    ben, chen = await forum.actor(session, "ben"), await forum.actor(session, "chen")
    post = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="Hi.")
    await discussions.vote(session, actor=chen, post_id=post.public_id, up=True)
    assert post.id is not None and thread.id is not None
    batch = await events.since(session, channel=events.thread_channel(thread.id), after_id=0)
    kinds = {e.kind for e in batch if e.post_id == post.id}
    assert kinds == {"post_created", "post_voted"}
    viewers = [LiveViewer(actor=chen, has_posted=True, channel="")]

    async def delivered(may_have_votes: set[int]) -> tuple[bool, int]:
        with statements_of(session) as statements:
            (seen,) = await live_posts.present_live_posts(
                session,
                thread_id=thread.public_id,
                post_ids=[post.id or 0],
                viewers=viewers,
                may_have_votes=may_have_votes,
            )
        assert seen is not None
        return seen.posts[post.id or 0]["voted"], len(statements)

    voted, with_votes = await delivered({post.id})  # the batch holds its post_voted event
    assert voted
    unvoted, only_new = await delivered(set())  # the batch holds only its creation
    assert not unvoted and only_new == with_votes - 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_reply_renders_its_body_while_it_checks_and_gives_the_render_up_if_refused(
    session: AsyncSession, forum: Forum, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body's render starts before the thread is read (it overlaps the reads); a reply
    refused meanwhile stops that render, and the body's own refusal keeps its turn: a
    missing thread answers NotFound even for a body that is too long."""
    from tests.markdown_support import Spinning

    thread = await _thread(session, forum)
    ben = await forum.actor(session, "ben")
    with pytest.raises(NotFound):
        await discussions.reply(session, actor=ben, thread_id="missing", body="x" * 200_000)
    with pytest.raises(Invalid):
        await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="x" * 200_000)

    spinning = Spinning().install(monkeypatch)
    with pytest.raises(NotFound):
        await discussions.reply(session, actor=ben, thread_id="missing", body="Refused *first*.")
    spinning.assert_stopped()
    monkeypatch.undo()
    post = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="*Yes*")
    assert post.body_html == "<p><em>Yes</em></p>\n"


async def test_a_post_is_inserted_with_its_path_in_one_statement(
    session: AsyncSession, forum: Forum
) -> None:
    """The id is drawn and the path written by the INSERT itself (no UPDATE after it): the
    stored path is each ancestor's zero-padded id, as the tree's ORDER BY needs."""
    thread = await _thread(session, forum)
    ben = await forum.actor(session, "ben")
    first = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="A")
    with statements_of(session) as statements:
        nested = await discussions.reply(
            session, actor=ben, thread_id=thread.public_id, body="B", parent_id=first.public_id
        )
    assert not [s for s in statements if s.lstrip().upper().startswith("UPDATE POSTS")]
    stored = dict(
        (await session.execute(select(Post.id, Post.path).where(Post.thread_id == thread.id))).all()
    )
    opening = min(stored)
    assert first.id is not None and nested.id is not None
    assert stored[first.id] == first.path == f"{opening:010d}/{first.id:010d}"
    assert stored[nested.id] == nested.path == f"{first.path}/{nested.id:010d}"
    assert nested.id > first.id > opening
