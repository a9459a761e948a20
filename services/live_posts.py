"""Live updates of a thread: one reading per batch, one presentation per audience, for
every subscriber of a process (web/live.py's fan-out)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import events, policy
from services.discussions import access_thread, thread_in_scope
from services.models import (
    PostVote,
    Thread,
)
from services.policy import Actor, DiscussionScope
from services.thread_reading import parent_public_ids, present_post_row, some_posts_query

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
    may_have_votes: Collection[int] | None = None,
) -> list[LivePosts | None]:
    """A batch of changed posts for every subscriber at once (None: may no longer read the
    thread). A constant number of queries whatever the number of viewers: the thread and
    its scope, the posts (with their parents' public ids), and the viewers' votes. Each
    audience (staff or not, may reply, may post) is presented once; a viewer's own posts and
    votes are then presented for them from the rows already read.

    `may_have_votes`: the posts whose votes are worth reading (None: all). A post that is
    only new in this batch has none this batch need show: a vote made since has its own
    `post_voted` event, so its post is presented again with that batch."""
    found = await thread_in_scope(session, actor=Actor.system(), thread_id=thread_id)
    if found is None:
        return [None for _ in viewers]
    thread, hidden_at, generic_scope = found
    rows: list[dict[str, Any]] = []
    public_ids: dict[int, str] = {}
    votes: set[tuple[int, int]] = set()
    if post_ids:
        result = await session.execute(
            some_posts_query(),
            {
                "assignment_id": generic_scope.assignment_id,
                "viewer_id": -1,  # nobody's vote: the viewers' votes are read below
                "thread_id": thread.id,
                "post_ids": list(post_ids),
            },
        )
        keys = list(result.keys())
        rows = [dict(zip(keys, r, strict=True)) for r in result.all()]
        public_ids = parent_public_ids(rows)
        user_ids = {v.actor.user_id for v in viewers if v.actor.user_id is not None}
        votable = [r["id"] for r in rows if may_have_votes is None or r["id"] in may_have_votes]
        if user_ids and votable:
            voted = await session.execute(
                select(col(PostVote.post_id), col(PostVote.user_id)).where(
                    col(PostVote.post_id).in_(votable),
                    col(PostVote.user_id).in_(list(user_ids)),
                )
            )
            votes = {(p, u) for p, u in voted.all()}
    probe = policy.AssignmentState(generic_scope.cohort_id, generic_scope.assignment_phase)
    audiences: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}
    personals: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}
    # What a viewer may do here depends only on their standing in this cohort, post-first
    # and whether the thread is theirs: decided once per standing, not once per viewer (a
    # lecture hall is a few standings and a thousand viewers).
    standings: dict[tuple[Any, ...], tuple[DiscussionScope, bool, tuple[Any, ...]] | None] = {}
    # Only these people see anything of their own in this batch (their posts, their votes).
    involved = {r["author_id"] for r in rows} | {u for _, u in votes}
    cohort_id = generic_scope.cohort_id
    made: dict[int, LivePosts] = {}
    out: list[LivePosts | None] = []
    for viewer in viewers:
        actor = viewer.actor
        me = actor.user_id
        standing = (
            actor.is_administrator,
            actor.roles.get(cohort_id),
            me is None,
            viewer.has_posted,
            me is not None and me == thread.author_id,
        )
        if standing in standings:
            decided = standings[standing]
        else:
            decided = standings[standing] = _decide(
                actor, replace(generic_scope, has_posted=viewer.has_posted), probe, thread,
                hidden=hidden_at is not None,
            )  # fmt: skip
        if decided is None:
            out.append(None)
            continue
        scope, staff, key = decided
        shared = audiences.get(key)
        if shared is None:
            # Nobody's own posts and nobody's votes: what anyone of this audience sees.
            generic = Actor(
                user_id=-1 if me is not None else None,
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
        if me is not None and me in involved:
            # One person in several tabs (or on several devices) is presented once.
            personal = personals.get((key, me))
            if personal is not None:
                posts = personal
            else:
                mine = [r for r in rows if r["author_id"] == me or (r["id"], me) in votes]
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
        # Viewers who see the same posts share one LivePosts (and downstream, one rendering).
        shown = made.get(id(posts))
        if shown is None:
            shown = made[id(posts)] = LivePosts(
                locked=thread.locked, pinned=thread.pinned, posts=posts
            )
        out.append(shown)
    return out


def _decide(
    actor: Actor,
    scope: DiscussionScope,
    probe: policy.AssignmentState,
    thread: Thread,
    *,
    hidden: bool,
) -> tuple[DiscussionScope, bool, tuple[Any, ...]] | None:
    """Whether this standing may read the thread now (None: not), and if so its scope,
    whether it is staff, and its audience key."""
    if not policy.can_read_discussion(actor, probe) or not policy.can_view_thread(
        actor, scope, author_id=thread.author_id, hidden=hidden
    ):
        return None
    staff = policy.is_discussion_staff(actor, scope.cohort_id)
    key = (
        staff,
        actor.user_id is not None,
        policy.can_post(actor, scope),
        policy.can_reply(actor, scope, locked=thread.locked),
    )
    return scope, staff, key
