"""Search of discussions within the cohorts a person belongs to.

SQLite uses the FTS5 tables (posts_fts, threads_fts) that triggers keep in step; PostgreSQL
uses `to_tsvector('simple', ...)` with GIN indexes. User input never reaches either query
language as syntax: it is cut into plain words, each quoted (FTS5) or handed to
`plainto_tsquery` (PostgreSQL), so `%`, `_`, quotes, NEAR, AND, `*` and `-` are only text.
Every hit passes the same rules as reading the thread: cohort and assignment visibility,
post-first, hidden and deleted posts, and the per-viewer author presenter.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import policy, presenters
from services.errors import Invalid, Problem
from services.models import Alias, Assignment, Post, Question, Thread, User
from services.policy import Actor, DiscussionScope
from services.views import AuthorView, SearchHitView, SearchView

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
MAX_HITS = 50
_WORD = re.compile(r"\w+", re.UNICODE)


def terms_of(query: str) -> list[str]:
    """The plain words of a query; everything else is dropped."""
    return _WORD.findall(query)[:MAX_TERMS]


def _snippet(body: str, terms: list[str]) -> str:
    lowered = body.lower()
    at = min((i for t in terms if (i := lowered.find(t.lower())) >= 0), default=0)
    start = max(0, at - 60)
    text = body[start : start + 200]
    return ("…" if start else "") + text + ("…" if start + 200 < len(body) else "")


async def search(session: AsyncSession, *, actor: Actor, query: str) -> SearchView:
    """Posts (and thread titles) matching every word of the query, that this viewer may read."""
    if "\x00" in query or len(query) > MAX_QUERY_CHARS:
        raise Invalid(problems=[Problem("is not a usable search", field="q")])
    terms = terms_of(query)
    if not terms or (actor.user_id is None and not actor.is_administrator):
        return SearchView(query=query, hits=[])
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
        post_ids = sa.text("SELECT rowid FROM posts_fts WHERE posts_fts MATCH :m").bindparams(
            m=match
        )
        title_ids = sa.text("SELECT rowid FROM threads_fts WHERE threads_fts MATCH :m").bindparams(
            m=match
        )
        matches = sa.or_(
            col(Post.id).in_(post_ids),
            sa.and_(col(Post.parent_id).is_(None), col(Thread.id).in_(title_ids)),
        )
    else:
        words = " ".join(terms)
        tsq = sa.func.plainto_tsquery("simple", words)
        matches = sa.or_(
            sa.func.to_tsvector("simple", col(Post.body)).op("@@")(tsq),
            sa.and_(
                col(Post.parent_id).is_(None),
                sa.func.to_tsvector("simple", col(Thread.title)).op("@@")(tsq),
            ),
        )
    # Post-first: the questions under which this person has opened a thread.
    posted = set(
        (
            await session.execute(
                select(col(Thread.question_id)).where(Thread.author_id == actor.user_id)
            )
        ).scalars()
    )
    statement: Any = (
        sa.select(
            col(Post.public_id).label("public_id"),
            col(Post.parent_id).label("parent_id"),
            col(Post.author_id).label("author_id"),
            col(Post.anonymous).label("anonymous"),
            col(Post.body).label("body"),
            col(Post.hidden_at).label("hidden_at"),
            col(Thread.public_id).label("thread"),
            col(Thread.title).label("title"),
            col(Thread.author_id).label("thread_author"),
            col(Question.id).label("question_id"),
            col(Question.post_first).label("post_first"),
            col(Assignment.id).label("assignment_id"),
            col(Assignment.cohort_id).label("cohort_id"),
            col(Assignment.phase).label("phase"),
            col(Assignment.allow_anonymous_posts).label("allow_anonymous"),
            col(User.display_name).label("display_name"),
            col(Alias.name).label("alias"),
        )
        .select_from(Post)
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
        .where(matches, col(Post.deleted_at).is_(None), policy.visible_assignments(actor))
        .order_by(col(Post.id).desc())
        .limit(MAX_HITS * 4)
    )
    found = [dict(r) for r in (await session.execute(statement)).mappings()]
    opening_hidden = await _hidden_openings(session, [r["thread"] for r in found])
    hits: list[SearchHitView] = []
    for r in found:
        scope = DiscussionScope(
            cohort_id=r["cohort_id"],
            assignment_id=r["assignment_id"],
            assignment_phase=r["phase"],
            allow_anonymous=r["allow_anonymous"],
            question_id=r["question_id"],
            post_first=r["post_first"],
            has_posted=r["question_id"] in posted,
        )
        # The single-object rules, applied to each hit: the thread, then the post.
        if not policy.can_view_thread(
            actor,
            scope,
            author_id=r["thread_author"],
            hidden=opening_hidden.get(r["thread"], False),
        ):
            continue
        if r["hidden_at"] is not None and not policy.can_read_post_body(
            actor, scope, author_id=r["author_id"], hidden=True
        ):
            continue
        hits.append(
            SearchHitView(
                thread=r["thread"],
                thread_title=r["title"],
                post=r["public_id"] if r["parent_id"] is not None else None,
                question=r["question_id"],
                snippet=_snippet(r["body"], terms),
                author=AuthorView(**presenters.discussion_author_row(actor, scope, r)),
            )
        )
        if len(hits) >= MAX_HITS:
            break
    return SearchView(query=query, hits=hits)


async def _hidden_openings(session: AsyncSession, thread_ids: list[str]) -> dict[str, bool]:
    if not thread_ids:
        return {}
    rows = await session.execute(
        select(col(Thread.public_id), col(Post.hidden_at))
        .join(Post, sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None)))
        .where(col(Thread.public_id).in_(set(thread_ids)))
    )
    return {pid: hidden is not None for pid, hidden in rows.all()}
