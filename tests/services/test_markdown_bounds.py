"""A markdown render that passes its deadline is refused *and stopped*: it does not go on
parsing in a thread after the request has been answered (issue 10, finding 6)."""

from __future__ import annotations

import threading

import pytest

from services import markdown
from services.errors import Invalid

# Long enough that parsing it takes far longer than the shortened deadline below.
HEAVY = ("Some *emphasis*, **strong**, [a link](https://x.org) and `code`.\n\n- a\n- b\n\n") * 1200


def _render_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "markdown-render"]


# The stop is an exception raised inside the render thread; when it lands in a garbage-
# collector callback there, Python reports it as "ignored" and the stop is sent again.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_render_past_its_deadline_is_refused_and_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cleaned: list[int] = []
    clean = markdown.nh3.clean

    def counting_clean(html: str, **kwargs: object) -> str:
        cleaned.append(len(html))  # reached only when the parse ran to its end
        return clean(html, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(markdown.nh3, "clean", counting_clean)
    monkeypatch.setattr(markdown, "RENDER_DEADLINE_SECONDS", 0.01)
    with pytest.raises(Invalid) as refused:
        await markdown.render_markdown_bounded(HEAVY[: markdown.MAX_MARKDOWN_CHARS])
    assert "too complex" in str(refused.value.problems[0].message)
    for thread in _render_threads():
        thread.join(timeout=60)
    assert _render_threads() == []
    assert cleaned == []  # the parse was stopped, not left to finish


async def test_ordinary_text_renders_within_the_deadline() -> None:
    html = await markdown.render_markdown_bounded("A *secure* base.")
    assert html == "<p>A <em>secure</em> base.</p>\n"
