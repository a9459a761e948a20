"""Discussion endpoints, JSON and HTML: parse, one service call in one transaction, render
the per-viewer view. Nothing here decides who may see a name; the presenters did."""

from __future__ import annotations

import logging
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from markupsafe import Markup
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from services import (
    discussions,
    events,
    live_posts,
    moderation,
    notifications,
    policy,
    question_threads,
    search,
    thread_reading,
    visits,
)
from services.db import transaction, unavailability
from services.errors import DomainError, Invalid, NotFound, Problem
from services.models import Event, FlagReason, utcnow
from services.policy import Actor
from services.views import PostView
from web import idempotency as idempotent
from web import live
from web.context import (
    session_state,
    sessions_of,
    templates_of,
    unit_of_work,
    unit_of_work_caller,
)
from web.endpoints.pages import (
    Refusal,
    form_field,
    keep_input,
    page_unit,
    redirect_with_flash,
    render_page,
    require_signed_in,
    safe_path,
)
from web.endpoints.parsing import query_number, read_model, whole_number
from web.ratelimit import FLAG, POST, SEARCH, rate_limits_of
from web.responses import ORJSONResponse, json_response

logger = logging.getLogger(__name__)


class ThreadCreate(BaseModel):
    title: str = Field(max_length=400)
    body: str = Field(max_length=40_000, description="Markdown")
    anonymous: bool = Field(default=False, description="Anonymous to classmates")


class ReplyCreate(BaseModel):
    body: str = Field(max_length=40_000, description="Markdown")
    parent: str | None = Field(default=None, description="The post replied to; omit: the thread")
    anonymous: bool = False


class PostEdit(BaseModel):
    body: str = Field(max_length=40_000)
    version: int = Field(description="The version the edit is based on")


class VoteChange(BaseModel):
    up: bool


class FollowChange(BaseModel):
    following: bool


class FlagCreate(BaseModel):
    reason: FlagReason
    note: str = Field(default="", max_length=2000)


class ModerationAction(BaseModel):
    action: str = Field(description="hide, unhide, dismiss (posts); lock, unlock, pin, unpin")
    target: str = Field(max_length=64, description="A post id (post actions) or thread id")
    reason: str = Field(default="", max_length=1000)


class DiscussionSettings(BaseModel):
    post_first: bool


class MarkRead(BaseModel):
    ids: list[str] | None = Field(default=None, description="Omit to mark all read")


def _thread_query(request: Request) -> dict[str, Any]:
    return {
        "sort": request.query_params.get("sort", "oldest"),
        "page": query_number(request, "page", 1),
        "per_page": query_number(request, "per_page", discussions.DEFAULT_PER_PAGE),
        "focus": request.query_params.get("focus") or None,
    }


async def _mark_read(
    request: Request, actor: Actor, thread_id: str, read_at: datetime, *, needed: bool
) -> None:
    """The reader has now read the thread as it stood at `read_at` (when the request began,
    so a post that came in while the page was read stays new). A unit of work of its own,
    after the read one: reading never takes the write lock. A busy or unreachable database
    costs the mark, never the page that was already read."""
    if not needed or request.method != "GET" or actor.user_id is None:
        return
    try:
        async with transaction(sessions_of(request)) as session:
            await visits.record_visit(session, actor=actor, thread_id=thread_id, read_at=read_at)
    except Exception as error:
        if unavailability(error) is None:
            raise
        logger.warning("thread visit not recorded: the database is %s", unavailability(error))


# --- JSON API ------------------------------------------------------------------------------


async def api_question(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await question_threads.question_discussion(
            session, actor=actor, question_id=request.path_params["question"]
        )
        return json_response(view)


async def api_question_settings(request: Request) -> Response:
    data = await read_model(request, DiscussionSettings)
    question_id = request.path_params["question"]
    async with unit_of_work(request) as (session, actor):
        await question_threads.set_post_first(
            session, actor=actor, question_id=question_id, post_first=data.post_first
        )
        view = await question_threads.question_discussion(
            session, actor=actor, question_id=question_id
        )
    return json_response(view)


async def api_create_thread(request: Request) -> Response:
    data = await read_model(request, ThreadCreate)
    async with unit_of_work(request) as (session, actor):
        await rate_limits_of(request).hit(request, POST, person=actor.user_id)

        async def create() -> Response:
            thread = await discussions.create_thread(
                session,
                actor=actor,
                question_id=request.path_params["question"],
                title=data.title,
                body=data.body,
                anonymous=data.anonymous,
            )
            view = await thread_reading.read_thread(
                session, actor=actor, thread_id=thread.public_id
            )
            location = request.url_for("api:threads:detail", thread=thread.public_id).path
            return ORJSONResponse(view, status_code=201, headers={"Location": location})

        return await idempotent.once(request, session, actor, create)


async def api_thread(request: Request) -> Response:
    query = _thread_query(request)
    began = utcnow()
    async with unit_of_work(request) as (session, actor):
        view = await thread_reading.read_thread(
            session, actor=actor, thread_id=request.path_params["thread"], **query
        )
        needed = await visits.needs_mark(session, actor=actor, thread_id=view["id"])
    await _mark_read(request, actor, view["id"], began, needed=needed)
    return ORJSONResponse(view)


async def _one_post(session: AsyncSession, actor: Actor, post_id: str) -> dict[str, Any]:
    ctx = await discussions.access_post(session, actor=actor, post_id=post_id)
    return await _present_one(session, actor, ctx)


async def _present_one(
    session: AsyncSession, actor: Actor, ctx: discussions.PostContext
) -> dict[str, Any]:
    assert ctx.post.id is not None
    presented = await thread_reading.present_posts(
        session,
        actor=actor,
        scope=ctx.scope,
        thread=ctx.thread,
        post_ids=[ctx.post.id],
    )
    return presented[ctx.post.id]


async def api_reply(request: Request) -> Response:
    data = await read_model(request, ReplyCreate)
    # Every statement of a reply is an indexed read or write of a few rows under the write
    # lock: inline on SQLite (a live reply's latency is mostly thread trips otherwise).
    async with unit_of_work_caller(request, inline=True) as (session, caller):
        actor = caller.actor
        await rate_limits_of(request).hit(request, POST, person=actor.user_id)

        async def create() -> Response:
            replied = await discussions.reply_in_context(
                session,
                actor=actor,
                thread_id=request.path_params["thread"],
                body=data.body,
                parent_id=data.parent,
                anonymous=data.anonymous,
            )
            # Presented from what the reply holds: no query between the reply and its commit
            # (its live event waits for the commit). Only a signed-in person can reply.
            assert caller.user is not None
            view = thread_reading.present_new_post(
                actor, replied, display_name=caller.user.display_name
            )
            return ORJSONResponse(view, status_code=201)

        return await idempotent.once(request, session, actor, create)


async def api_edit_post(request: Request) -> Response:
    data = await read_model(request, PostEdit)
    async with unit_of_work(request) as (session, actor):
        post = await discussions.edit_post(
            session,
            actor=actor,
            post_id=request.path_params["post"],
            body=data.body,
            version=data.version,
        )
        view = await _one_post(session, actor, post.public_id)
    return ORJSONResponse(view)


async def api_delete_post(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await discussions.delete_post(session, actor=actor, post_id=request.path_params["post"])
    return Response(status_code=204)


async def api_revisions(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        rows = await thread_reading.list_revisions(
            session, actor=actor, post_id=request.path_params["post"]
        )
        return json_response(rows)


async def api_vote(request: Request) -> Response:
    data = await read_model(request, VoteChange)
    async with unit_of_work(request) as (session, actor):
        view = await discussions.vote(
            session, actor=actor, post_id=request.path_params["post"], up=data.up
        )
    return json_response(view)


async def api_follow(request: Request) -> Response:
    data = await read_model(request, FollowChange)
    async with unit_of_work(request) as (session, actor):
        view = await discussions.set_following(
            session, actor=actor, thread_id=request.path_params["thread"], following=data.following
        )
    return json_response(view)


async def api_flag(request: Request) -> Response:
    data = await read_model(request, FlagCreate)
    async with unit_of_work(request) as (session, actor):
        await rate_limits_of(request).hit(request, FLAG, person=actor.user_id)
        await moderation.flag_post(
            session,
            actor=actor,
            post_id=request.path_params["post"],
            reason=data.reason,
            note=data.note,
        )
    return Response(status_code=204)


async def api_moderate(request: Request) -> Response:
    data = await read_model(request, ModerationAction)
    async with unit_of_work(request) as (session, actor):
        view = await moderation.moderate(
            session, actor=actor, action=data.action, target=data.target, reason=data.reason
        )
    return json_response(view)


async def api_flag_queue(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        rows = await moderation.flag_queue(
            session, actor=actor, cohort_slug=request.path_params["cohort"]
        )
        return json_response(rows)


async def api_notifications(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await notifications.list_notifications(session, actor=actor)
        return json_response(view)


async def api_mark_read(request: Request) -> Response:
    data = await read_model(request, MarkRead)
    async with unit_of_work(request) as (session, actor):
        view = await notifications.mark_read(session, actor=actor, ids=data.ids)
    return json_response(view)


# --- live updates --------------------------------------------------------------------------


class ThreadFanout:
    """A thread's live posts: each batch read once, presented once per audience, and each
    post's card rendered once per distinct presentation."""

    # Its reads need not agree on one moment: a post read after a later change than its
    # event is presented as it is now (that change's own event follows and shows it again),
    # and a thread gone since shows nothing. So no transaction on SQLite (web/live.py).
    snapshot = False
    # Its reads are a batch of events (at most events.MAX_BATCH), the thread's scope and the
    # posts they name, all by key: inline on SQLite, no thread trips (web/live.py).
    inline = True

    def __init__(self, request: Request, thread_id: str) -> None:
        # The channel is the thread's row id: known once `admit` has found the thread.
        self.key = self.channel = ""
        self.thread_id = thread_id
        self.card = templates_of(request).get_template("_post.html").module.post_card  # type: ignore[attr-defined]
        self.urls = _urls(request, thread_id)

    async def read(self, session: AsyncSession, after_id: int) -> Sequence[Event]:
        return await events.since(session, channel=self.channel, after_id=after_id)

    async def admit(self, session: AsyncSession, actor: Actor) -> live_posts.LiveViewer:
        viewer = await live_posts.admit_live_viewer(session, actor=actor, thread_id=self.thread_id)
        self.key = self.channel = viewer.channel
        return viewer

    async def latest(self, session: AsyncSession) -> int:
        return await events.latest_id(session, channel=self.channel)

    async def render(
        self,
        session: AsyncSession,
        batch: Sequence[Event],
        viewers: Sequence[live_posts.LiveViewer],
    ) -> list[list[tuple[int, str, str]]]:
        ids = [e.post_id for e in batch if e.post_id is not None]
        seen = await live_posts.present_live_posts(
            session,
            thread_id=self.thread_id,
            post_ids=ids,
            viewers=viewers,
            may_have_votes={
                e.post_id for e in batch if e.post_id is not None and e.kind != "post_created"
            },
        )
        # Viewers of one audience share post dicts: serialize each distinct one once.
        made: dict[tuple[int, str], str] = {}
        thread_data: dict[tuple[bool, bool], str] = {}
        out: list[list[tuple[int, str, str]]] = []
        # Viewers sharing a LivePosts share its items too (the feed joins each list once).
        lists: dict[int, list[tuple[int, str, str]]] = {}
        for view in seen:
            if view is None:  # may no longer read the thread: nothing more
                out.append([])
                continue
            shared = lists.get(id(view))
            if shared is not None:
                out.append(shared)
                continue
            items: list[tuple[int, str, str]] = []
            out.append(items)
            lists[id(view)] = items
            for e in batch:
                assert e.id is not None
                if e.post_id is None:
                    state = (view.locked, view.pinned)
                    data = thread_data.get(state)
                    if data is None:
                        payload = {
                            "kind": e.kind,
                            "thread": {"locked": state[0], "pinned": state[1]},
                        }
                        data = thread_data[state] = orjson.dumps(payload).decode()
                    items.append((e.id, e.kind, data))
                    continue
                post = view.posts.get(e.post_id)
                if post is None:
                    continue
                key = (id(post), e.kind)
                data = made.get(key)
                if data is None:
                    html = str(self.card(post, {"id": self.thread_id}, self.urls, "", True))
                    view_json = PostView.model_validate(post).model_dump(mode="json")
                    data = orjson.dumps({"kind": e.kind, "post": view_json, "html": html}).decode()
                    made[key] = data
                items.append((e.id, e.kind, data))
        return out


async def api_thread_events(request: Request) -> Response:
    """One read transaction admits the viewer and finds where to start (web/live.py)."""
    fanout = ThreadFanout(request, request.path_params["thread"])
    return await live.respond(request, fanout=fanout)


# --- pages ---------------------------------------------------------------------------------


async def question_page(request: Request, *, refused: Refusal | None = None) -> Response:
    async with page_unit(request, refused.form if refused else None) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        view = await question_threads.question_discussion(
            session, actor=caller.actor, question_id=request.path_params["question"]
        )
    return render_page(request, "question.html", {"q": view}, refused=refused)


async def thread_create_form(request: Request) -> Response:
    form = await request.form()
    try:
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            await rate_limits_of(request).hit(request, POST, person=caller.actor.user_id)
            thread = await discussions.create_thread(
                session,
                actor=caller.actor,
                question_id=request.path_params["question"],
                title=form_field(form, "title"),
                body=form_field(form, "body"),
                anonymous=form_field(form, "anonymous") == "on",
            )
    except DomainError as error:
        return await keep_input(request, question_page, form, error)
    path = request.app.url_path_for("discussions:thread", thread=thread.public_id)
    return redirect_with_flash(request, str(path), "Your thread is posted.")


async def thread_page(request: Request) -> Response:
    query = _thread_query(request)
    began = utcnow()
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        view = await thread_reading.read_thread(
            session, actor=caller.actor, thread_id=request.path_params["thread"], **query
        )
        needed = await visits.needs_mark(session, actor=caller.actor, thread_id=view["id"])
    await _mark_read(request, caller.actor, view["id"], began, needed=needed)
    urls = _urls(request, view["id"])
    # This page's query, for the no-JavaScript Reply and Flag buttons (a GET form that adds
    # reply_to=ID or flag=ID).
    kept = [(k, str(v)) for k, v in query.items() if v is not None and k != "per_page"]
    if query["per_page"] != discussions.DEFAULT_PER_PAGE:
        kept.append(("per_page", str(query["per_page"])))
    shown = {p["id"]: p for p in (view["opening"], *view["posts"])}
    # Only a post on this page that the viewer may reply to or flag sets the forms.
    wanted = shown.get(request.query_params.get("reply_to", ""))
    reply_to = wanted["id"] if wanted is not None and wanted["can_reply"] else None
    wanted = shown.get(request.query_params.get("flag", ""))
    flag_post = wanted["id"] if wanted is not None and wanted["can_flag"] else None
    replies = _replies_html(request, view, urls)
    context = {
        "t": view,
        "sorts": discussions.SORTS,
        "urls": urls,
        "replies_html": replies,
        "reply_to": reply_to,
        "flag_post": flag_post,
        "keep": kept,
    }
    return render_page(request, "thread.html", context)


# Rendered post fragments, keyed by the identity of the post dict they were made from. The
# service caches its renderings (see thread_reading.read_thread), so a dict object that comes
# back is the very same post as the same class of viewer saw it; the `is` check below makes
# a reused id() harmless. CSRF tokens are per viewer: fragments hold an unguessable marker.
_FRAGMENTS: OrderedDict[int, tuple[dict[str, Any], str]] = OrderedDict()
_FRAGMENTS_SIZE = 20_000
_CSRF_MARK = "csrf-" + secrets.token_hex(16)


def _replies_html(request: Request, view: dict[str, Any], urls: dict[str, str]) -> Markup:
    card = templates_of(request).get_template("_post.html").module.post_card  # type: ignore[attr-defined]
    parts = []
    for post in view["posts"]:
        entry = _FRAGMENTS.get(id(post))
        if entry is not None and entry[0] is post:
            _FRAGMENTS.move_to_end(id(post))
            parts.append(entry[1])
            continue
        html = str(card(post, view, urls, _CSRF_MARK))
        # The viewer's own posts and votes are made afresh for each request: not kept.
        if not post["voted"] and not (post["author"] and post["author"]["is_you"]):
            _FRAGMENTS[id(post)] = (post, html)
        parts.append(html)
    while len(_FRAGMENTS) > _FRAGMENTS_SIZE:
        _FRAGMENTS.popitem(last=False)
    state = session_state(request)
    token = (state.csrf_token if state is not None else None) or ""
    # Tokens are URL-safe base64: nothing in them needs HTML escaping.
    return Markup("".join(parts).replace(_CSRF_MARK, token))  # noqa: S704


_THREAD_MARK = "__THREAD__"
# Per app: each post action's path with __ID__ for the post and __THREAD__ for the thread.
# url_path_for walks every route (~0.5 ms a call), and a lecture hall opening the thread's
# live stream at once asked for eight of them per subscriber.
_URL_TEMPLATES: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _urls(request: Request, thread_id: str) -> dict[str, str]:
    """Each post action's path with __ID__ for the post: url_path_for once per app."""
    found = _URL_TEMPLATES.get(request.app)
    if found is None:

        def path(name: str, **params: str) -> str:
            return str(request.app.url_path_for(name, **params))

        found = _URL_TEMPLATES[request.app] = {
            "vote": path("discussions:post:vote", post="__ID__"),
            "edit": path("discussions:post:edit", post="__ID__"),
            "delete": path("discussions:post:delete", post="__ID__"),
            "flag": path("discussions:post:flag", post="__ID__"),
            "reply": path("discussions:reply", thread=_THREAD_MARK),
            "moderate": path("discussions:moderate"),
            "thread": path("discussions:thread", thread=_THREAD_MARK),
            "nominate": path("exemplars:nominate"),
        }
    return {k: v.replace(_THREAD_MARK, thread_id) for k, v in found.items()}


def _back(request: Request, thread_id: str, anchor: str = "") -> str:
    path = str(request.app.url_path_for("discussions:thread", thread=thread_id))
    return f"{path}#{anchor}" if anchor else path


async def reply_form(request: Request) -> Response:
    form = await request.form()
    thread_id = request.path_params["thread"]
    # A reply's statements are small, as in `api_reply` (a refusal re-renders the page in a
    # unit of its own).
    async with page_unit(request, form, inline=True) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await rate_limits_of(request).hit(request, POST, person=caller.actor.user_id)
        post = await discussions.reply(
            session,
            actor=caller.actor,
            thread_id=thread_id,
            body=form_field(form, "body"),
            parent_id=form_field(form, "parent") or None,
            anonymous=form_field(form, "anonymous") == "on",
        )
    return redirect_with_flash(
        request, _back(request, thread_id, f"post-{post.public_id}"), "Reply posted."
    )


async def _thread_of(session: AsyncSession, actor: Actor, post_id: str) -> str:
    ctx = await discussions.access_post(session, actor=actor, post_id=post_id)
    return ctx.thread.public_id


async def edit_form(request: Request) -> Response:
    form = await request.form()
    post_id = request.path_params["post"]
    version = whole_number(form_field(form, "version"), field="version")
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        thread_id = await _thread_of(session, caller.actor, post_id)
        await discussions.edit_post(
            session,
            actor=caller.actor,
            post_id=post_id,
            body=form_field(form, "body"),
            version=version,
        )
    return redirect_with_flash(
        request, _back(request, thread_id, f"post-{post_id}"), "Your edit is saved."
    )


async def delete_form(request: Request) -> Response:
    form = await request.form()
    post_id = request.path_params["post"]
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        ctx = await discussions.access_post(session, actor=caller.actor, post_id=post_id)
        question_id = ctx.thread.question_id
        thread_id = ctx.thread.public_id
        gone = await discussions.delete_post(session, actor=caller.actor, post_id=post_id)
    if gone:
        path = str(request.app.url_path_for("discussions:question", question=question_id))
        return redirect_with_flash(request, path, "The thread was deleted.")
    return redirect_with_flash(request, _back(request, thread_id), "The post was deleted.")


async def flag_form(request: Request) -> Response:
    form = await request.form()
    post_id = request.path_params["post"]
    try:
        reason = FlagReason(form_field(form, "reason"))
    except ValueError:
        raise Invalid(problems=[Problem("is not a flag reason", field="reason")]) from None
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await rate_limits_of(request).hit(request, FLAG, person=caller.actor.user_id)
        ctx = await discussions.access_post(session, actor=caller.actor, post_id=post_id)
        thread_id, question_id = ctx.thread.public_id, ctx.thread.question_id
        flags = await moderation.flag_post(
            session,
            actor=caller.actor,
            post_id=post_id,
            reason=reason,
            note=form_field(form, "note"),
        )
        # The flag that hides a thread's opening post hides the thread from its readers: the
        # flagger then lands on the question, not on a thread they can no longer read.
        try:
            await discussions.access_thread(session, actor=caller.actor, thread_id=thread_id)
            back = _back(request, thread_id)
        except NotFound:
            back = str(request.app.url_path_for("discussions:question", question=question_id))
    message = "Thank you: a moderator will look at it."
    if flags >= moderation.FLAG_THRESHOLD:
        message += " Enough readers flagged it that it is hidden until then."
    return redirect_with_flash(request, back, message)


async def vote_form(request: Request) -> Response:
    form = await request.form()
    post_id = request.path_params["post"]
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        thread_id = await _thread_of(session, caller.actor, post_id)
        await discussions.vote(
            session, actor=caller.actor, post_id=post_id, up=form_field(form, "up") != "0"
        )
    return redirect_with_flash(
        request, _back(request, thread_id, f"post-{post_id}"), "Vote recorded."
    )


async def moderate_form(request: Request) -> Response:
    form = await request.form()
    back = form_field(form, "back")
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await moderation.moderate(
            session,
            actor=caller.actor,
            action=form_field(form, "action"),
            target=form_field(form, "target"),
            reason=form_field(form, "reason"),
        )
    # Only our own paths: never redirect to another site.
    return redirect_with_flash(request, safe_path(back), "Done.")


async def flags_page(request: Request) -> Response:
    slug = request.path_params["cohort"]
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        queue = await moderation.flag_queue(session, actor=caller.actor, cohort_slug=slug)
        cohort = await policy.access_cohort(session, actor=caller.actor, slug=slug)
    return render_page(request, "flags.html", {"queue": queue, "cohort": cohort})


async def notifications_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        view = await notifications.list_notifications(session, actor=caller.actor)
    return render_page(request, "notifications.html", {"n": view})


async def notifications_read_form(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await notifications.mark_read(session, actor=caller.actor)
    return redirect_with_flash(
        request, str(request.app.url_path_for("discussions:notifications")), "All read."
    )


async def api_search(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await rate_limits_of(request).hit(request, SEARCH, person=actor.user_id)
        view = await search.search(session, actor=actor, query=request.query_params.get("q", ""))
        return json_response(view)


async def search_page(request: Request) -> Response:
    query = request.query_params.get("q", "")
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await rate_limits_of(request).hit(request, SEARCH, person=caller.actor.user_id)
        view = await search.search(session, actor=caller.actor, query=query)
    return render_page(request, "search.html", {"s": view})
