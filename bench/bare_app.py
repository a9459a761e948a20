"""The reference for bench/thread_bench.py: a minimal Starlette app, run in its own uvicorn
process (uvloop + httptools, no middleware), serving one thread's rows from the same
database as Peerboard: SQLAlchemy Core → dicts → orjson, and the same rows through a
small Jinja2 template. It reads DATABASE_URL; nothing else of Peerboard is imported."""

from __future__ import annotations

import os
from typing import Any

import jinja2
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
</head><body><main><h1>{{ title }}</h1>
{% for p in posts %}<article class="post depth-{{ [p.depth, 6]|min }}" id="post-{{ p.public_id }}">
<header><strong>{{ p.name }}</strong> <time>{{ p.created_at }}</time> <span>▲ {{ p.score }}</span>
</header><div class="prose">{{ p.body_html|safe }}</div>
<a href="?reply_to={{ p.public_id }}#composer">Reply</a></article>
{% endfor %}</main></body></html>"""
)


def make_app() -> Starlette:
    url = os.environ["DATABASE_URL"]
    engine = create_async_engine(url)
    query = sa.text(
        "SELECT p.public_id, p.parent_id, p.depth, p.body_html, p.version, p.score, "
        "p.created_at, p.anonymous, coalesce(a.name, 'Anonymous') AS name FROM posts p "
        "JOIN threads t ON t.id = p.thread_id LEFT JOIN aliases a ON a.user_id = p.author_id "
        "AND a.assignment_id = :assignment WHERE t.public_id = :thread ORDER BY p.path"
    )
    assignment_q = sa.text(
        "SELECT q.assignment_id FROM threads t JOIN questions q ON q.id = t.question_id "
        "WHERE t.public_id = :thread"
    )

    async def rows(thread: str) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            assignment = (await conn.execute(assignment_q, {"thread": thread})).scalar()
            result = await conn.execute(query, {"thread": thread, "assignment": assignment})
            keys = list(result.keys())
            return [dict(zip(keys, r, strict=True)) for r in result.all()]

    async def as_json(request: Request) -> Response:
        found = await rows(request.path_params["thread"])
        for r in found:
            r["created_at"] = str(r["created_at"])
        return Response(orjson.dumps({"posts": found}), media_type="application/json")

    async def as_html(request: Request) -> Response:
        found = await rows(request.path_params["thread"])
        return HTMLResponse(PAGE.render(title="Thread", posts=found))

    return Starlette(routes=[Route("/json/{thread}", as_json), Route("/html/{thread}", as_html)])
