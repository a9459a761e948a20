"""Unlinkability across contexts (SECURITY.md, "Linkage"; issue 10).

- Linkage: everything a classmate can read about the discussion and the gallery is
  collected as (label, text) pairs; no text may appear under two identities (a name and an
  alias, or two pseudonyms), which is how a named answer shown as an exemplar under its
  author's alias unmasked every anonymous post under that alias.
- Differential: two worlds that differ only in who wrote an anonymous post (and in whose
  named work is an exemplar); everything a classmate receives — thread pages and JSON,
  question pages, search, notifications, gallery, SSE, the posts export — is byte-identical
  once random ids, aliases and times are normalized.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import discussions, exemplars, presenters, websessions
from services.db import make_engine, make_sessionmaker, transaction
from services.models import Alias, ExemplarKind, OutboxMessage, Post, Thread, User, WebSession
from tests.conftest import BACKENDS, client_for, make_settings, migrated_worlds
from tests.discussion_support import build_forum
from tests.web.canary_support import Step, route_names
from tests.web.review_scenario import normalize
from web import routes_discussions
from web.app import create_app

GENERIC = {presenters.A_CLASSMATE, presenters.ANONYMOUS_CLASSMATE}
TAG = re.compile(r"<[^>]+>")


@dataclass
class World:
    assignment_id: int
    questions: list[int]
    threads: list[str]
    reader: httpx.AsyncClient


async def build_world(asgi: Any, sessions: async_sessionmaker[AsyncSession], *, anon: str) -> World:
    """Ada and Ben each write a named thread; `anon` writes an anonymous one; a moderator
    publishes Ada's named answer and the anonymous one as exemplars. Chen reads."""
    async with transaction(sessions) as session:
        forum = await build_forum(session)
        made = []
        for who, q, title, body, anonymous in [
            ("ada", 0, "On attunement", "Ada's named answer about attunement.", False),
            ("ben", 0, "On safety", "Ben's named answer about safety.", False),
            (anon, 1, "Privately", "The anonymous answer about my own history.", True),
        ]:
            actor = await forum.actor(session, who)
            thread = await discussions.create_thread(
                session, actor=actor, question_id=forum.question_ids[q], title=title,
                body=body, anonymous=anonymous,
            )  # fmt: skip
            made.append(thread)
        mona = await forum.actor(session, "mona")
        for thread in (made[0], made[2]):
            post = await session.scalar(select(Post.public_id).where(Post.thread_id == thread.id))
            await exemplars.nominate(
                session, actor=mona, assignment_id=forum.assignment_id, kind=ExemplarKind.post,
                source=post, question_id=thread.question_id, publish=True, note="Well put.",
            )  # fmt: skip
        # Chen replies to each thread, so the authors get notifications to compare too.
        chen = await forum.actor(session, "chen")
        for thread in made:
            await discussions.reply(
                session, actor=chen, thread_id=thread.public_id, body="Thanks, agreed."
            )
        # A moderator answers in each: Chen, who follows them now, hears of it.
        for thread in made:
            await discussions.reply(
                session, actor=mona, thread_id=thread.public_id, body="Good discussion."
            )
        key, row = await websessions.create(
            session, policy=websessions.SessionPolicy(), user_id=forum.users["chen"]
        )
    reader = client_for(asgi)
    reader.cookies.set("peerboard_session", key)
    reader.headers["X-CSRF-Token"] = row.csrf_token
    return World(forum.assignment_id, forum.question_ids, [t.public_id for t in made], reader)


def plan(w: World) -> list[str]:
    a, q0, q1 = w.assignment_id, w.questions[0], w.questions[1]
    return [
        f"/questions/{q0}", f"/questions/{q1}",
        f"/api/v1/questions/{q0}/threads", f"/api/v1/questions/{q1}/threads",
        *[f"/threads/{t}" for t in w.threads],
        *[f"/api/v1/threads/{t}" for t in w.threads],
        *[f"/api/v1/threads/{t}/events?poll=1&last_event_id=0" for t in w.threads],
        "/api/v1/search?q=answer", "/search?q=answer",
        "/api/v1/notifications", "/notifications",
        f"/assignments/{a}/exemplars", f"/api/v1/assignments/{a}/exemplars",
        f"/api/v1/assignments/{a}/exports/posts.json", f"/api/v1/assignments/{a}/exports/posts.csv",
    ]  # fmt: skip


async def read_all(w: World) -> list[tuple[str, httpx.Response]]:
    out = []
    for path in plan(w):
        response = await w.reader.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        out.append((path, response))
    return out


def text_of(html: str) -> str:
    return " ".join(TAG.sub(" ", html).split())


def labelled(responses: list[tuple[str, httpx.Response]]) -> dict[str, set[str]]:
    """Every piece of content the reader saw, with the identities it was shown under."""
    seen: dict[str, set[str]] = defaultdict(set)
    for path, response in responses:
        if not path.startswith("/api/v1/") or "events" in path or path.endswith(".csv"):
            continue
        data = response.json()
        if path.endswith("/exemplars"):
            for e in data["items"] if isinstance(data, dict) else data:
                seen[text_of(e["body_html"])].add(e["attribution_label"])
        elif "/threads/" in path:
            for post in [data["opening"], *data["posts"]]:
                if post.get("author"):
                    seen[text_of(post["body_html"])].add(post["author"]["name"])
        elif path.endswith("posts.json"):
            for row in data:
                if row["author"]:
                    seen[" ".join(row["body"].split())].add(row["author"])
    return seen


async def test_no_content_is_shown_under_two_identities(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    w = await build_world(asgi, sessions, anon="ada")
    seen = labelled(await read_all(w))
    assert any("named answer about attunement" in t for t in seen)  # the scan saw content
    linked = {text: labels - GENERIC for text, labels in seen.items() if len(labels - GENERIC) > 1}
    assert linked == {}, "one text under two identities links them"
    async with transaction(sessions, write=False) as session:
        aliases = set((await session.execute(select(Alias.name))).scalars())
    gallery = next(r for p, r in await read_all(w) if p.endswith("/exemplars"))
    assert not any(alias in gallery.text for alias in aliases), "no alias in the gallery"
    await w.reader.aclose()


@pytest.fixture(params=BACKENDS)
async def two_worlds(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Any]]:
    """Two migrated databases (SQLite files, or PostgreSQL databases), each with its app."""
    async for urls in migrated_worlds(request, tmp_path, backend=request.param, prefix="link"):
        made = []
        for url in urls:
            engine = make_engine(url)
            manager = LifespanManager(create_app(make_settings(url)))
            await manager.__aenter__()
            made.append((manager, engine))
        yield [(m.app, make_sessionmaker(e)) for m, e in made]
        for manager, engine in made:
            await manager.__aexit__(None, None, None)
            await engine.dispose()


async def opaque(sessions: async_sessionmaker[AsyncSession]) -> tuple[set[str], list[str]]:
    """Random ids and tokens (replaced by one placeholder), and aliases in the order they
    were drawn (each replaced by its own placeholder, so that which posts share an alias is
    kept and compared)."""
    async with transaction(sessions, write=False) as session:
        ids: set[str] = set()
        for column in (Thread.public_id, Post.public_id, WebSession.csrf_token):
            ids.update((await session.execute(select(column))).scalars())
        from services.models import Exemplar

        ids.update((await session.execute(select(Exemplar.public_id))).scalars())
        aliases = list(
            (await session.execute(select(Alias.name).order_by(col(Alias.id)))).scalars()
        )
    return ids, aliases


def normalized(blob: bytes, ids: set[str], aliases: list[str]) -> bytes:
    out = normalize(blob, ids=ids, tokens=set())
    for i, alias in enumerate(aliases):
        out = out.replace(alias.encode(), f"<ALIAS{i}>".encode())
    # A random id that starts with "-" is exported as "'-…" (spreadsheet formula guard).
    out = out.replace(b"'<ID>", b"<ID>")
    return re.sub(rb"(?m)^(etag): .*$", b"", out)


def writes(w: World, mine: str, theirs: str) -> list[Step]:
    """What the classmate does on every discussion route (reads first, then writes):
    `mine` is one of their own replies, `theirs` the anonymous post."""
    q0, t0, t2 = w.questions[0], w.threads[0], w.threads[2]
    return [
        ("discussions:question", "GET", f"/questions/{q0}", {}),
        ("discussions:thread", "GET", f"/threads/{t2}", {}),
        ("discussions:search", "GET", "/search?q=answer", {}),
        ("discussions:notifications", "GET", "/notifications", {}),
        ("discussions:flags", "GET", "/cohorts/psy/flags", {}),
        ("api:threads:list", "GET", f"/api/v1/questions/{q0}/threads", {}),
        ("api:threads:detail", "GET", f"/api/v1/threads/{t2}", {}),
        ("api:threads:events", "GET", f"/api/v1/threads/{t2}/events?poll=1&last_event_id=0", {}),
        ("api:posts:revisions", "GET", f"/api/v1/posts/{theirs}/revisions", {}),
        ("api:moderation:flags", "GET", "/api/v1/cohorts/psy/flags", {}),
        ("api:search", "GET", "/api/v1/search?q=answer", {}),
        ("api:notifications:list", "GET", "/api/v1/notifications", {}),
        (
            "api:questions:discussion",
            "PATCH",
            f"/api/v1/questions/{q0}/discussion",
            {"json": {"post_first": True}},
        ),
        (
            "api:threads:follow",
            "PUT",
            f"/api/v1/threads/{t2}/follow",
            {"json": {"following": True}},
        ),
        ("api:posts:vote", "PUT", f"/api/v1/posts/{theirs}/vote", {"json": {"up": True}}),
        ("discussions:post:vote", "POST", f"/posts/{theirs}/vote", {"data": {"up": "0"}}),
        (
            "api:posts:flag",
            "POST",
            f"/api/v1/posts/{theirs}/flags",
            {"json": {"reason": "other", "note": "?"}},
        ),
        ("discussions:post:flag", "POST", f"/posts/{theirs}/flag", {"data": {"reason": "spam"}}),
        (
            "api:posts:edit",
            "PATCH",
            f"/api/v1/posts/{mine}",
            {"json": {"body": "Thanks, agreed. (edited)", "version": 1}},
        ),
        (
            "discussions:post:edit",
            "POST",
            f"/posts/{mine}/edit",
            {"data": {"body": "Thanks, agreed again.", "version": "2"}},
        ),
        ("api:posts:create", "POST", f"/api/v1/threads/{t2}/posts", {"json": {"body": "More."}}),
        ("discussions:reply", "POST", f"/threads/{t0}/posts", {"data": {"body": "Yes."}}),
        (
            "api:threads:create",
            "POST",
            f"/api/v1/questions/{q0}/threads",
            {"json": {"title": "Mine", "body": "A third view."}},
        ),
        (
            "discussions:thread:create",
            "POST",
            f"/questions/{q0}/threads",
            {"data": {"title": "Mine too", "body": "A fourth view."}},
        ),
        (
            "api:moderation:act",
            "POST",
            "/api/v1/moderation/actions",
            {"json": {"action": "hide", "target": theirs, "reason": "x"}},
        ),
        (
            "discussions:moderate",
            "POST",
            "/moderation",
            {"data": {"action": "hide", "target": theirs, "reason": "x"}},
        ),
        ("api:notifications:read", "POST", "/api/v1/notifications/read", {"json": {}}),
        ("discussions:notifications:read", "POST", "/notifications/read", {"data": {}}),
        ("discussions:post:delete", "POST", f"/posts/{mine}/delete", {"data": {}}),
        ("api:posts:delete", "DELETE", f"/api/v1/posts/{mine}", {}),
    ]


async def drive(w: World, sessions: async_sessionmaker[AsyncSession]) -> list[bytes]:
    """The classmate's writes and reads on every discussion route, recorded."""
    async with transaction(sessions, write=False) as session:
        chen = await session.scalar(select(User.id).where(User.display_name == "Chen"))
        mine = await session.scalar(
            select(Post.public_id).where(Post.author_id == chen).order_by(col(Post.id))
        )
        theirs = await session.scalar(
            select(Post.public_id).where(col(Post.anonymous), col(Post.parent_id).is_(None))
        )
    assert mine and theirs
    out = []
    for _, method, path, kwargs in writes(w, mine, theirs):
        response = await w.reader.request(method, path, **kwargs)
        body = response.content
        if response.status_code == 303:
            body += (await w.reader.get(response.headers["location"])).content
        head = f"{response.status_code}\n".encode()
        head += "".join(f"{k}: {v}\n" for k, v in response.headers.items()).encode()
        out.append(head + b"\n" + body)
    return out


def test_the_classmate_drives_every_discussion_route() -> None:
    w = World(1, [1, 2], ["t0", "t1", "t2"], httpx.AsyncClient())
    covered = {(name, method) for name, method, _, _ in writes(w, "p", "q")}
    assert covered == route_names(routes_discussions)


async def test_a_classmate_cannot_tell_who_wrote_an_anonymous_post(
    two_worlds: list[Any],
) -> None:
    (left_app, left_db), (right_app, right_db) = two_worlds
    left = await build_world(left_app, left_db, anon="ada")  # Ada also has a named exemplar
    right = await build_world(right_app, right_db, anon="ben")
    left_driven, right_driven = await drive(left, left_db), await drive(right, right_db)
    left_seen, right_seen = await read_all(left), await read_all(right)
    (left_ids, left_aliases), (right_ids, right_aliases) = (
        await opaque(left_db),
        await opaque(right_db),
    )
    for i, (one_raw, two_raw) in enumerate(zip(left_driven, right_driven, strict=True)):
        one = normalized(one_raw, left_ids, left_aliases)
        two = normalized(two_raw, right_ids, right_aliases)
        if one != two:
            diff = difflib.unified_diff(
                one.decode().splitlines(), two.decode().splitlines(), lineterm="", n=1
            )
            step = writes(left, "-", "-")[i][:3]
            pytest.fail(f"{step} differs:\n" + "\n".join(list(diff)[:40]))
    for (path, a), (_, b) in zip(left_seen, right_seen, strict=True):
        head_a = "".join(f"{k}: {v}\n" for k, v in a.headers.items()).encode()
        head_b = "".join(f"{k}: {v}\n" for k, v in b.headers.items()).encode()
        one = normalized(head_a + b"\n" + a.content, left_ids, left_aliases)
        two = normalized(head_b + b"\n" + b.content, right_ids, right_aliases)
        if one != two:
            diff = difflib.unified_diff(
                one.decode().splitlines(), two.decode().splitlines(), lineterm="", n=1
            )
            pytest.fail(f"{path} differs:\n" + "\n".join(list(diff)[:40]))
    # And by e-mail: everything the outbox holds for the classmate (replies in the threads
    # they follow, notices) reads the same in both worlds.
    left_mail, right_mail = await mail_for(left_db, "Chen"), await mail_for(right_db, "Chen")
    assert left_mail, "the classmate was sent mail to compare"
    assert [normalized(m, left_ids, left_aliases) for m in left_mail] == [
        normalized(m, right_ids, right_aliases) for m in right_mail
    ]
    await left.reader.aclose()
    await right.reader.aclose()


async def mail_for(sessions: async_sessionmaker[AsyncSession], name: str) -> list[bytes]:
    async with transaction(sessions, write=False) as session:
        uid = await session.scalar(select(User.id).where(User.display_name == name))
        rows = await session.execute(
            select(OutboxMessage.kind, OutboxMessage.subject, OutboxMessage.body,
                   OutboxMessage.link)
            .where(OutboxMessage.user_id == uid)
            .order_by(col(OutboxMessage.id))
        )  # fmt: skip
        return ["\n".join(str(v) for v in row).encode() for row in rows.all()]
