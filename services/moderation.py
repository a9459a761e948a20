"""Moderation of discussions: flags and the per-cohort queue, hiding, locking and pinning.

Every moderator action is written to the audit log (who, what, why, when) in the same
transaction. Three open flags hide a post pending review; the author is told when their
post is hidden, and why.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import audit, events, notifications, policy, presenters
from services.discussions import (
    access_post,
    access_thread,
    clean_text,
)
from services.errors import AlreadyExists, Invalid, NotFound, PermissionDenied, Problem
from services.models import Alias, Flag, FlagReason, Post, Thread, User, utcnow
from services.policy import Actor
from services.views import FlaggedPostView, FlagView, ModerationResultView

FLAG_THRESHOLD = 3
MAX_NOTE_CHARS = 1000
MAX_REASON_CHARS = 500
AUTO_HIDE_REASON = "Hidden automatically after several flags, pending a moderator's review."
POST_ACTIONS = ("hide", "unhide", "dismiss")
THREAD_ACTIONS = ("lock", "unlock", "pin", "unpin")
THREAD_EVENTS = {
    "lock": "thread_locked",
    "unlock": "thread_unlocked",
    "pin": "thread_pinned",
    "unpin": "thread_unpinned",
}


async def flag_post(
    session: AsyncSession, *, actor: Actor, post_id: str, reason: FlagReason, note: str = ""
) -> int:
    """Readers flag other people's posts, once each; at FLAG_THRESHOLD open flags the post is
    hidden pending review. Returns the post's open flag count."""
    ctx = await access_post(session, actor=actor, post_id=post_id)
    post = ctx.post
    assert post.id is not None
    if not policy.can_flag(actor, ctx.scope, author_id=post.author_id):
        raise PermissionDenied("You cannot flag your own post.")
    assert actor.user_id is not None
    note = clean_text(note, field="note", limit=MAX_NOTE_CHARS) if note.strip() else ""
    already = await session.scalar(
        select(sa.func.count()).where(Flag.post_id == post.id, Flag.reporter_id == actor.user_id)
    )
    if already:
        raise AlreadyExists("You have already flagged this post.")
    session.add(Flag(post_id=post.id, reporter_id=actor.user_id, reason=reason, note=note))
    await session.flush()
    open_flags = await _open_flags(session, post.id)
    post.flag_count = open_flags
    if open_flags >= FLAG_THRESHOLD and post.hidden_at is None:
        await _hide(
            session,
            actor=Actor.system(),
            post=post,
            reason=AUTO_HIDE_REASON,
            cohort_id=ctx.scope.cohort_id,
            assignment_id=ctx.scope.assignment_id,
        )
    session.add(post)
    await session.flush()
    await _flags_changed(session, post_id=post.id, assignment_id=ctx.scope.assignment_id)
    return open_flags


async def _flags_changed(session: AsyncSession, *, post_id: int, assignment_id: int) -> None:
    """Flags are staff business: the event goes to the workspace channel only, never to the
    thread's readers (a flag must not tick for the author or the reporter's classmates)."""
    await events.record(
        session,
        channel=events.workspace_channel(assignment_id),
        kind="flags_changed",
        post_id=post_id,
        assignment_id=assignment_id,
    )


async def _open_flags(session: AsyncSession, post_id: int) -> int:
    return (
        await session.scalar(
            select(sa.func.count()).where(Flag.post_id == post_id, col(Flag.resolved_at).is_(None))
        )
    ) or 0


async def _hide(
    session: AsyncSession,
    *,
    actor: Actor,
    post: Post,
    reason: str,
    cohort_id: int,
    assignment_id: int,
) -> None:
    assert post.id is not None
    post.hidden_at = utcnow()
    post.hidden_reason = reason
    session.add(post)
    await audit.record(
        session,
        actor=actor,
        action="post.hide",
        target_type="post",
        target_id=post.public_id,
        cohort_id=cohort_id,
        reason=reason,
    )
    await notifications.notify(
        session,
        user_id=post.author_id,
        kind=notifications.HIDDEN,
        thread_id=post.thread_id,
        post_id=post.id,
        assignment_id=assignment_id,
        message=reason,
    )
    await events.record(
        session,
        channel=events.thread_channel(post.thread_id),
        kind="post_hidden",
        post_id=post.id,
        thread_id=post.thread_id,
        assignment_id=assignment_id,
    )


async def _resolve_flags(session: AsyncSession, *, actor: Actor, post_id: int, how: str) -> None:
    await session.execute(
        sa.update(Flag)
        .where(col(Flag.post_id) == post_id, col(Flag.resolved_at).is_(None))
        .values(resolved_at=utcnow(), resolved_by_id=actor.user_id, resolution=how)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        sa.update(Post)
        .where(col(Post.id) == post_id)
        .values(flag_count=0)
        .execution_options(synchronize_session=False)
    )


async def moderate(
    session: AsyncSession, *, actor: Actor, action: str, target: str, reason: str = ""
) -> ModerationResultView:
    """Staff hide / unhide (with a reason) or dismiss the flags of a post, and lock / unlock
    / pin / unpin a thread; each action is audited."""
    if action not in POST_ACTIONS + THREAD_ACTIONS:
        allowed = ", ".join(POST_ACTIONS + THREAD_ACTIONS)
        raise Invalid(problems=[Problem(f"must be one of {allowed}", field="action")])
    if action in POST_ACTIONS:
        ctx = await access_post(session, actor=actor, post_id=target)
        cohort_id = ctx.scope.cohort_id
    else:
        tctx = await access_thread(session, actor=actor, thread_id=target)
        cohort_id = tctx.scope.cohort_id
    if not policy.can_moderate(actor, cohort_id):
        raise NotFound("No such post or thread.")  # moderation rights are not advertised
    if action in ("hide", "unhide") or reason.strip():
        reason = clean_text(reason, field="reason", limit=MAX_REASON_CHARS)
    if action in POST_ACTIONS:
        post = ctx.post
        assert post.id is not None
        if action == "hide":
            if post.hidden_at is None:
                await _hide(
                    session,
                    actor=actor,
                    post=post,
                    reason=reason,
                    cohort_id=cohort_id,
                    assignment_id=ctx.scope.assignment_id,
                )
            await _resolve_flags(session, actor=actor, post_id=post.id, how="hidden")
        elif action == "unhide":
            if post.hidden_at is not None:
                await notifications.notify(
                    session,
                    user_id=post.author_id,
                    kind=notifications.RESTORED,
                    thread_id=post.thread_id,
                    post_id=post.id,
                    assignment_id=ctx.scope.assignment_id,
                )
            post.hidden_at = None
            post.hidden_reason = None
            session.add(post)
            await _resolve_flags(session, actor=actor, post_id=post.id, how="restored")
            await audit.record(
                session,
                actor=actor,
                action="post.unhide",
                target_type="post",
                target_id=post.public_id,
                cohort_id=cohort_id,
                reason=reason,
            )
            await events.record(
                session,
                channel=events.thread_channel(post.thread_id),
                kind="post_unhidden",
                post_id=post.id,
                thread_id=post.thread_id,
                assignment_id=ctx.scope.assignment_id,
            )
        else:
            await _resolve_flags(session, actor=actor, post_id=post.id, how="dismissed")
            await audit.record(
                session,
                actor=actor,
                action="flags.dismiss",
                target_type="post",
                target_id=post.public_id,
                cohort_id=cohort_id,
                reason=reason,
            )
        await _flags_changed(session, post_id=post.id, assignment_id=ctx.scope.assignment_id)
        await session.flush()
        await session.refresh(post)
        return ModerationResultView(action=action, target=target, hidden=post.hidden_at is not None)
    thread = tctx.thread
    assert thread.id is not None
    if action in ("lock", "unlock"):
        thread.locked = action == "lock"
    else:
        thread.pinned = action == "pin"
    session.add(thread)
    await audit.record(
        session,
        actor=actor,
        action=f"thread.{action}",
        target_type="thread",
        target_id=thread.public_id,
        cohort_id=cohort_id,
        reason=reason,
    )
    await events.record(
        session,
        channel=events.thread_channel(thread.id),
        kind=THREAD_EVENTS[action],
        thread_id=thread.id,
        assignment_id=tctx.scope.assignment_id,
    )
    await session.flush()
    return ModerationResultView(
        action=action, target=target, locked=thread.locked, pinned=thread.pinned
    )


async def flag_queue(
    session: AsyncSession, *, actor: Actor, cohort_slug: str
) -> list[FlaggedPostView]:
    """Staff read the cohort's posts with open flags (and auto-hidden ones), most flagged first."""
    cohort = await policy.access_cohort(session, actor=actor, slug=cohort_slug)
    assert cohort.id is not None
    if not policy.can_moderate(actor, cohort.id):
        raise NotFound("No such cohort.")
    from services.models import Assignment, Question

    rows = await session.execute(
        sa.select(Flag, Post, Thread, col(User.display_name), col(Alias.name), col(Question.id))
        .join(Post, col(Post.id) == col(Flag.post_id))
        .join(Thread, col(Thread.id) == col(Post.thread_id))
        .join(Question, col(Question.id) == col(Thread.question_id))
        .join(Assignment, col(Assignment.id) == col(Question.assignment_id))
        .join(User, col(User.id) == col(Post.author_id))
        .outerjoin(
            Alias,
            sa.and_(
                col(Alias.assignment_id) == col(Assignment.id),
                col(Alias.user_id) == col(Post.author_id),
            ),
        )
        .where(col(Assignment.cohort_id) == cohort.id, col(Flag.resolved_at).is_(None))
        .order_by(col(Flag.id))
    )
    grouped: dict[int, list[Flag]] = defaultdict(list)
    info: dict[int, tuple[Post, Thread, str, str | None, int]] = {}
    for flag, post, thread, author_name, alias_name, qid in rows.all():
        assert post.id is not None and qid is not None
        grouped[post.id].append(flag)
        info[post.id] = (post, thread, author_name, alias_name, qid)
    out = []
    for post_id, flags in grouped.items():
        post, thread, name, alias, question_id = info[post_id]
        scope = await policy.discussion_scope(session, actor=actor, question_id=question_id)
        out.append(
            FlaggedPostView(
                post=post.public_id,
                thread=thread.public_id,
                thread_title=thread.title,
                author=presenters.discussion_author(
                    actor,
                    scope,
                    author_id=post.author_id,
                    anonymous=post.anonymous,
                    display_name=name,
                    alias=alias,
                ),
                body_html=post.body_html,
                hidden=post.hidden_at is not None,
                hidden_reason=post.hidden_reason,
                open_flags=len(flags),
                # Reporters stay unnamed even to staff: a flag is not an accusation by someone.
                flags=[
                    FlagView(
                        reason=f.reason.value,
                        note=f.note,
                        created_at=f.created_at.replace(second=0, microsecond=0),
                    )
                    for f in flags
                ],
            )
        )
    out.sort(key=lambda v: -v.open_flags)
    return out
