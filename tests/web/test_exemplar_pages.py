"""Curating the exemplar gallery from its page, without JavaScript: move up / down, publish
or unpublish, and edit the note, each a small form that posts back with the CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import assignments, cohorts, discussions, exemplars, phases, policy
from services.db import transaction
from services.demo import fixture_text
from services.importing import parse_assignment_text
from services.models import ExemplarKind, Phase, Post, Role
from services.policy import Actor
from tests.conftest import People


@dataclass
class Gallery:
    assignment_id: int
    question_id: int
    ids: dict[str, str]  # title -> exemplar public id, in nomination order
    mona: httpx.AsyncClient
    ada: httpx.AsyncClient

    @property
    def page(self) -> str:
        return f"/assignments/{self.assignment_id}/exemplars?question={self.question_id}"


@pytest.fixture
async def gallery(people: People, sessions: async_sessionmaker[AsyncSession]) -> Gallery:
    """Cohort psy: mona (moderator) curates three exemplars of ada's posts in question 1."""
    system = Actor.system()
    async with transaction(sessions) as session:
        await cohorts.create_cohort(session, actor=system, slug="psy", name="PSY")
    mona = await people.member("mona", "psy", Role.moderator)
    ada = await people.member("ada", "psy", Role.student)
    author = await people.user("ada")
    ids = {}
    async with transaction(sessions) as session:
        cohort = await cohorts.get_cohort(session, actor=system, slug="psy")
        made = await assignments.import_assignment(
            session, actor=system, cohort=cohort, draft=parse_assignment_text(fixture_text())
        )
        assert made.id is not None
        await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.open)
        detail = await assignments.get_assignment(session, actor=system, assignment_id=made.id)
        question_id = detail.questions[0].id or 0
        ada_actor = await _actor(session, author.id or 0)
        for title in ("First", "Second", "Third"):
            thread = await discussions.create_thread(
                session, actor=ada_actor, question_id=question_id, title=title, body=f"{title}."
            )
            post = await session.scalar(select(Post).where(Post.thread_id == thread.id))
            assert post is not None
            exemplar = await exemplars.nominate(
                session, actor=system, assignment_id=made.id, kind=ExemplarKind.post,
                source=post.public_id, question_id=question_id, note=f"Why {title}.",
            )  # fmt: skip
            ids[title] = exemplar.public_id
    return Gallery(made.id, question_id, ids, mona, ada)


async def _actor(session: AsyncSession, user_id: int) -> Actor:
    return await policy.load_actor(session, user_id=user_id, is_administrator=False)


async def order(g: Gallery) -> list[str]:
    listed = await g.mona.get(
        f"/api/v1/assignments/{g.assignment_id}/exemplars?question={g.question_id}"
    )
    by_id = {v: k for k, v in g.ids.items()}
    return [by_id[e["id"]] for e in listed.json()]


def form_fields(html: str, action: str, button: str) -> dict[str, str]:
    """The fields a browser would send by pressing `button` (its aria-label) in the form
    posting to `action`."""
    for form in re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S):
        if f'action="{action}"' not in form or f'aria-label="{button}"' not in form:
            continue
        fields = {
            unescape(name): unescape(value)
            for name, value in re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form
            )
        }
        pressed = re.search(
            rf'<button[^>]*name="([^"]+)" value="([^"]+)"[^>]*aria-label="{re.escape(button)}"',
            form,
        )
        if pressed:
            fields[pressed[1]] = pressed[2]
        return fields
    raise AssertionError(f"no form posting to {action} with a button labelled {button!r}")


async def test_a_curator_moves_an_exemplar_up_with_the_pages_form(gallery: Gallery) -> None:
    g = gallery
    g.mona.headers.pop("X-CSRF-Token")  # as a browser without JavaScript: the form's token
    page = (await g.mona.get(g.page)).text
    assert "Move up: 'Second'" in page
    # The ends of the gallery cannot move further.
    assert re.search(r"<button [^>]*disabled aria-label=\"Move up: 'First'", page)
    assert re.search(r"<button [^>]*disabled aria-label=\"Move down: 'Third'", page)
    fields = form_fields(page, f"/exemplars/{g.ids['Second']}/move", "Move up: 'Second'")
    assert fields["direction"] == "up" and fields["neighbour"] == g.ids["First"]
    assert fields["csrf_token"]

    moved = await g.mona.post(f"/exemplars/{g.ids['Second']}/move", data=fields)
    assert moved.status_code == 303
    assert moved.headers["location"] == f"{g.page}#exemplar-{g.ids['Second']}"
    assert await order(g) == ["Second", "First", "Third"]
    after = (await g.mona.get(moved.headers["location"])).text
    assert "Moved “Second” up." in after
    assert after.index(f'id="exemplar-{g.ids["Second"]}"') < after.index(
        f'id="exemplar-{g.ids["First"]}"'
    )

    # The same form again is stale (Second is first now): refused, nothing moves.
    again = await g.mona.post(f"/exemplars/{g.ids['Second']}/move", data=fields)
    assert again.status_code == 409 and "text/html" in again.headers["content-type"]
    assert await order(g) == ["Second", "First", "Third"]


async def test_a_student_gets_no_controls_and_cannot_move(gallery: Gallery) -> None:
    g = gallery
    page = await g.ada.get(g.page)
    assert page.status_code == 200 and "Move up" not in page.text  # drafts: ada sees her own
    refused = await g.ada.post(
        f"/exemplars/{g.ids['Second']}/move",
        data={"direction": "up", "version": "1", "neighbour": g.ids["First"]},
    )
    assert refused.status_code == 404
    edited = await g.ada.post(
        f"/exemplars/{g.ids['Second']}/edit", data={"version": "1", "status": "published"}
    )
    assert edited.status_code == 404
    assert await order(g) == ["First", "Second", "Third"]


async def test_a_form_without_the_csrf_token_is_refused(gallery: Gallery) -> None:
    g = gallery
    g.mona.headers.pop("X-CSRF-Token")
    refused = await g.mona.post(
        f"/exemplars/{g.ids['Second']}/move",
        data={"direction": "up", "version": "1", "neighbour": g.ids["First"]},
    )
    assert refused.status_code == 403 and "security token" in refused.text
    assert await order(g) == ["First", "Second", "Third"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"direction": "sideways", "version": "1"}, 422),
        ({"direction": "", "version": "1"}, 422),
        ({"direction": "up"}, 422),  # no version
        ({"direction": "up", "version": "²"}, 422),
        ({"direction": "up", "version": "1", "neighbour": "someone-else"}, 409),
        ({"direction": "up", "version": "7"}, 409),
    ],
)
async def test_bad_input_gets_a_readable_page_and_changes_nothing(
    gallery: Gallery, data: dict[str, str], status: int
) -> None:
    g = gallery
    response = await g.mona.post(f"/exemplars/{g.ids['Second']}/move", data=data)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1" in response.text
    assert await order(g) == ["First", "Second", "Third"]


async def test_the_first_cannot_move_up(gallery: Gallery) -> None:
    g = gallery
    response = await g.mona.post(
        f"/exemplars/{g.ids['First']}/move", data={"direction": "up", "version": "1"}
    )
    assert response.status_code == 409 and "already the first" in unescape(response.text)
    assert (
        await g.mona.post("/exemplars/nope/move", data={"direction": "up", "version": "1"})
    ).status_code == 404


async def test_publish_unpublish_and_edit_the_note_from_the_page(gallery: Gallery) -> None:
    g = gallery
    exemplar = g.ids["Second"]
    page = (await g.mona.get(g.page)).text
    fields = form_fields(page, f"/exemplars/{exemplar}/edit", "Publish 'Second'")
    assert fields["status"] == "published"
    published = await g.mona.post(f"/exemplars/{exemplar}/edit", data=fields)
    assert published.status_code == 303
    assert "is published" in (await g.mona.get(published.headers["location"])).text
    view = (await g.mona.get(f"/api/v1/exemplars/{exemplar}")).json()
    assert view["status"] == "published" and view["version"] == 2

    # The note form is prefilled with the note as written.
    page = (await g.mona.get(g.page)).text
    assert re.search(rf'<textarea id="note-{exemplar}"[^>]*>Why Second.</textarea>', page)
    saved = await g.mona.post(
        f"/exemplars/{exemplar}/edit",
        data={"version": "2", "note": "Names a *concrete* change.", "gallery": ""},
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == (
        f"/assignments/{g.assignment_id}/exemplars#exemplar-{exemplar}"
    )
    view = (await g.mona.get(f"/api/v1/exemplars/{exemplar}")).json()
    assert "<em>concrete</em>" in view["note_html"]

    stale = await g.mona.post(f"/exemplars/{exemplar}/edit", data={"version": "2", "note": "x"})
    assert stale.status_code == 409
    bad = await g.mona.post(f"/exemplars/{exemplar}/edit", data={"version": "3", "status": "x"})
    assert bad.status_code == 422
    nothing = await g.mona.post(f"/exemplars/{exemplar}/edit", data={"version": "3"})
    assert nothing.status_code == 422
    unpublished = await g.mona.post(
        f"/exemplars/{exemplar}/edit",
        data={"version": "3", "status": "draft", "gallery": "https://evil.example/"},
    )
    assert unpublished.status_code == 303
    # The gallery field only picks one of the gallery's own views.
    assert unpublished.headers["location"] == (
        f"/assignments/{g.assignment_id}/exemplars#exemplar-{exemplar}"
    )
    view = (await g.mona.get(f"/api/v1/exemplars/{exemplar}")).json()
    assert view["status"] == "draft" and "<em>concrete</em>" in view["note_html"]


async def test_the_all_view_lists_each_gallery_under_its_own_heading(gallery: Gallery) -> None:
    made = await gallery.mona.post(
        f"/api/v1/assignments/{gallery.assignment_id}/exemplars",
        json={"kind": "sample_paper", "note": "Covers every question."},
    )
    assert made.status_code == 201, made.text
    page = (await gallery.mona.get(f"/assignments/{gallery.assignment_id}/exemplars")).text
    whole, question = page.index(">The whole assignment</h2>"), page.index(">Question 1</h2>")
    assert whole < question
    assert whole < page.index(">The sample paper</h3>") < question
    assert question < page.index(">First</h3>") < page.index(">Second</h3>")
    # One gallery: no headings, the cards are the page's second level.
    single = (await gallery.mona.get(gallery.page)).text
    assert "Question 1</h2>" not in single and ">First</h2>" in single
