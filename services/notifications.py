"""In-app notifications: replies to your posts, and new posts in threads you follow.

A notification stores only what it points at; its text is written when it is read, for
its reader, and never names the person who replied (that person may be anonymous).
The same text goes to the reader's mail outbox, in the same transaction (services/outbox.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import outbox
from services.models import Notification, Post, Thread, utcnow
from services.policy import Actor
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


async def list_notifications(session: AsyncSession, *, actor: Actor) -> NotificationsView:
    """My notifications, newest first, with the unread count."""
    user_id = _require_person(actor)
    unread = await session.scalar(
        select(sa.func.count()).where(
            Notification.user_id == user_id, col(Notification.read_at).is_(None)
        )
    )
    rows = await session.execute(
        select(Notification, col(Thread.public_id), col(Thread.title), col(Post.public_id))
        .outerjoin(Thread, col(Thread.id) == col(Notification.thread_id))
        .outerjoin(Post, col(Post.id) == col(Notification.post_id))
        .where(Notification.user_id == user_id)
        .order_by(col(Notification.id).desc())
        .limit(MAX_LISTED)
    )
    return NotificationsView(
        unread=unread or 0,
        items=[
            NotificationView(
                id=str(n.id),
                kind=n.kind,
                message=_text(n.kind, title or "a thread", n.message),
                thread=thread,
                post=post,
                created_at=n.created_at.replace(second=0, microsecond=0),
                read=n.read_at is not None,
            )
            for n, thread, title, post in rows.all()
        ],
    )


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
