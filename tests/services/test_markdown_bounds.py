"""A markdown render that passes its deadline is refused *and stopped*: it does not go on
parsing in a thread after the request has been answered (issue 10, finding 6)."""

from __future__ import annotations

import threading
import time

import pytest

from services import markdown
from services.errors import Invalid


def _render_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "markdown-render"]


# The stop is an exception raised inside the render thread; when it lands in a garbage-
# collector callback there, Python reports it as "ignored" and the stop is sent again.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_render_past_its_deadline_is_refused_and_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A parse that would run for 30 s of pure-Python bytecode: only the stop ends it sooner,
    # however loaded the machine is (a real heavy input may finish before a starved event
    # loop notices its deadline, which made this test flaky).
    finished: list[bool] = []

    class Spinning:
        def render(self, text: str) -> str:
            until = time.monotonic() + 30
            while time.monotonic() < until:
                pass
            finished.append(True)
            return text

    monkeypatch.setattr(markdown, "_parser", lambda: Spinning())
    monkeypatch.setattr(markdown, "RENDER_DEADLINE_SECONDS", 0.01)
    with pytest.raises(Invalid) as refused:
        await markdown.render_markdown_bounded("Any *text*.")
    assert "too complex" in str(refused.value.problems[0].message)
    for thread in _render_threads():
        thread.join(timeout=60)
    assert _render_threads() == []
    assert finished == []  # the parse was stopped, not left to finish


async def test_ordinary_text_renders_within_the_deadline() -> None:
    html = await markdown.render_markdown_bounded("A *secure* base.")
    assert html == "<p>A <em>secure</em> base.</p>\n"
