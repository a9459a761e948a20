"""In-app notifications: replies to your posts, and new posts in threads you follow.

A notification stores only what it points at; its text is written when it is read, for
its reader. On the page it names the person who replied only as the reader may know them
(presenters.discussion_name with the reader as viewer: the name of a named reply, the alias
of an anonymous one); the mail, written when the reply is made, never names them.
The same text goes to the reader's mail outbox, in the same transaction (services/outbox.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import outbox, presenters
from services.db import table_of
from services.models import Alias, Assignment, Notification, Post, Question, Thread, User, utcnow
from services.policy import Actor, DiscussionScope
from services.views import NotificationsView, NotificationView

REPLY = "reply"
FOLLOWED = "followed_thread"
HIDDEN = "post_hidden"
RESTORED = "post_restored"
REVIEW_ASSIGNED = "review_assigned"
REVIEWS_RECEIVED = "reviews_received"
DEADLINE = "deadline"
EXEMPLAR = "exemplar.nominated"
MAX_LISTED = 100


async def notify(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str,
    thread_id: int | None = None,
    post_id: int | None = None,
    assignment_id: int | None = None,
    message: str = "",
    link: str = "",
    dedupe_key: str | None = None,
) -> bool:
    """Queue a notice for one person, in the caller's transaction, with its mail (sent as
    they chose). With a dedupe key, a notice already queued under it is not repeated:
    returns False then."""
    thread = await session.get(Thread, thread_id) if thread_id is not None else None
    post_public = (
        await session.scalar(select(Post.public_id).where(Post.id == post_id))
        if post_id is not None
        else None
    )
    if thread is not None:
        link = link or f"/threads/{thread.public_id}" + (
            f"#post-{post_public}" if post_public else ""
        )
    elif not link and assignment_id is not None:
        link = f"/assignments/{assignment_id}"
    text = _text(kind, thread.title if thread else "a thread", message)
    queued = await outbox.enqueue(
        session,
        user_id=user_id,
        kind=kind,
        subject=_subject(kind, thread.title if thread else None, text),
        body=text,
        link=link,
        thread_ref=thread.public_id if thread else None,
        dedupe_key=dedupe_key,
    )
    if not queued:
        return False
    session.add(
        Notification(
            user_id=user_id,
            kind=kind,
            thread_id=thread_id,
            post_id=post_id,
            assignment_id=assignment_id,
            message=message,
        )
    )
    return True


async def notify_post(
    session: AsyncSession,
    *,
    kinds: dict[int, str],
    thread: Thread,
    post: Post,
    assignment_id: int,
) -> None:
    """A new post's notices, REPLY or FOLLOWED as given per person, with their mail: a fixed
    number of statements however many follow the thread."""
    if not kinds:
        return
    assert thread.id is not None and post.id is not None
    await outbox.enqueue_many(
        session,
        mails=[_post_mail(uid, kind, thread.title) for uid, kind in kinds.items()],
        link=f"/threads/{thread.public_id}#post-{post.public_id}",
        thread_ref=thread.public_id,
    )
    now = utcnow()
    await session.execute(
        sa.insert(table_of(Notification)),  # executemany: compiled once, cached
        [
            {
                "user_id": uid,
                "kind": kind,
                "thread_id": thread.id,
                "post_id": post.id,
                "assignment_id": assignment_id,
                "message": "",
                "created_at": now,
            }
            for uid, kind in kinds.items()
        ],
    )


def _post_mail(user_id: int, kind: str, title: str) -> outbox.Mail:
    text = _text(kind, title, "")
    return outbox.Mail(user_id, kind, _subject(kind, title, text), text)


def _subject(kind: str, title: str | None, text: str) -> str:
    if title is not None:
        if kind in (REPLY, FOLLOWED):
            return f"Re: {title}"  # mails about one thread thread together in mail clients
        if kind == HIDDEN:
            return f"Your post in “{title}” was hidden"
        if kind == RESTORED:
            return f"Your post in “{title}” was restored"
    return text if len(text) <= 120 else text[:119] + "…"


def _text(kind: str, title: str, message: str) -> str:
    if kind == REPLY:
        return f"Someone replied to your post in “{title}”."
    if kind == FOLLOWED:
        return f"There is a new reply in “{title}”, a thread you follow."
    if kind == HIDDEN:
        return f"A moderator hid your post in “{title}”. Reason: {message}"
    if kind == RESTORED:
        return f"A moderator restored your post in “{title}”."
    return message


def _require_person(actor: Actor) -> int:
    if actor.user_id is None:
        from services.errors import NotFound

        raise NotFound("Sign in to see your notifications.")
    return actor.user_id


async def unread_count(session: AsyncSession, *, actor: Actor) -> int:
    """How many of my notifications are unread (0 for someone not signed in): one query,
    for the header's badge."""
    if actor.user_id is None:
        return 0
    unread = await session.scalar(
        select(sa.func.count()).where(
            Notification.user_id == actor.user_id, col(Notification.read_at).is_(None)
        )
    )
    return unread or 0


def _replier(actor: Actor, kind: str, row: Any) -> str | None:
    """Who wrote the reply, as this reader may know them (never a hidden or deleted post's
    author; an anonymous reply reads as its alias unless the reader may know the author)."""
    if kind not in (REPLY, FOLLOWED) or row.author_id is None:
        return None
    if row.deleted_at is not None or row.hidden_at is not None:
        return None
    scope = DiscussionScope(
        cohort_id=row.cohort_id,
        assignment_id=row.assignment_id,
        assignment_phase=row.phase,
        allow_anonymous=row.allow_anonymous,
        question_id=row.question_id,
        post_first=False,
        has_posted=False,
    )
    return presenters.discussion_name(
        actor,
        scope,
        author_id=row.author_id,
        anonymous=row.anonymous,
        display_name=row.display_name,
        alias=row.alias,
    )


def _read_text(kind: str, title: str, message: str, replier: str | None) -> str:
    if replier is not None and kind == REPLY:
        return f"{replier} replied to your post in “{title}”."
    if replier is not None and kind == FOLLOWED:
        return f"{replier} replied in “{title}”, a thread you follow."
    return _text(kind, title, message)


async def list_notifications(session: AsyncSession, *, actor: Actor) -> NotificationsView:
    """My notifications, newest first, with the unread count."""
    user_id = _require_person(actor)
    unread = await unread_count(session, actor=actor)
    rows: Any = await session.execute(
        sa.select(
            Notification,
            col(Thread.public_id).label("thread"),
            col(Thread.title).label("title"),
            col(Post.public_id).label("post"),
            col(Post.author_id).label("author_id"),
            col(Post.anonymous).label("anonymous"),
            col(Post.deleted_at).label("deleted_at"),
            col(Post.hidden_at).label("hidden_at"),
            col(User.display_name).label("display_name"),
            col(Alias.name).label("alias"),
            col(Question.id).label("question_id"),
            col(Assignment.id).label("assignment_id"),
            col(Assignment.cohort_id).label("cohort_id"),
            col(Assignment.phase).label("phase"),
            col(Assignment.allow_anonymous_posts).label("allow_anonymous"),
        )
        .outerjoin(Thread, col(Thread.id) == col(Notification.thread_id))
        .outerjoin(Post, col(Post.id) == col(Notification.post_id))
        .outerjoin(User, col(User.id) == col(Post.author_id))
        .outerjoin(Question, col(Question.id) == col(Thread.question_id))
        .outerjoin(Assignment, col(Assignment.id) == col(Question.assignment_id))
        .outerjoin(
            Alias,
            (col(Alias.assignment_id) == col(Question.assignment_id))
            & (col(Alias.user_id) == col(Post.author_id)),
        )
        .where(col(Notification.user_id) == user_id)
        .order_by(col(Notification.id).desc())
        .limit(MAX_LISTED)
    )
    items = []
    for row in rows.all():
        n = row[0]
        replier = _replier(actor, n.kind, row)
        items.append(
            NotificationView(
                id=str(n.id),
                kind=n.kind,
                message=_read_text(n.kind, row.title or "a thread", n.message, replier),
                thread=row.thread,
                post=row.post,
                replier=replier,
                created_at=n.created_at.replace(second=0, microsecond=0),
                read=n.read_at is not None,
            )
        )
    return NotificationsView(unread=unread, items=items)


async def mark_read(
    session: AsyncSession, *, actor: Actor, ids: list[str] | None = None
) -> NotificationsView:
    """Mark some (or all) of my notifications read."""
    user_id = _require_person(actor)
    query = sa.update(Notification).where(
        col(Notification.user_id) == user_id, col(Notification.read_at).is_(None)
    )
    if ids is not None:
        numbers = [int(i) for i in ids if i.isdigit()]
        query = query.where(col(Notification.id).in_(numbers))
    await session.execute(
        query.values(read_at=utcnow()).execution_options(synchronize_session=False)
    )
    return await list_notifications(session, actor=actor)
