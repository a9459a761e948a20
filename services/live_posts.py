"""Live updates of a thread: one reading per batch, one presentation per audience, for
every subscriber of a process (web/live.py's fan-out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import events, policy
from services.discussions import (
    access_thread,
)
from services.errors import NotFound
from services.models import (
    Assignment,
    Post,
    PostVote,
    Thread,
)
from services.policy import Actor
from services.thread_reading import post_rows_query, present_post_row

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
            policy.with_discussion_scope(
                sa.select(Thread, col(Post.hidden_at)).join(
                    Post,
                    sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None)),
                ),
                col(Thread.question_id),
            ).where(col(Thread.public_id) == thread_id)
        )
    ).first()
    if found is None:
        return [None for _ in viewers]
    thread, hidden_at, *columns = found
    try:
        generic_scope = await policy.discussion_scope_of(
            session, actor=Actor.system(), question_id=thread.question_id, columns=columns
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
