"""Threaded discussions under each assignment question: threads, replies, edits, deletion,
votes and follows, and loading a thread or post with its authorization. Reading a thread
for a viewer is services/thread_reading.py; a question's page, services/question_threads.py;
live updates, services/live_posts.py.

The reply tree is stored with a materialized `path` (each level appends the zero-padded
post id), so one query reads a whole thread in tree order. Reading a thread costs a
constant number of queries whatever its size: the posts come back as Core rows (no ORM
entities) with their author's name and alias joined in, and the presenter turns each row
into what this viewer may see.
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select

from services import aliases, events, notifications, policy, webhooks
from services.db import insert_ignore, lock, table_of
from services.errors import Invalid, NotFound, PermissionDenied, Problem, StaleVersion
from services.markdown import Rendering, render_markdown_bounded
from services.models import (
    Assignment,
    Post,
    PostRevision,
    PostVote,
    Thread,
    ThreadFollow,
    WebhookEndpoint,
    utcnow,
)
from services.policy import Actor, DiscussionScope
from services.views import (
    FollowView,
    VoteView,
)

MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 20_000
# Replies nest this deep on one page; deeper ones are read through "continue this thread".
DISPLAY_DEPTH = 6
# The tree itself stops here (the path column holds 1,024 characters, 11 per level).
MAX_DEPTH = 60
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
SORTS = ("oldest", "newest", "top")  # the allow-list of sort keys

DELETED_HTML = "<p><em>This post was deleted.</em></p>"
HIDDEN_HTML = "<p><em>This post is hidden by a moderator.</em></p>"

# Bidirectional overrides and isolates can make text display as something else; they go.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# More than three combining marks on one character is a "zalgo" flood, not a language.
_COMBINING_FLOOD = re.compile(
    "([\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff]{3})[\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff]+"
)
_ZERO_WIDTH_RUN = re.compile("[\u200b-\u200d\u2060\ufeff]{2,}")


def new_public_id() -> str:
    return secrets.token_urlsafe(9)


def clean_text(value: str, *, field: str, limit: int, single_line: bool = False) -> str:
    """Normalize untrusted text: NFC, no NUL, no bidi overrides, no mark floods, bounded."""
    if "\x00" in value:
        raise Invalid(problems=[Problem("must not contain NUL characters", field=field)])
    text = unicodedata.normalize("NFC", value)
    text = _BIDI_CONTROLS.sub("", text)
    text = _COMBINING_FLOOD.sub(r"\1", text)
    text = _ZERO_WIDTH_RUN.sub("", text)
    text = " ".join(text.split()) if single_line else text.strip()
    if not text:
        raise Invalid(problems=[Problem("must not be empty", field=field)])
    if len(text) > limit:
        raise Invalid(problems=[Problem(f"must be at most {limit:,} characters", field=field)])
    return text


def _path(parent_path: str | None, post_id: int) -> str:
    own = f"{post_id:010d}"
    return f"{parent_path}/{own}" if parent_path else own


def _minute(value: datetime) -> datetime:
    # Precise times help link an anonymous post to a person seen typing; minutes suffice.
    return value.replace(second=0, microsecond=0)


# --- loading with authorization -------------------------------------------------------------


async def thread_in_scope(
    session: AsyncSession, *, actor: Actor, thread_id: str
) -> tuple[Thread, datetime | None, DiscussionScope] | None:
    """A thread, when its opening post was hidden, and its discussion scope for the actor,
    in one round trip; None when it does not exist or its discussion is not the actor's to
    read (whether they may see this thread in it is still to be asked of policy)."""
    found = await _thread_with_scope(
        session, actor=actor, thread_id=thread_id, opening=False, for_reply=False
    )
    return None if found is None else (found.thread, found.hidden_at, found.scope)


@dataclass(frozen=True)
class ReplyFacts:
    """Read with the thread for a reply, saving it two queries: whether the cohort has any
    webhook endpoint (most have none: the reply then asks nothing of webhooks), and who
    follows the thread (they hear of the reply)."""

    endpoints: bool
    followers: frozenset[int]


@dataclass
class _Found:
    thread: Thread
    hidden_at: datetime | None
    opening: Post | None
    scope: DiscussionScope
    reply: ReplyFacts | None  # asked for a reply only


async def _thread_with_scope(
    session: AsyncSession, *, actor: Actor, thread_id: str, opening: bool, for_reply: bool
) -> _Found | None:
    """`thread_in_scope`, with the whole opening post when `opening` (a reply to it then
    needs no query of its own), and with `for_reply`, what a reply needs to know besides
    (ReplyFacts)."""
    row = (
        await session.execute(_thread_query(opening, for_reply), {"thread_id": thread_id})
    ).first()
    if row is None:
        return None
    thread, first_value, *columns = row
    facts = None
    if for_reply:
        endpoints, followers = columns.pop(0), columns.pop(0)
        facts = ReplyFacts(
            endpoints=bool(endpoints),
            followers=frozenset(int(f) for f in followers.split(",")) if followers else frozenset(),
        )
    opening_post = first_value if opening else None
    hidden_at = opening_post.hidden_at if opening_post is not None else first_value
    try:
        scope = await policy.discussion_scope_of(
            session, actor=actor, question_id=thread.question_id, columns=columns
        )
    except NotFound:  # an assignment they may not see: the thread is "not there" alike
        return None
    return _Found(thread, hidden_at, opening_post, scope, facts)


@functools.cache
def _thread_query(opening: bool, for_reply: bool) -> Any:
    """A thread by public id (bind parameter `thread_id`) with its opening post's hidden
    time, or the whole opening post, [a reply's facts: whether its cohort has webhook
    endpoints, and its followers' ids joined by commas,] and its scope's columns: built
    once per shape (~0.15 ms each time otherwise; every reply and live batch runs it)."""
    first = Post if opening else col(Post.hidden_at)
    columns: list[Any] = [Thread, first]
    if for_reply:
        columns.append(
            sa.exists().where(col(WebhookEndpoint.cohort_id) == col(Assignment.cohort_id))
        )
        columns.append(
            sa.select(sa.func.aggregate_strings(sa.cast(col(ThreadFollow.user_id), sa.String), ","))
            .where(col(ThreadFollow.thread_id) == col(Thread.id))
            .scalar_subquery()
        )
    return policy.with_discussion_scope(
        sa.select(*columns).join(
            Post, sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None))
        ),
        col(Thread.question_id),
    ).where(col(Thread.public_id) == sa.bindparam("thread_id"))


@dataclass
class ThreadContext:
    thread: Thread
    scope: DiscussionScope
    opening_hidden: bool
    opening: Post | None = None  # loaded only when asked for (access_thread's `opening`)
    reply: ReplyFacts | None = None  # asked for only by a reply (access_thread's `for_reply`)


async def access_thread(
    session: AsyncSession,
    *,
    actor: Actor,
    thread_id: str,
    opening: bool = False,
    for_reply: bool = False,
) -> ThreadContext:
    """Load a thread the actor may read, or raise NotFound (missing and forbidden alike);
    with `opening`, its opening post too, and with `for_reply`, what a reply needs to know
    besides (ReplyFacts), in the same round trip."""
    found = await _thread_with_scope(
        session, actor=actor, thread_id=thread_id, opening=opening, for_reply=for_reply
    )
    if found is None or not policy.can_view_thread(
        actor, found.scope, author_id=found.thread.author_id, hidden=found.hidden_at is not None
    ):
        raise NotFound("No such thread.")
    return ThreadContext(
        found.thread, found.scope, found.hidden_at is not None, found.opening, found.reply
    )


@dataclass
class PostContext:
    post: Post
    thread: Thread
    scope: DiscussionScope


@dataclass
class NewPost(PostContext):
    """A reply just made, with what presenting it needs besides the post, its thread and
    scope (thread_reading.present_new_post): its parent's public id and, when anonymous,
    its author's alias."""

    parent_public_id: str | None = None
    alias: str | None = None


# Aliases made once: a fresh aliased() entity costs ~0.7 ms to adapt its columns on first
# use, every time a query is built with one.
_OPENING = aliased(Post, name="opening_post")


async def access_post(session: AsyncSession, *, actor: Actor, post_id: str) -> PostContext:
    """Load a post in a thread the actor may read, or raise NotFound: the post, its thread,
    the opening post's state and the scope in one round trip."""
    opening = _OPENING
    row = (
        await session.execute(
            policy.with_discussion_scope(
                sa.select(Post, Thread, col(opening.hidden_at))
                .join(Thread, col(Thread.id) == col(Post.thread_id))
                .join(
                    opening,
                    sa.and_(
                        col(opening.thread_id) == col(Thread.id), col(opening.parent_id).is_(None)
                    ),
                ),
                col(Thread.question_id),
            ).where(col(Post.public_id) == post_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such post.")
    post, thread, opening_hidden_at, *columns = row
    try:
        scope = await policy.discussion_scope_of(
            session, actor=actor, question_id=thread.question_id, columns=columns
        )
    except NotFound:  # answers exactly as a post that does not exist
        raise NotFound("No such post.") from None
    if not policy.can_view_thread(
        actor, scope, author_id=thread.author_id, hidden=opening_hidden_at is not None
    ):
        raise NotFound("No such post.")
    if post.hidden_at is not None and not policy.can_read_post_body(
        actor, scope, author_id=post.author_id, hidden=True
    ):
        # A hidden post exists for readers only as a placeholder; nothing can be done to it.
        raise NotFound("No such post.")
    return PostContext(post, thread, scope)


# --- writing ------------------------------------------------------------------------------


def _check_anonymous(actor: Actor, scope: DiscussionScope, anonymous: bool) -> None:
    if anonymous and not policy.can_post_anonymously(actor, scope):
        reason = (
            "this assignment does not allow anonymous posts"
            if not scope.allow_anonymous
            else "staff post under their own name"
        )
        raise Invalid(problems=[Problem(f"is not available: {reason}", field="anonymous")])


async def _follow(session: AsyncSession, *, thread_id: int, user_id: int) -> None:
    # One statement: two first replies at once must not both decide "not following yet".
    await insert_ignore(
        session, ThreadFollow, thread_id=thread_id, user_id=user_id, created_at=utcnow()
    )


async def create_thread(
    session: AsyncSession,
    *,
    actor: Actor,
    question_id: int,
    title: str,
    body: str,
    anonymous: bool = False,
) -> Thread:
    """Readers of a question's discussion open threads there (title + markdown body),
    anonymous to classmates where the assignment allows it."""
    scope = await policy.discussion_scope(session, actor=actor, question_id=question_id)
    if not policy.can_post(actor, scope):
        raise PermissionDenied("This discussion is closed.")
    assert actor.user_id is not None
    _check_anonymous(actor, scope, anonymous)
    title = clean_text(title, field="title", limit=MAX_TITLE_CHARS, single_line=True)
    body = clean_text(body, field="body", limit=MAX_BODY_CHARS)
    html = await render_markdown_bounded(body, field="body")
    if anonymous:
        await aliases.alias_for(session, assignment_id=scope.assignment_id, user_id=actor.user_id)
    now = utcnow()
    thread = Thread(
        public_id=new_public_id(),
        question_id=question_id,
        author_id=actor.user_id,
        anonymous=anonymous,
        title=title,
        created_at=now,
        last_activity_at=now,
    )
    session.add(thread)
    await session.flush()
    assert thread.id is not None
    post = await _insert_post(
        session, actor=actor, thread=thread, parent=None, anonymous=anonymous, body=body,
        html=html, now=now,
    )  # fmt: skip
    await _posted(session, actor=actor, thread=thread, post=post, scope=scope)
    return thread


async def _insert_post(
    session: AsyncSession,
    *,
    actor: Actor,
    thread: Thread,
    parent: Post | None,
    anonymous: bool,
    body: str,
    html: str,
    now: datetime,
) -> Post:
    """A new post under `parent` (None: the thread's opening post), its path set."""
    assert thread.id is not None and actor.user_id is not None
    post = Post(
        public_id=new_public_id(),
        thread_id=thread.id,
        parent_id=parent.id if parent is not None else None,
        author_id=actor.user_id,
        anonymous=anonymous,
        depth=parent.depth + 1 if parent is not None else 0,
        path="",
        body=body,
        body_html=html,
        created_at=now,
    )
    # One statement: the id is drawn inside the INSERT, and the path made from it there.
    prefix = f"{parent.path}/" if parent is not None else ""
    dialect = session.get_bind().dialect.name
    values = {c.key: getattr(post, c.key) for c in _POST_VALUE_COLUMNS}
    post_id = (
        await session.execute(_insert_post_with_path(dialect), {**values, "prefix": prefix})
    ).scalar_one()
    set_committed_value(post, "id", post_id)
    set_committed_value(post, "path", _path(parent.path if parent is not None else None, post_id))
    make_transient_to_detached(post)
    session.add(post)
    return post


# Every column of a post but its id and path, which the INSERT makes itself.
_POST_VALUE_COLUMNS = [c for c in table_of(Post).columns if c.key not in ("id", "path")]


@functools.cache
def _insert_post_with_path(dialect: str) -> Any:
    """INSERT … SELECT that draws the new post's id and writes its path (`prefix` bound,
    then the id zero-padded to ten digits, as `_path` makes it) in the same statement:
    the path needs the id, and a second statement to set it cost a round trip, and on
    PostgreSQL a new row version with every index updated. SQLite assigns max(id) + 1 to
    a rowid table without AUTOINCREMENT, which is what this draws (safe: a writing unit
    holds SQLite's write lock from BEGIN IMMEDIATE); PostgreSQL draws from the column's
    own sequence."""
    table = table_of(Post)
    if dialect == "postgresql":
        drawn: Any = sa.select(
            sa.func.nextval(sa.func.pg_get_serial_sequence("posts", "id")).label("n")
        ).subquery("drawn")
        digits = sa.cast(drawn.c.n, sa.Text)
        own = sa.func.lpad(digits, sa.func.greatest(10, sa.func.length(digits)), "0")
    else:
        drawn = sa.select((sa.func.coalesce(sa.func.max(table.c.id), 0) + 1).label("n")).subquery(
            "drawn"
        )
        own = sa.func.printf("%010d", drawn.c.n)
    path = sa.bindparam("prefix", type_=sa.Text) + own
    source = sa.select(
        drawn.c.n,
        *(sa.bindparam(c.key, type_=c.type) for c in _POST_VALUE_COLUMNS),
        path,
    )
    names = ["id", *(c.key for c in _POST_VALUE_COLUMNS), "path"]
    return sa.insert(table).from_select(names, source).returning(table.c.id)


async def _posted(
    session: AsyncSession,
    *,
    actor: Actor,
    thread: Thread,
    post: Post,
    scope: DiscussionScope,
    following: bool = False,
    endpoints: bool | None = None,
) -> None:
    """After a new post: its author follows the thread (unless they already do), and its
    readers (and the assignment's workspace) hear of it; webhooks too, unless the caller
    knows the cohort has no endpoint (`endpoints` False)."""
    assert thread.id is not None and actor.user_id is not None
    if not following:
        await _follow(session, thread_id=thread.id, user_id=actor.user_id)
    await events.record(  # flushes whatever the caller left pending first
        session,
        channel=events.thread_channel(thread.id),
        kind="post_created",
        post_id=post.id,
        thread_id=thread.id,
        assignment_id=scope.assignment_id,
    )
    if endpoints is not False:
        await webhooks.post_created(session, thread=thread, post=post, scope=scope)


class _EarlyRender:
    """A post body cleaned and its render started at once; a refusal of the body (too
    long, or not text) is kept for `take`, so a missing thread still answers 404 first."""

    def __init__(self, body: str) -> None:
        self.rendering: Rendering | None = None
        self.refused: Invalid | None = None
        try:
            self.body = clean_text(body, field="body", limit=MAX_BODY_CHARS)
            self.rendering = Rendering(self.body, field="body")
        except Invalid as refused:
            self.refused = refused

    def take(self) -> tuple[str, Rendering]:
        if self.refused is not None:
            raise self.refused
        assert self.rendering is not None
        return self.body, self.rendering

    def give_up(self) -> None:
        if self.rendering is not None:
            self.rendering.give_up()


async def reply(
    session: AsyncSession,
    *,
    actor: Actor,
    thread_id: str,
    body: str,
    parent_id: str | None = None,
    anonymous: bool = False,
) -> Post:
    """Readers reply to a thread or to any post in it, unless the thread is locked (staff
    may still reply); the parent's author and the thread's followers are notified."""
    replied = await reply_in_context(
        session, actor=actor, thread_id=thread_id, body=body, parent_id=parent_id,
        anonymous=anonymous,
    )  # fmt: skip
    return replied.post


async def reply_in_context(
    session: AsyncSession,
    *,
    actor: Actor,
    thread_id: str,
    body: str,
    parent_id: str | None = None,
    anonymous: bool = False,
) -> NewPost:
    """`reply`, answering with the new post's thread and scope as well, and what else
    presenting it needs (the API presents it without looking it up again)."""
    # On SQLite the unit holds the write lock from its start (BEGIN IMMEDIATE): the opening
    # post read with the thread cannot change before this reply commits. On PostgreSQL the
    # parent is read after the thread's key-share lock below, so it is current.
    # The body is rendered (in a render thread) while the thread is read and the checks
    # run; its own refusal, if any, still comes in its turn, after theirs.
    early = _EarlyRender(body)
    try:
        postgres = session.get_bind().dialect.name == "postgresql"
        ctx = await access_thread(
            session,
            actor=actor,
            thread_id=thread_id,
            opening=not parent_id and not postgres,
            for_reply=True,
        )
        thread, scope, facts = ctx.thread, ctx.scope, ctx.reply
        assert thread.id is not None and facts is not None
        if not policy.can_reply(actor, scope, locked=thread.locked):
            raise PermissionDenied(
                "This thread is locked." if thread.locked else "This discussion is closed."
            )
        assert actor.user_id is not None
        _check_anonymous(actor, scope, anonymous)
        body, rendering = early.take()
        # A key-share lock on the thread (PostgreSQL; on SQLite the unit began with BEGIN
        # IMMEDIATE, so it already holds the database's write lock and nothing else can delete)
        # orders this reply against a deletion of the whole thread (delete_post locks it FOR
        # UPDATE): either the deletion is done and the thread is gone (404), or it waits for
        # this reply and then sees it. Replies do not block one another with it.
        if postgres and not await session.scalar(_key_share_thread(), {"thread_id": thread.id}):
            raise NotFound("No such thread.")
        parent: Post | None = ctx.opening
        if parent is None:
            parent_query = select(Post).where(Post.thread_id == thread.id)
            parent_query = (
                parent_query.where(Post.public_id == parent_id)
                if parent_id
                else parent_query.where(col(Post.parent_id).is_(None))
            )
            parent = (await session.execute(parent_query)).scalar_one_or_none()
        # A parent from another thread (or cohort) is simply not found here: no cross-links.
        if parent is None or (
            parent.hidden_at is not None
            and not policy.can_read_post_body(actor, scope, author_id=parent.author_id, hidden=True)
        ):
            raise Invalid(problems=[Problem("is not a post of this thread", field="parent")])
        if parent.depth + 1 > MAX_DEPTH:
            raise Invalid(problems=[Problem("is nested too deeply to reply to", field="parent")])
        html = await rendering.result()
        alias = None
        if anonymous:
            drawn = await aliases.alias_for(
                session, assignment_id=scope.assignment_id, user_id=actor.user_id
            )
            alias = drawn.name
        now = utcnow()
        post = await _insert_post(
            session, actor=actor, thread=thread, parent=parent, anonymous=anonymous, body=body,
            html=html, now=now,
        )  # fmt: skip
        await _notify_reply(
            session, actor=actor, thread=thread, parent=parent, post=post, scope=scope,
            followers=facts.followers,
        )  # fmt: skip
        # Last: the count is added to in SQL (concurrent replies each add one), and its row lock
        # is held only from here to the commit, so replies to one thread overlap until now and
        # their events (written under the lock) commit in the order of their ids.
        count = await session.scalar(_count_reply(), {"thread_id": thread.id, "now": now})
        if count is None:  # cannot happen under the key-share lock; kept as the last word
            raise NotFound("No such thread.")
        set_committed_value(thread, "post_count", count)
        set_committed_value(thread, "last_activity_at", now)
        await _posted(
            session, actor=actor, thread=thread, post=post, scope=scope,
            following=actor.user_id in facts.followers, endpoints=facts.endpoints,
        )  # fmt: skip
    except BaseException:
        early.give_up()
        raise
    return NewPost(
        post=post, thread=thread, scope=scope, parent_public_id=parent.public_id, alias=alias
    )


# A reply's statements, built once (building one costs 0.1-0.2 ms; its values are bound).
@functools.cache
def _key_share_thread() -> Any:
    return (
        select(Thread.id)
        .where(col(Thread.id) == sa.bindparam("thread_id"))
        .with_for_update(read=True, key_share=True)
    )


@functools.cache
def _count_reply() -> Any:
    return (
        sa.update(Thread)
        .where(col(Thread.id) == sa.bindparam("thread_id"))
        .values(post_count=col(Thread.post_count) + 1, last_activity_at=sa.bindparam("now"))
        .returning(col(Thread.post_count))
        .execution_options(synchronize_session=False)
    )


async def _notify_reply(
    session: AsyncSession,
    *,
    actor: Actor,
    thread: Thread,
    parent: Post,
    post: Post,
    scope: DiscussionScope,
    followers: frozenset[int],
) -> None:
    """The parent's author hears of a reply to them, the thread's other followers of a new
    post: one set of statements for all of them."""
    assert thread.id is not None and post.id is not None and actor.user_id is not None
    kinds = dict.fromkeys(sorted(followers - {actor.user_id}), notifications.FOLLOWED)
    if parent.author_id != actor.user_id and parent.deleted_at is None:
        kinds[parent.author_id] = notifications.REPLY  # one notice each: the reply wins
    await notifications.notify_post(
        session, kinds=kinds, thread=thread, post=post, assignment_id=scope.assignment_id
    )


async def edit_post(
    session: AsyncSession, *, actor: Actor, post_id: str, body: str, version: int
) -> Post:
    """Authors edit their posts; the old text is kept as a revision, and an edit based on a
    stale version is refused with the current one (optimistic concurrency)."""
    ctx = await access_post(session, actor=actor, post_id=post_id)
    post = ctx.post
    assert post.id is not None and actor.user_id is not None
    if not policy.can_edit_post(
        actor, author_id=post.author_id, deleted=post.deleted_at is not None
    ):
        raise PermissionDenied("Only the author can edit this post.")
    if version != post.version:
        raise StaleVersion(post.version, what="this post")
    body = clean_text(body, field="body", limit=MAX_BODY_CHARS)
    html = await render_markdown_bounded(body, field="body")
    session.add(
        PostRevision(
            post_id=post.id,
            version=post.version,
            body=post.body,
            body_html=post.body_html,
            edited_by_id=actor.user_id,
            created_at=post.edited_at or post.created_at,
        )
    )
    # The version check is in the UPDATE itself, so two concurrent edits cannot both win.
    result = await session.execute(
        sa.update(Post)
        .where(col(Post.id) == post.id, col(Post.version) == version)
        .values(body=body, body_html=html, version=version + 1, edited_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = await session.scalar(select(col(Post.version)).where(col(Post.id) == post.id))
        raise StaleVersion(current or version, what="this post")
    await session.refresh(post)
    await events.record(
        session,
        channel=events.thread_channel(post.thread_id),
        kind="post_edited",
        post_id=post.id,
        thread_id=post.thread_id,
    )
    return post


async def delete_post(session: AsyncSession, *, actor: Actor, post_id: str) -> bool:
    """The author or staff delete a post. With replies it stays as a placeholder (the tree
    keeps its shape); without, it disappears, and a thread whose opening post goes with no
    replies goes too. True when the whole thread was removed."""
    ctx = await access_post(session, actor=actor, post_id=post_id)
    post, thread, scope = ctx.post, ctx.thread, ctx.scope
    assert post.id is not None and thread.id is not None
    if not policy.can_delete_post(actor, scope, author_id=post.author_id):
        raise PermissionDenied("Only the author or a moderator can delete this post.")
    # Lock the thread: a reply that arrives meanwhile either lands before the decision below
    # (and is seen by it) or waits and then finds the thread gone (404), never deleted with it.
    await lock(session, thread)
    if post.deleted_at is not None:
        return False
    if actor.user_id != post.author_id:
        from services import audit

        await audit.record(
            session,
            actor=actor,
            action="post.delete",
            target_type="post",
            target_id=post.public_id,
            cohort_id=scope.cohort_id,
        )
    # Decided on the rows themselves, never on the denormalized post_count.
    others_live = await session.scalar(
        select(sa.func.count())
        .select_from(Post)
        .where(
            col(Post.thread_id) == thread.id,
            col(Post.id) != post.id,
            col(Post.deleted_at).is_(None),
        )
    )
    if post.parent_id is None and not others_live:
        await session.delete(thread)
        await session.flush()
        # The thread's own channel has nobody left to tell; the workspace counts threads.
        await events.record(
            session,
            channel=events.workspace_channel(scope.assignment_id),
            kind="thread_deleted",
            assignment_id=scope.assignment_id,
        )
        return True
    # Only the request whose UPDATE finds the post not yet deleted takes one off the count.
    result = await session.execute(
        sa.update(Post)
        .where(col(Post.id) == post.id, col(Post.deleted_at).is_(None))
        .values(deleted_at=utcnow(), body="", body_html="", version=col(Post.version) + 1)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    if post.parent_id is not None:
        await session.execute(
            sa.update(Thread)
            .where(col(Thread.id) == thread.id, col(Thread.post_count) > 1)
            .values(post_count=col(Thread.post_count) - 1)
            .execution_options(synchronize_session=False)
        )
    await session.refresh(post)
    await events.record(
        session,
        channel=events.thread_channel(thread.id),
        kind="post_deleted",
        post_id=post.id,
        thread_id=thread.id,
        assignment_id=scope.assignment_id,
    )
    return False


async def vote(session: AsyncSession, *, actor: Actor, post_id: str, up: bool) -> VoteView:
    """Readers vote other people's posts up (once each); votes order threads by "top"."""
    ctx = await access_post(session, actor=actor, post_id=post_id)
    post = ctx.post
    assert post.id is not None
    if not policy.can_vote(actor, ctx.scope, author_id=post.author_id) or post.deleted_at:
        raise PermissionDenied("You cannot vote on this post.")
    assert actor.user_id is not None
    # The score moves only when this request's own insert or delete took effect, so two
    # identical votes at once count once.
    change = 0
    if up:
        inserted = await insert_ignore(
            session, PostVote, post_id=post.id, user_id=actor.user_id, created_at=utcnow()
        )
        change = 1 if inserted else 0
    else:
        removed = await session.execute(
            sa.delete(PostVote).where(
                col(PostVote.post_id) == post.id, col(PostVote.user_id) == actor.user_id
            )
        )
        change = -1 if removed.rowcount else 0  # type: ignore[attr-defined]
    if change:
        await session.execute(
            sa.update(Post)
            .where(col(Post.id) == post.id)
            .values(score=col(Post.score) + change)
            .execution_options(synchronize_session=False)
        )
        await session.flush()
        # Scores are part of every rendering of the thread: the event marks it changed.
        await events.record(
            session,
            channel=events.thread_channel(post.thread_id),
            kind="post_voted",
            post_id=post.id,
            thread_id=post.thread_id,
        )
    score = await session.scalar(select(col(Post.score)).where(col(Post.id) == post.id))
    return VoteView(post=post.public_id, score=score or 0, voted=up)


async def set_following(
    session: AsyncSession, *, actor: Actor, thread_id: str, following: bool
) -> FollowView:
    """Signed-in readers follow a thread to hear of its replies, or stop."""
    ctx = await access_thread(session, actor=actor, thread_id=thread_id)
    if actor.user_id is None:
        raise PermissionDenied("Sign in to follow threads.")
    assert ctx.thread.id is not None
    if following:
        await _follow(session, thread_id=ctx.thread.id, user_id=actor.user_id)
    else:
        await session.execute(
            sa.delete(ThreadFollow).where(
                col(ThreadFollow.thread_id) == ctx.thread.id,
                col(ThreadFollow.user_id) == actor.user_id,
            )
        )
    return FollowView(thread=thread_id, following=following)
