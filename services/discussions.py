"""Threaded discussions under each assignment question: threads, replies, edits, deletion,
votes and follows, and the per-viewer reading of a thread.

The reply tree is stored with a materialized `path` (each level appends the zero-padded
post id), so one query reads a whole thread in tree order. Reading a thread costs a
constant number of queries whatever its size: the posts come back as Core rows (no ORM
entities) with their author's name and alias joined in, and the presenter turns each row
into what this viewer may see.
"""

from __future__ import annotations

import math
import re
import secrets
import time
import unicodedata
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select

from services import aliases, events, notifications, policy, presenters, webhooks
from services.db import insert_ignore, lock
from services.errors import Conflict, Invalid, NotFound, PermissionDenied, Problem
from services.markdown import render_markdown_bounded
from services.models import (
    Alias,
    Assignment,
    Cohort,
    Event,
    Post,
    PostRevision,
    PostVote,
    Question,
    Thread,
    ThreadFollow,
    User,
    utcnow,
)
from services.policy import Actor, DiscussionScope
from services.views import (
    ComposerView,
    FollowView,
    QuestionDiscussionView,
    RevisionView,
    ThreadSummaryView,
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


class StaleVersion(Conflict):
    """An edit based on an older version than the one stored."""

    code = "stale_version"
    title = "The post changed since you loaded it"

    def __init__(self, current_version: int) -> None:
        self.current_version = current_version
        super().__init__(
            f"Someone changed this post since you loaded it (it is now version "
            f"{current_version}). Reload it, then make your edit again."
        )


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


@dataclass
class ThreadContext:
    thread: Thread
    scope: DiscussionScope
    opening_hidden: bool


async def access_thread(session: AsyncSession, *, actor: Actor, thread_id: str) -> ThreadContext:
    """Load a thread the actor may read, or raise NotFound (missing and forbidden alike)."""
    row = (
        await session.execute(
            select(Thread, col(Post.hidden_at))
            .join(
                Post, sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None))
            )
            .where(Thread.public_id == thread_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such thread.")
    thread, hidden_at = row
    try:
        scope = await policy.discussion_scope(session, actor=actor, question_id=thread.question_id)
    except NotFound:  # an assignment they may not see: the thread is "not there" alike
        raise NotFound("No such thread.") from None
    if not policy.can_view_thread(
        actor, scope, author_id=thread.author_id, hidden=hidden_at is not None
    ):
        raise NotFound("No such thread.")
    return ThreadContext(thread, scope, hidden_at is not None)


@dataclass
class PostContext:
    post: Post
    thread: Thread
    scope: DiscussionScope


async def access_post(session: AsyncSession, *, actor: Actor, post_id: str) -> PostContext:
    """Load a post in a thread the actor may read, or raise NotFound."""
    row = (
        await session.execute(
            select(Post, Thread)
            .join(Thread, col(Thread.id) == col(Post.thread_id))
            .where(Post.public_id == post_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such post.")
    post, thread = row
    try:
        ctx = await access_thread(session, actor=actor, thread_id=thread.public_id)
    except NotFound:  # answers exactly as a post that does not exist
        raise NotFound("No such post.") from None
    if post.hidden_at is not None and not policy.can_read_post_body(
        actor, ctx.scope, author_id=post.author_id, hidden=True
    ):
        # A hidden post exists for readers only as a placeholder; nothing can be done to it.
        raise NotFound("No such post.")
    return PostContext(post, thread, ctx.scope)


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
    session.add(post)
    await session.flush()
    assert post.id is not None
    post.path = _path(parent.path if parent is not None else None, post.id)
    return post


async def _posted(
    session: AsyncSession, *, actor: Actor, thread: Thread, post: Post, scope: DiscussionScope
) -> None:
    """After a new post: its author follows the thread, and its readers (and the
    assignment's workspace) hear of it."""
    assert thread.id is not None and actor.user_id is not None
    await _follow(session, thread_id=thread.id, user_id=actor.user_id)
    await session.flush()
    await events.record(
        session,
        channel=events.thread_channel(thread.id),
        kind="post_created",
        post_id=post.id,
        thread_id=thread.id,
        assignment_id=scope.assignment_id,
    )
    await webhooks.post_created(session, thread=thread, post=post, scope=scope)


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
    ctx = await access_thread(session, actor=actor, thread_id=thread_id)
    thread, scope = ctx.thread, ctx.scope
    assert thread.id is not None
    if not policy.can_reply(actor, scope, locked=thread.locked):
        raise PermissionDenied(
            "This thread is locked." if thread.locked else "This discussion is closed."
        )
    assert actor.user_id is not None
    _check_anonymous(actor, scope, anonymous)
    body = clean_text(body, field="body", limit=MAX_BODY_CHARS)
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
    html = await render_markdown_bounded(body, field="body")
    if anonymous:
        await aliases.alias_for(session, assignment_id=scope.assignment_id, user_id=actor.user_id)
    now = utcnow()
    # The count is added to in SQL (concurrent replies each add one), and first, so that this
    # row lock orders the reply against a concurrent deletion of the thread (delete_post).
    count = await session.scalar(
        sa.update(Thread)
        .where(col(Thread.id) == thread.id)
        .values(post_count=col(Thread.post_count) + 1, last_activity_at=now)
        .returning(col(Thread.post_count))
        .execution_options(synchronize_session=False)
    )
    if count is None:  # deleted meanwhile
        raise NotFound("No such thread.")
    set_committed_value(thread, "post_count", count)
    set_committed_value(thread, "last_activity_at", now)
    post = await _insert_post(
        session, actor=actor, thread=thread, parent=parent, anonymous=anonymous, body=body,
        html=html, now=now,
    )  # fmt: skip
    await _notify_reply(session, actor=actor, thread=thread, parent=parent, post=post, scope=scope)
    await _posted(session, actor=actor, thread=thread, post=post, scope=scope)
    return post


async def _notify_reply(
    session: AsyncSession,
    *,
    actor: Actor,
    thread: Thread,
    parent: Post,
    post: Post,
    scope: DiscussionScope,
) -> None:
    assert thread.id is not None and post.id is not None
    told: set[int] = set()
    if parent.author_id != actor.user_id and parent.deleted_at is None:
        await notifications.notify(
            session,
            user_id=parent.author_id,
            kind=notifications.REPLY,
            thread_id=thread.id,
            post_id=post.id,
            assignment_id=scope.assignment_id,
        )
        told.add(parent.author_id)
    followers = await session.execute(
        select(col(ThreadFollow.user_id)).where(ThreadFollow.thread_id == thread.id)
    )
    for user_id in followers.scalars():
        if user_id == actor.user_id or user_id in told:
            continue
        await notifications.notify(
            session,
            user_id=user_id,
            kind=notifications.FOLLOWED,
            thread_id=thread.id,
            post_id=post.id,
            assignment_id=scope.assignment_id,
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
        raise StaleVersion(post.version)
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
        raise StaleVersion(current or version)
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


# --- presenting ---------------------------------------------------------------------------


POST_COLUMNS: tuple[sa.Label[Any], ...] = (
    col(Post.id).label("id"),
    col(Post.public_id).label("public_id"),
    col(Post.parent_id).label("parent_id"),
    col(Post.author_id).label("author_id"),
    col(Post.anonymous).label("anonymous"),
    col(Post.depth).label("depth"),
    col(Post.body).label("body"),
    col(Post.body_html).label("body_html"),
    col(Post.version).label("version"),
    col(Post.score).label("score"),
    col(Post.created_at).label("created_at"),
    col(Post.edited_at).label("edited_at"),
    col(Post.deleted_at).label("deleted_at"),
    col(Post.hidden_at).label("hidden_at"),
    col(Post.hidden_reason).label("hidden_reason"),
    col(User.display_name).label("display_name"),
    col(Alias.name).label("alias"),
)


def post_rows_query(*, assignment_id: int, viewer_id: int | None) -> sa.Select[Any]:
    """Posts with their author's name, alias and the viewer's vote: one Core query."""
    return (
        sa.select(*POST_COLUMNS, col(PostVote.id).label("my_vote"))
        .select_from(Post)
        .join(User, col(User.id) == col(Post.author_id))
        .outerjoin(
            Alias,
            sa.and_(
                col(Alias.assignment_id) == assignment_id, col(Alias.user_id) == col(Post.author_id)
            ),
        )
        .outerjoin(
            PostVote,
            sa.and_(
                col(PostVote.post_id) == col(Post.id),
                col(PostVote.user_id) == (viewer_id if viewer_id is not None else -1),
            ),
        )
    )


def present_post_row(
    actor: Actor,
    scope: DiscussionScope,
    row: Mapping[str, Any],
    *,
    locked: bool,
    public_ids: Mapping[int, str],
    more_replies: int = 0,
    staff: bool | None = None,
) -> dict[str, Any]:
    """One post as this viewer may see it (the shape of views.PostView)."""
    if staff is None:
        staff = policy.is_discussion_staff(actor, scope.cohort_id)
    author_id = row["author_id"]
    own = actor.user_id is not None and actor.user_id == author_id
    deleted = row["deleted_at"] is not None
    hidden = row["hidden_at"] is not None
    readable = policy.can_read_post_body(actor, scope, author_id=author_id, hidden=hidden)
    if deleted:
        body_html = DELETED_HTML
    elif not readable:
        body_html = HIDDEN_HTML
    else:
        body_html = row["body_html"]
    can_edit = policy.can_edit_post(actor, author_id=author_id, deleted=deleted)
    live = not deleted and readable
    return {
        "id": row["public_id"],
        "parent": public_ids.get(row["parent_id"]) if row["parent_id"] is not None else None,
        "depth": row["depth"],
        "author": None
        if deleted and not staff
        else presenters.discussion_author_row(actor, scope, row),
        "body": row["body"] if can_edit else None,
        "body_html": body_html,
        "version": row["version"],
        "score": row["score"],
        "voted": row.get("my_vote") is not None,
        "created_at": _minute(row["created_at"]),
        "edited": row["edited_at"] is not None,
        "deleted": deleted,
        "hidden": hidden,
        "hidden_reason": row["hidden_reason"] if hidden and (own or staff) else None,
        "more_replies": more_replies,
        "can_reply": live and policy.can_reply(actor, scope, locked=locked),
        "can_edit": can_edit,
        "can_delete": not deleted and policy.can_delete_post(actor, scope, author_id=author_id),
        "can_flag": live and policy.can_flag(actor, scope, author_id=author_id),
        "can_vote": live and policy.can_vote(actor, scope, author_id=author_id),
    }


def identity_notice(actor: Actor, scope: DiscussionScope, *, anonymous: bool) -> str:
    """Before posting, exactly who will be able to see the writer's name."""
    if policy.is_discussion_staff(actor, scope.cohort_id):
        return "You post as staff: everyone in this cohort will see your name."
    if anonymous:
        return (
            "Anonymous to classmates: your classmates will see only your alias for this "
            "assignment, never your name. The cohort's moderators and instructors will see "
            "your name."
        )
    return (
        "Everyone in this cohort — classmates, moderators and instructors — will see your "
        "name with this post."
    )


def _sort_key(sort: str) -> Any:
    if sort == "newest":
        return lambda r: (-r["id"],)
    if sort == "top":
        return lambda r: (-r["score"], r["id"])
    return lambda r: (r["id"],)


@dataclass
class _Rendering:
    """A thread's page as a viewer with no posts or votes of their own would see it."""

    made_at: float
    opening: dict[str, Any]
    posts: list[dict[str, Any]]
    page: dict[str, Any]
    rows: list[dict[str, Any]]  # parallel to posts (index 0: the opening)
    public_ids: dict[int, str]


# Renderings keyed by the thread's latest event id: every change to a post (new, edit,
# delete, hide, vote) writes an event, so a key can never serve stale posts, in this process
# or any other. Names can change outside the thread (a new sign-in), hence the age limit.
_RENDERINGS: OrderedDict[tuple[Any, ...], _Rendering] = OrderedDict()
RENDERING_CACHE_SIZE = 256
RENDERING_MAX_AGE_SECONDS = 30.0


async def read_thread(
    session: AsyncSession,
    *,
    actor: Actor,
    thread_id: str,
    sort: str = "oldest",
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    focus: str | None = None,
) -> dict[str, Any]:
    """A thread as this viewer may see it (the shape of views.ThreadView): the opening post,
    then one page of top-level replies with their replies nested up to DISPLAY_DEPTH levels;
    `focus` shows the subtree under one post instead ("continue this thread").

    A constant number of queries whatever the size: the thread and its scope, one row of
    counters, the viewer's votes, and (unless a rendering is cached) the posts."""
    problems = []
    if sort not in SORTS:
        problems.append(Problem(f"must be one of {', '.join(SORTS)}", field="sort"))
    if not 1 <= page <= 100_000:
        problems.append(Problem("must be between 1 and 100000", field="page"))
    if not 1 <= per_page <= MAX_PER_PAGE:
        problems.append(Problem(f"must be between 1 and {MAX_PER_PAGE}", field="per_page"))
    if problems:
        raise Invalid(problems=problems)
    ctx = await access_thread(session, actor=actor, thread_id=thread_id)
    thread, scope = ctx.thread, ctx.scope
    assert thread.id is not None
    staff = policy.is_discussion_staff(actor, scope.cohort_id)
    viewer = actor.user_id if actor.user_id is not None else -1
    stamp_q = (
        select(sa.func.max(col(Event.id)))
        .where(col(Event.channel) == events.thread_channel(thread.id))
        .scalar_subquery()
    )
    follow_q = (
        select(sa.func.count())
        .where(col(ThreadFollow.thread_id) == thread.id, col(ThreadFollow.user_id) == viewer)
        .scalar_subquery()
    )
    slug_q = select(col(Cohort.slug)).where(col(Cohort.id) == scope.cohort_id).scalar_subquery()
    # The viewer's votes in this thread, as one string of post ids (one round trip less).
    votes_q = (
        select(sa.func.aggregate_strings(sa.cast(col(PostVote.post_id), sa.String), ","))
        .join(Post, col(Post.id) == col(PostVote.post_id))
        .where(col(Post.thread_id) == thread.id, col(PostVote.user_id) == viewer)
        .scalar_subquery()
    )
    stamp, following, cohort_slug, voted = (
        await session.execute(sa.select(stamp_q, follow_q, slug_q, votes_q))
    ).one()
    my_votes = {int(v) for v in voted.split(",")} if voted and actor.user_id is not None else set()
    can_post = policy.can_post(actor, scope)
    # The public id, not the row id: it is random, so two databases never share a key.
    key = (thread.public_id, stamp, sort, page, per_page, focus, staff, thread.locked, can_post)
    rendering = _RENDERINGS.get(key)
    if rendering is None or time.monotonic() - rendering.made_at > RENDERING_MAX_AGE_SECONDS:
        generic = Actor(
            user_id=-1, is_administrator=actor.is_administrator, roles=actor.roles
        )  # nobody's own posts, nobody's votes
        rendering = await _render_thread(
            session,
            actor=generic,
            scope=scope,
            thread=thread,
            sort=sort,
            page=page,
            per_page=per_page,
            focus=focus,
            staff=staff,
        )
        _RENDERINGS[key] = rendering
        while len(_RENDERINGS) > RENDERING_CACHE_SIZE:
            _RENDERINGS.popitem(last=False)
    else:
        _RENDERINGS.move_to_end(key)
    # This viewer's own posts and votes differ from the generic rendering; patch just those.
    shown = [rendering.opening, *rendering.posts]
    if actor.user_id is not None:
        for i, row in enumerate(rendering.rows):
            if row["author_id"] == actor.user_id or row["id"] in my_votes:
                mine = {**row, "my_vote": 1 if row["id"] in my_votes else None}
                more = shown[i]["more_replies"]
                shown[i] = present_post_row(
                    actor,
                    scope,
                    mine,
                    locked=thread.locked,
                    public_ids=rendering.public_ids,
                    more_replies=more,
                    staff=staff,
                )
    return {
        "id": thread.public_id,
        "question": thread.question_id,
        "assignment": scope.assignment_id,
        "cohort": cohort_slug or "",
        "title": thread.title,
        "pinned": thread.pinned,
        "locked": thread.locked,
        "following": bool(following),
        "post_count": thread.post_count,
        "created_at": _minute(thread.created_at),
        "last_activity_at": _minute(thread.last_activity_at),
        "opening": shown[0],
        "posts": shown[1:],
        "page": rendering.page,
        "can_reply": policy.can_reply(actor, scope, locked=thread.locked),
        "can_moderate": policy.can_moderate(actor, scope.cohort_id),
        "can_post_anonymously": policy.can_post_anonymously(actor, scope),
        "identity_notice": identity_notice(actor, scope, anonymous=False),
    }


async def _render_thread(
    session: AsyncSession,
    *,
    actor: Actor,
    scope: DiscussionScope,
    thread: Thread,
    sort: str,
    page: int,
    per_page: int,
    focus: str | None,
    staff: bool,
) -> _Rendering:
    result = await session.execute(
        post_rows_query(assignment_id=scope.assignment_id, viewer_id=None)
        .where(col(Post.thread_id) == thread.id)
        .order_by(col(Post.path))
    )
    keys = list(result.keys())
    rows = [dict(zip(keys, r, strict=True)) for r in result.all()]
    public_ids = {r["id"]: r["public_id"] for r in rows}
    children: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        children[r["parent_id"]].append(r)
    # Subtree sizes (rows come in path order, so children follow parents; walk backwards).
    size: dict[int, int] = {}
    alive: dict[int, bool] = {}
    for r in reversed(rows):
        kids = children.get(r["id"], ())
        size[r["id"]] = sum(1 + size[k["id"]] for k in kids)
        # A deleted post with no living replies is left out entirely.
        alive[r["id"]] = r["deleted_at"] is None or any(alive[k["id"]] for k in kids)
    key = _sort_key(sort)
    roots = children.get(None, [])
    if not roots:  # pragma: no cover - a thread always has its opening post
        raise NotFound("No such thread.")
    opening = roots[0]

    def present(r: dict[str, Any], more: int = 0) -> dict[str, Any]:
        return present_post_row(
            actor,
            scope,
            r,
            locked=thread.locked,
            public_ids=public_ids,
            more_replies=more,
            staff=staff,
        )

    base = opening
    if focus is not None:
        found = next((r for r in rows if r["public_id"] == focus), None)
        if found is None or found is opening:
            raise NotFound("No such post in this thread.")
        base = found
    top = sorted((r for r in children.get(base["id"], []) if alive[r["id"]]), key=key)
    pages = max(1, math.ceil(len(top) / per_page))
    chosen = top[(page - 1) * per_page : page * per_page]
    out: list[dict[str, Any]] = []
    used: list[dict[str, Any]] = [opening]
    if focus is not None:
        out.append(present(base))
        used.append(base)
    stack = list(reversed(chosen))
    while stack:
        r = stack.pop()
        relative = r["depth"] - base["depth"]
        kids = [k for k in children.get(r["id"], ()) if alive[k["id"]]]
        used.append(r)
        if relative >= DISPLAY_DEPTH and kids:
            out.append(present(r, more=size[r["id"]]))
            continue
        out.append(present(r))
        stack.extend(reversed(sorted(kids, key=key)))
    return _Rendering(
        made_at=time.monotonic(),
        opening=present(opening),
        posts=out,
        page={
            "sort": sort,
            "page": page,
            "per_page": per_page,
            "pages": pages,
            "top_level_replies": len(top),
            "focus": focus,
        },
        rows=used,
        public_ids=public_ids,
    )


async def present_posts(
    session: AsyncSession,
    *,
    actor: Actor,
    scope: DiscussionScope,
    thread: Thread,
    post_ids: Sequence[int],
) -> dict[int, dict[str, Any]]:
    """Several posts of one thread as this viewer may see them (for live updates)."""
    if not post_ids:
        return {}
    result = await session.execute(
        post_rows_query(assignment_id=scope.assignment_id, viewer_id=actor.user_id).where(
            col(Post.thread_id) == thread.id, col(Post.id).in_(list(post_ids))
        )
    )
    rows = [dict(r) for r in result.mappings()]
    parents = {r["parent_id"] for r in rows if r["parent_id"] is not None}
    public_ids = {r["id"]: r["public_id"] for r in rows}
    if parents - set(public_ids):
        found = await session.execute(
            select(col(Post.id), col(Post.public_id)).where(col(Post.id).in_(parents))
        )
        public_ids.update({pid: pub for pid, pub in found.all() if pid is not None})
    return {
        r["id"]: present_post_row(actor, scope, r, locked=thread.locked, public_ids=public_ids)
        for r in rows
    }


async def list_revisions(
    session: AsyncSession, *, actor: Actor, post_id: str
) -> list[RevisionView]:
    """Staff read any post's earlier versions; authors read their own; others get NotFound."""
    ctx = await access_post(session, actor=actor, post_id=post_id)
    post = ctx.post
    if not policy.can_read_revisions(actor, ctx.scope, author_id=post.author_id):
        raise NotFound("No such post.")
    rows = await session.execute(
        select(PostRevision, col(User.display_name), col(Alias.name))
        .join(User, col(User.id) == col(PostRevision.edited_by_id))
        .outerjoin(
            Alias,
            sa.and_(
                col(Alias.assignment_id) == ctx.scope.assignment_id,
                col(Alias.user_id) == col(PostRevision.edited_by_id),
            ),
        )
        .where(PostRevision.post_id == post.id)
        .order_by(col(PostRevision.version))
    )
    return [
        RevisionView(
            version=rev.version,
            body=rev.body,
            body_html=rev.body_html,
            created_at=_minute(rev.created_at),
            edited_by=presenters.discussion_author(
                actor,
                ctx.scope,
                author_id=rev.edited_by_id,
                anonymous=post.anonymous,
                display_name=name,
                alias=alias,
            ),
        )
        for rev, name, alias in rows.all()
    ]


async def question_discussion(
    session: AsyncSession, *, actor: Actor, question_id: int
) -> QuestionDiscussionView:
    """A question's discussion as this viewer may see it: threads (pinned first, then by
    latest activity), the post-first state, and what the composer should say."""
    scope = await policy.discussion_scope(session, actor=actor, question_id=question_id)
    question = await session.get(Question, question_id)
    assignment = await session.get(Assignment, scope.assignment_id)
    cohort_slug = await session.scalar(
        select(col(Cohort.slug)).where(col(Cohort.id) == scope.cohort_id)
    )
    assert question is not None and assignment is not None
    threads = await list_threads(session, actor=actor, scope=scope)
    anon = policy.can_post_anonymously(actor, scope)
    return QuestionDiscussionView(
        question=question_id,
        assignment=scope.assignment_id,
        assignment_title=assignment.title,
        cohort=cohort_slug or "",
        position=question.position,
        prompt_html=question.prompt_html,
        post_first=scope.post_first,
        has_posted=scope.has_posted,
        withheld=not policy.can_see_others_threads(actor, scope),
        threads=threads,
        composer=ComposerView(
            can_post=policy.can_post(actor, scope),
            can_post_anonymously=anon,
            identity_notice=identity_notice(actor, scope, anonymous=False),
            anonymous_notice=identity_notice(actor, scope, anonymous=True) if anon else None,
        ),
        can_moderate=policy.can_moderate(actor, scope.cohort_id),
    )


async def list_threads(
    session: AsyncSession, *, actor: Actor, scope: DiscussionScope
) -> list[ThreadSummaryView]:
    """The question's threads this viewer may see (the list form of can_view_thread)."""
    opening = sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None))
    rows = await session.execute(
        select(Thread, col(Post.hidden_at), col(User.display_name), col(Alias.name))
        .join(Post, opening)
        .join(User, col(User.id) == col(Thread.author_id))
        .outerjoin(
            Alias,
            sa.and_(
                col(Alias.assignment_id) == scope.assignment_id,
                col(Alias.user_id) == col(Thread.author_id),
            ),
        )
        .where(Thread.question_id == scope.question_id, policy.visible_threads(actor, scope))
        .order_by(col(Thread.pinned).desc(), col(Thread.last_activity_at).desc(), col(Thread.id))
    )
    return [
        ThreadSummaryView(
            id=t.public_id,
            question=t.question_id,
            title=t.title,
            author=presenters.discussion_author(
                actor,
                scope,
                author_id=t.author_id,
                anonymous=t.anonymous,
                display_name=name,
                alias=alias,
            ),
            pinned=t.pinned,
            locked=t.locked,
            hidden=hidden_at is not None,
            post_count=t.post_count,
            created_at=_minute(t.created_at),
            last_activity_at=_minute(t.last_activity_at),
        )
        for t, hidden_at, name, alias in rows.all()
    ]


async def set_post_first(
    session: AsyncSession, *, actor: Actor, question_id: int, post_first: bool
) -> None:
    """Staff turn "post first" on or off for a question."""
    scope = await policy.discussion_scope(session, actor=actor, question_id=question_id)
    if not policy.can_moderate(actor, scope.cohort_id):
        raise NotFound("No such question.")
    question = await session.get(Question, question_id)
    assert question is not None
    question.post_first = post_first
    session.add(question)
    await session.flush()


# --- live updates: one reading per batch, one presentation per audience ---------------------


@dataclass(frozen=True)
class LiveViewer:
    """A subscriber to a thread's live updates, as admitted when the stream opened."""

    actor: Actor
    has_posted: bool  # post-first standing then (it only ever turns true)
    channel: str  # the thread's events channel


@dataclass(frozen=True)
class LivePosts:
    """What one viewer may see of a batch: the thread's state and the changed posts (post
    row id → the presented post). Viewers of one audience share the very same post dicts."""

    locked: bool
    pinned: bool
    posts: dict[int, dict[str, Any]]


async def admit_live_viewer(session: AsyncSession, *, actor: Actor, thread_id: str) -> LiveViewer:
    """A viewer opening a thread's stream: NotFound unless they may read the thread."""
    ctx = await access_thread(session, actor=actor, thread_id=thread_id)
    assert ctx.thread.id is not None
    channel = events.thread_channel(ctx.thread.id)
    return LiveViewer(actor=actor, has_posted=ctx.scope.has_posted, channel=channel)


async def present_live_posts(
    session: AsyncSession,
    *,
    thread_id: str,
    post_ids: Sequence[int],
    viewers: Sequence[LiveViewer],
) -> list[LivePosts | None]:
    """A batch of changed posts for every subscriber at once (None: may no longer read the
    thread). A constant number of queries whatever the number of viewers: the thread and
    its scope, the posts, their parents' public ids, and the viewers' votes on them. Each
    audience (staff or not, may reply, may post) is presented once; a viewer's own posts and
    votes are then presented for them from the rows already read."""
    found = (
        await session.execute(
            select(Thread, col(Post.hidden_at))
            .join(
                Post, sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None))
            )
            .where(Thread.public_id == thread_id)
        )
    ).first()
    if found is None:
        return [None for _ in viewers]
    thread, hidden_at = found
    try:
        generic_scope = await policy.discussion_scope(
            session, actor=Actor.system(), question_id=thread.question_id
        )
    except NotFound:
        return [None for _ in viewers]
    rows: list[dict[str, Any]] = []
    public_ids: dict[int, str] = {}
    votes: set[tuple[int, int]] = set()
    if post_ids:
        result = await session.execute(
            post_rows_query(assignment_id=generic_scope.assignment_id, viewer_id=None).where(
                col(Post.thread_id) == thread.id, col(Post.id).in_(list(post_ids))
            )
        )
        keys = list(result.keys())
        rows = [dict(zip(keys, r, strict=True)) for r in result.all()]
        public_ids = {r["id"]: r["public_id"] for r in rows}
        parents = {r["parent_id"] for r in rows if r["parent_id"] is not None}
        if parents - set(public_ids):
            more = await session.execute(
                select(col(Post.id), col(Post.public_id)).where(col(Post.id).in_(parents))
            )
            public_ids.update({pid: pub for pid, pub in more.all() if pid is not None})
        user_ids = {v.actor.user_id for v in viewers if v.actor.user_id is not None}
        if user_ids and rows:
            voted = await session.execute(
                select(col(PostVote.post_id), col(PostVote.user_id)).where(
                    col(PostVote.post_id).in_(list(public_ids)),
                    col(PostVote.user_id).in_(list(user_ids)),
                )
            )
            votes = {(p, u) for p, u in voted.all()}
    probe = Assignment(
        id=generic_scope.assignment_id,
        cohort_id=generic_scope.cohort_id,
        title="",
        phase=generic_scope.assignment_phase,
    )
    audiences: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}
    personals: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}
    out: list[LivePosts | None] = []
    for viewer in viewers:
        actor = viewer.actor
        scope = replace(generic_scope, has_posted=viewer.has_posted)
        if not policy.can_read_discussion(actor, probe) or not policy.can_view_thread(
            actor, scope, author_id=thread.author_id, hidden=hidden_at is not None
        ):
            out.append(None)
            continue
        staff = policy.is_discussion_staff(actor, scope.cohort_id)
        can_post = policy.can_post(actor, scope)
        signed_in = actor.user_id is not None
        key = (staff, signed_in, can_post, policy.can_reply(actor, scope, locked=thread.locked))
        shared = audiences.get(key)
        if shared is None:
            # Nobody's own posts and nobody's votes: what anyone of this audience sees.
            generic = Actor(
                user_id=-1 if signed_in else None,
                is_administrator=actor.is_administrator,
                roles=actor.roles,
            )
            shared = {
                r["id"]: present_post_row(
                    generic, scope, r, locked=thread.locked, public_ids=public_ids, staff=staff
                )
                for r in rows
            }
            audiences[key] = shared
        posts = shared
        me = actor.user_id
        if me is not None:
            mine = [r for r in rows if r["author_id"] == me or (r["id"], me) in votes]
            # One person in several tabs (or on several devices) is presented once.
            personal = personals.get((key, me)) if mine else None
            if personal is not None:
                posts = personal
            elif mine:
                posts = personals[(key, me)] = dict(shared)
                for r in mine:
                    posts[r["id"]] = present_post_row(
                        actor,
                        scope,
                        {**r, "my_vote": 1 if (r["id"], me) in votes else None},
                        locked=thread.locked,
                        public_ids=public_ids,
                        staff=staff,
                    )
        out.append(LivePosts(locked=thread.locked, pinned=thread.pinned, posts=posts))
    return out
