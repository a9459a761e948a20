"""Markdown → sanitized HTML, rendered once when text is written, never per view.

markdown-it-py parses CommonMark with raw HTML off; nh3 (ammonia) then keeps an allow-list
of tags and URL schemes, so even a parser bug cannot let script or SVG through.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import threading

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


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


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


async def render_markdown_bounded(text: str, *, field: str = "body") -> str:
    """Render off the event loop; input that takes too long is refused, and its rendering
    stopped (bounded in work, not only in waiting)."""
    if len(text) > MAX_MARKDOWN_CHARS:
        raise Invalid(
            problems=[Problem(f"is longer than {MAX_MARKDOWN_CHARS:,} characters", field=field)]
        )
    done: concurrent.futures.Future[str] = concurrent.futures.Future()
    running = threading.Lock()  # held while the render may still be stopped

    def work() -> None:
        try:
            with running:
                html = render_markdown(text, field=field)
            done.set_result(html)
        except _Stopped:
            pass  # the caller has already answered
        except BaseException as exc:  # handed to the caller, as to_thread would
            done.set_exception(exc)

    # A thread of its own (not the shared executor's): the one that may be stopped.
    thread = threading.Thread(target=work, name="markdown-render", daemon=True)
    thread.start()
    try:
        return await asyncio.wait_for(asyncio.wrap_future(done), RENDER_DEADLINE_SECONDS)
    except TimeoutError:
        if running.acquire(blocking=False):  # it finished just now: nothing to stop
            running.release()
        elif thread.ident is not None:
            _stop_until_done(thread, running)
        raise Invalid(
            problems=[Problem("is too complex to render; simplify its formatting", field=field)]
        ) from None
