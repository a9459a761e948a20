"""Markdown → sanitized HTML, rendered once when text is written, never per view.

markdown-it-py parses CommonMark with raw HTML off; nh3 (ammonia) then keeps an allow-list
of tags and URL schemes, so even a parser bug cannot let script or SVG through.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import queue
import threading
import time

import nh3
from markdown_it import MarkdownIt

from services.errors import Invalid, Problem

MAX_MARKDOWN_CHARS = 100_000
RENDER_DEADLINE_SECONDS = 2.0

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
        "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener"


_PARSERS = threading.local()


def _parser() -> MarkdownIt:
    """This thread's parser. Building one compiles its rule chains (~75 µs, more than
    rendering a short reply); its `render` keeps all per-document state in a fresh state
    object, so a parser is reused, one per thread (render threads and the event loop's)."""
    parser: MarkdownIt | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = MarkdownIt(
            "commonmark", {"html": False, "linkify": False, "typographer": False}
        )
    return parser


def render_markdown(text: str, *, field: str = "body") -> str:
    """Render markdown to HTML that is safe to place in any page as it is."""
    if len(text) > MAX_MARKDOWN_CHARS:
        raise Invalid(
            problems=[Problem(f"is longer than {MAX_MARKDOWN_CHARS:,} characters", field=field)]
        )
    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


class _Stopped(BaseException):
    """Raised inside a render thread whose caller gave up on it."""


def _stop(thread_id: int) -> None:
    # CPython raises the exception in that thread at its next bytecode: markdown-it-py is pure
    # Python, so a runaway parse ends within microseconds instead of running on (holding the
    # GIL) after its request was answered. A thread cannot be stopped any other way.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(_Stopped)
    )


def _stop_until_done(thread: threading.Thread, running: threading.Lock) -> None:
    # The exception can land in a garbage-collector callback that happens to run on that
    # thread, which swallows it: send it again until the parse has let go.
    if thread.ident is None or not thread.is_alive() or not running.locked():
        return
    _stop(thread.ident)
    asyncio.get_running_loop().call_later(0.05, _stop_until_done, thread, running)


_Job = tuple[str, str, "concurrent.futures.Future[str]"]
# Idle render threads kept for the next renders (more are started when all are busy).
MAX_IDLE_RENDERERS = 4


class _Renderer:
    """A render thread that takes one job at a time and waits for the next. Starting a
    thread per render cost ~1 ms (the caller waits for the new thread to get the GIL and
    report in); handing a job to a waiting one costs a queue put. A renderer whose job
    overran is retired: it is stopped mid-parse, ends, and is never handed a job again."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.running = threading.Lock()  # held while a render may still be stopped
        self.retired = False
        self.thread = threading.Thread(target=self._serve, name="markdown-render", daemon=True)
        self.thread.start()

    @classmethod
    def take(cls, job: _Job) -> _Renderer:
        """An idle renderer (or a new one), handed `job`. Handed under the idle list's lock:
        a renderer decides to end under it too, and only unlisted with no job waiting, so
        none ends with a job it was handed."""
        with _IDLE_LOCK:
            while _IDLE:
                renderer = _IDLE.pop()
                if not renderer.retired and renderer.thread.is_alive():
                    renderer.jobs.put(job)
                    return renderer
        renderer = cls()
        renderer.jobs.put(job)
        return renderer

    def _serve(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                text, field, done = job
                with self.running:
                    # A job whose caller gave up before it started is cancelled: skipped.
                    # Marked running under the lock, so a caller that finds it cannot be
                    # cancelled any more knows this thread holds the lock until it is done.
                    if done.set_running_or_notify_cancel():
                        try:
                            html = render_markdown(text, field=field)
                        except _Stopped:
                            raise
                        except BaseException as exc:  # handed to the caller, as to_thread would
                            done.set_exception(exc)
                        else:
                            done.set_result(html)
                # `retired` is set before any stop is sent: a renderer that may still be
                # hit by one never goes back to the idle list.
                if self.retired:
                    return
                with _IDLE_LOCK:
                    # Listed once: a thread handed a second job before it went back (one
                    # queued behind another) is still listed from the first. Listed twice,
                    # it could be taken from its second entry after ending (the list full)
                    # and that job never answered. It ends only unlisted and with no job
                    # (`take` hands jobs under this lock).
                    if self not in _IDLE:
                        if len(_IDLE) >= MAX_IDLE_RENDERERS and self.jobs.empty():
                            return
                        _IDLE.append(self)
        except _Stopped:
            return  # stopped mid-render, or just after: this thread ends

    def give_up(self, done: concurrent.futures.Future[str]) -> None:
        """The caller stops waiting for `done`: a job not started yet is cancelled (and
        skipped); one that runs is stopped, and this renderer retired."""
        if done.cancel():
            return
        self.retired = True
        if self.running.acquire(blocking=False):  # it finished just now: nothing to stop
            self.running.release()
            self.jobs.put(None)
        elif self.thread.ident is not None:
            _stop_until_done(self.thread, self.running)


_IDLE: list[_Renderer] = []
_IDLE_LOCK = threading.Lock()


class Rendering:
    """A bounded render, started now and awaited later: a reply starts rendering its body
    before its checks and reads, so the render thread works while they wait on the
    database. The deadline runs from the start; a render nobody awaits must be given up."""

    def __init__(self, text: str, *, field: str = "body") -> None:
        if len(text) > MAX_MARKDOWN_CHARS:
            raise Invalid(
                problems=[Problem(f"is longer than {MAX_MARKDOWN_CHARS:,} characters", field=field)]
            )
        self.field = field
        self.deadline = time.monotonic() + RENDER_DEADLINE_SECONDS
        self.done: concurrent.futures.Future[str] = concurrent.futures.Future()
        self.renderer = _Renderer.take((text, field, self.done))
        self.settled = False  # answered, or given up: nothing more to stop

    async def result(self) -> str:
        """The HTML, or Invalid once the deadline has passed (the render is stopped). A
        render that finished in time is answered however late it is asked for (a reply may
        have waited on a lock meanwhile)."""
        if self.done.done() and not self.done.cancelled():
            self.settled = True
            return self.done.result()
        try:
            # shield: the timeout must not cancel `done` behind our back (give_up decides).
            waiting = asyncio.wrap_future(self.done)
            html = await asyncio.wait_for(
                asyncio.shield(waiting), max(0.0, self.deadline - time.monotonic())
            )
            self.settled = True
            return html
        except asyncio.CancelledError:  # the request itself was given up: so is the render
            self.give_up()
            raise
        except TimeoutError:
            self.give_up()
            raise Invalid(
                problems=[
                    Problem("is too complex to render; simplify its formatting", field=self.field)
                ]
            ) from None

    def give_up(self) -> None:
        """Not wanted (the request failed first, or timed out): a job not started is
        cancelled, a running one stopped. A finished one needs nothing: its thread is
        already waiting for the next job."""
        if not self.settled and not self.done.done():
            self.renderer.give_up(self.done)
        self.settled = True


async def render_markdown_bounded(text: str, *, field: str = "body") -> str:
    """Render off the event loop; input that takes too long is refused, and its rendering
    stopped (bounded in work, not only in waiting)."""
    return await Rendering(text, field=field).result()
