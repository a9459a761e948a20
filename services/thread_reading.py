"""Reading a thread as one viewer may see it: its posts in tree order, each presented
through policy and the identity gate (services/presenters.py), with a rendering cache keyed
by the thread's latest event (any change to a post writes an event, so it never serves
stale posts), and a post's revisions.

The reply tree is stored with a materialized `path`, so one query reads a whole thread in
tree order. Reading costs a constant number of queries whatever the thread's size: the
posts come back as Core rows (no ORM entities) with their author's name and alias joined
in, and the presenter turns each row into what this viewer may see.
"""

from __future__ import annotations

import functools
import math
import time
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from services import events, policy, presenters
from services.discussions import (
    DEFAULT_PER_PAGE,
    DELETED_HTML,
    DISPLAY_DEPTH,
    HIDDEN_HTML,
    MAX_PER_PAGE,
    SORTS,
    NewPost,
    _minute,
    access_post,
    access_thread,
)
from services.errors import Invalid, NotFound, Problem
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
)
from services.policy import Actor, DiscussionScope
from services.views import (
    RevisionView,
)

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


# Aliases made once: a fresh aliased() entity costs ~0.7 ms to adapt its columns on first
# use, every time a query is built with one.
_PARENT = aliased(Post, name="parent_post")


def post_rows_query(
    *, assignment_id: Any, viewer_id: Any, with_parent: bool = False
) -> sa.Select[Any]:
    """Posts with their author's name, alias and the viewer's vote: one Core query. With
    `with_parent`, each row's parent's public id too (`parent_public_id`), for a few posts
    read without their parents (a whole thread has them among its rows)."""
    query = sa.select(*POST_COLUMNS, col(PostVote.id).label("my_vote"))
    if with_parent:
        query = query.add_columns(col(_PARENT.public_id).label("parent_public_id")).outerjoin(
            _PARENT, col(_PARENT.id) == col(Post.parent_id)
        )
    return (
        query.select_from(Post)
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


@functools.cache
def some_posts_query() -> sa.Select[Any]:
    """`post_rows_query` with the parents' public ids, for a few posts of one thread (a new
    reply, a live batch), built once: its values are bind parameters (assignment_id,
    viewer_id, thread_id, post_ids). Building such a query costs ~0.2 ms; reading one row,
    less."""
    return post_rows_query(
        assignment_id=sa.bindparam("assignment_id"),
        viewer_id=sa.bindparam("viewer_id"),
        with_parent=True,
    ).where(
        col(Post.thread_id) == sa.bindparam("thread_id"),
        col(Post.id).in_(sa.bindparam("post_ids", expanding=True)),
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
    # Where the thread sits, for the breadcrumb trail: in the same round trip.
    cohort_name_q = (
        select(col(Cohort.name)).where(col(Cohort.id) == scope.cohort_id).scalar_subquery()
    )
    title_q = (
        select(col(Assignment.title))
        .where(col(Assignment.id) == scope.assignment_id)
        .scalar_subquery()
    )
    position_q = (
        select(col(Question.position))
        .where(col(Question.id) == thread.question_id)
        .scalar_subquery()
    )
    # The viewer's votes in this thread, as one string of post ids (one round trip less).
    votes_q = (
        select(sa.func.aggregate_strings(sa.cast(col(PostVote.post_id), sa.String), ","))
        .join(Post, col(Post.id) == col(PostVote.post_id))
        .where(col(Post.thread_id) == thread.id, col(PostVote.user_id) == viewer)
        .scalar_subquery()
    )
    stamp, following, cohort_slug, voted, cohort_name, assignment_title, position = (
        await session.execute(
            sa.select(stamp_q, follow_q, slug_q, votes_q, cohort_name_q, title_q, position_q)
        )
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
        "cohort_name": cohort_name or "",
        "assignment_title": assignment_title or "",
        "question_position": position or 0,
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
    """Several posts of one thread as this viewer may see them (for live updates): one
    query."""
    if not post_ids:
        return {}
    result = await session.execute(
        some_posts_query(),
        {
            "assignment_id": scope.assignment_id,
            "viewer_id": actor.user_id if actor.user_id is not None else -1,
            "thread_id": thread.id,
            "post_ids": list(post_ids),
        },
    )
    rows = [dict(r) for r in result.mappings()]
    public_ids = parent_public_ids(rows)
    return {
        r["id"]: present_post_row(actor, scope, r, locked=thread.locked, public_ids=public_ids)
        for r in rows
    }


def present_new_post(actor: Actor, new: NewPost, *, display_name: str) -> dict[str, Any]:
    """A reply just made, presented to its author from what the reply holds (no query): the
    row `some_posts_query` would read for it, with their own name. A new post has no votes,
    no edits and no moderation yet."""
    post = new.post
    assert post.id is not None
    row = {
        "id": post.id,
        "public_id": post.public_id,
        "parent_id": post.parent_id,
        "author_id": post.author_id,
        "anonymous": post.anonymous,
        "depth": post.depth,
        "body": post.body,
        "body_html": post.body_html,
        "version": post.version,
        "score": post.score,
        "created_at": post.created_at,
        "edited_at": post.edited_at,
        "deleted_at": post.deleted_at,
        "hidden_at": post.hidden_at,
        "hidden_reason": post.hidden_reason,
        "display_name": display_name,
        "alias": new.alias,
        "my_vote": None,
    }
    public_ids = {post.id: post.public_id}
    if post.parent_id is not None and new.parent_public_id is not None:
        public_ids[post.parent_id] = new.parent_public_id
    return present_post_row(actor, new.scope, row, locked=new.thread.locked, public_ids=public_ids)


def parent_public_ids(rows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Row id → public id of the rows and of their parents (rows read `with_parent`)."""
    public_ids = {r["id"]: r["public_id"] for r in rows}
    for r in rows:
        if r["parent_id"] is not None and r["parent_public_id"] is not None:
            public_ids[r["parent_id"]] = r["parent_public_id"]
    return public_ids


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
