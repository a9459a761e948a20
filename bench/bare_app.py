"""The reference for bench/thread_bench.py: a minimal Starlette app, run in its own uvicorn
process (uvloop + httptools, no middleware), serving one thread's rows from the same
database as Peerboard: SQLAlchemy Core → dicts → orjson, and the same rows through a
small Jinja2 template. It reads DATABASE_URL; nothing else of Peerboard is imported."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import jinja2
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
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

    # The bare in-process fan-out for bench/sse_bench.py: a publish puts one payload on
    # every subscriber's bounded queue; each subscriber writes it as an SSE event.
    listeners: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)

    async def subscribe(request: Request) -> Response:
        queue: asyncio.Queue[bytes] = asyncio.Queue(256)
        channel = request.path_params["channel"]

        async def events() -> AsyncIterator[bytes]:
            listeners[channel].add(queue)
            try:
                yield b": open\n\n"
                while True:
                    yield await queue.get()
            finally:
                listeners[channel].discard(queue)

        return StreamingResponse(events(), media_type="text/event-stream")

    async def publish(request: Request) -> Response:
        body = await request.body()
        event = b"event: post_created\ndata: " + body + b"\n\n"
        for queue in list(listeners[request.path_params["channel"]]):
            if not queue.full():
                queue.put_nowait(event)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/json/{thread}", as_json),
            Route("/html/{thread}", as_html),
            Route("/sse/{channel}", subscribe),
            Route("/publish/{channel}", publish, methods=["POST"]),
        ]
    )
