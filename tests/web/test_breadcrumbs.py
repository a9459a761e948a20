"""Every page under a cohort shows the same breadcrumb trail (issue 12, item 7):
Cohorts > cohort name > assignment title > Question N > thread title, as deep as the page
sits, then the page itself. The test walks the demo by following links, as an instructor
and as a student, and checks each page's trail against the database."""

from __future__ import annotations

import html
import re
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services.db import transaction
from services.demo import DEMO_COHORT_NAME, DEMO_COHORT_SLUG
from services.models import Assignment, Question, Thread
from tests.web.test_whats_due import _client, _demo

FOLLOWED = re.compile(r"^/(cohorts|assignments|questions|threads|review-tasks)/")
SKIPPED = ("/exports/", "/api/")
LIMIT = 150  # pages per person: the demo has fewer; a runaway crawl stops here


def _trail(page: str) -> list[tuple[str | None, str, bool]]:
    """The breadcrumb steps of a page: (link, text, is the current page)."""
    navs = re.findall(r'<nav aria-label="Breadcrumb" class="breadcrumbs">(.*?)</nav>', page, re.S)
    assert len(navs) == 1, f"{len(navs)} breadcrumb trails"
    steps = []
    for item in re.findall(r"<li[^>]*>.*?</li>", navs[0], re.S):
        link = re.search(r'href="([^"]+)"', item)
        text = html.unescape(re.sub(r"<[^>]+>", "", item)).strip()
        steps.append((link.group(1) if link else None, text, 'aria-current="page"' in item))
    return steps


async def _facts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(sessions, write=False) as session:
        titles = dict((await session.execute(select(Assignment.id, Assignment.title))).all())
        questions = {
            q: (a, pos)
            for q, a, pos in (
                await session.execute(
                    select(Question.id, Question.assignment_id, Question.position)
                )
            ).all()
        }
        threads = {
            t: (q, title)
            for t, q, title in (
                await session.execute(select(Thread.public_id, Thread.question_id, Thread.title))
            ).all()
        }
    return {"titles": titles, "questions": questions, "threads": threads}


def _expected(path: str, facts: dict[str, Any]) -> list[tuple[str, str]]:
    """The hierarchy a page sits in, (link, text) per step after "Cohorts", when the path
    says it (pages named by a review task are checked for the cohort step only)."""
    cohort = (f"/cohorts/{DEMO_COHORT_SLUG}", DEMO_COHORT_NAME)
    parts = path.strip("/").split("/")
    if parts[0] in ("cohorts", "review-tasks"):
        return [cohort]
    if parts[0] == "assignments":
        a = int(parts[1])
        return [cohort, (f"/assignments/{a}", facts["titles"][a])]
    if parts[0] == "questions":
        q = int(parts[1])
        a, position = facts["questions"][q]
        return [
            cohort,
            (f"/assignments/{a}", facts["titles"][a]),
            (f"/questions/{q}", f"Question {position}"),
        ]
    if parts[0] == "threads":
        q, title = facts["threads"][parts[1]]
        a, position = facts["questions"][q]
        return [
            cohort,
            (f"/assignments/{a}", facts["titles"][a]),
            (f"/questions/{q}", f"Question {position}"),
            (f"/threads/{parts[1]}", title),
        ]
    raise AssertionError(f"a page outside the walk: {path}")


def _kind(path: str) -> str:
    path = re.sub(r"^/(threads|review-tasks)/[^/]+", r"/\1/N", path)
    return re.sub(r"/\d+", "/N", path)


async def _walk(client: Any, facts: dict[str, Any]) -> set[str]:
    # The webhooks page has no link on the cohort's pages (the walk starts there too).
    starts = [f"/cohorts/{DEMO_COHORT_SLUG}", f"/cohorts/{DEMO_COHORT_SLUG}/webhooks"]
    queue, seen, checked = deque(starts), set(starts), set()
    while queue and len(checked) < LIMIT:
        url = queue.popleft()
        response = await client.get(url)
        if response.status_code == 404 and url.endswith("/webhooks"):
            continue  # instructors' only
        assert response.status_code == 200, (url, response.status_code)
        if not response.headers["content-type"].startswith("text/html"):
            continue
        path = urlsplit(url).path
        trail = _trail(response.text)
        assert trail[0] == ("/", "Cohorts", False), (url, trail)
        # Every step but the last is a link; the last, only, is the current page.
        assert all(link and not current for link, _, current in trail[:-1]), (url, trail)
        assert trail[-1][0] is None and trail[-1][2], (url, trail)
        expected = _expected(path, facts)
        steps = trail[1:]
        for i, (link, text) in enumerate(expected):
            got_link, got_text, current = steps[i]
            assert got_text == text, (url, i, trail)
            # The step naming this very page is the current one, not a link to itself.
            assert got_link == (None if current and link == path else link), (url, i, trail)
        if path.startswith("/review-tasks/"):  # cohort, assignment, the paper reviewed
            assert len(steps) == 3 and steps[1][0] in {
                f"/assignments/{a}" for a in facts["titles"]
            }, (url, trail)
        checked.add(path)
        for href in re.findall(r'<a [^>]*href="([^"#]+)', response.text):
            href = html.unescape(href)
            if FOLLOWED.match(href) and not any(s in href for s in SKIPPED) and href not in seen:
                seen.add(href)
                queue.append(href)
    return checked


async def test_every_page_under_a_cohort_shows_the_same_trail(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _demo(sessions)
    facts = await _facts(sessions)
    walked: set[str] = set()
    for subject in ("ivo-instructor", "mona-moderator", "ada-student"):
        client = await _client(asgi, sessions, subject)
        try:
            walked |= await _walk(client, facts)
        finally:
            await client.aclose()
    kinds = {_kind(p) for p in walked}
    # The walk reached every kind of page under a cohort.
    for kind in (
        "/cohorts/demo", "/cohorts/demo/members", "/cohorts/demo/flags", "/cohorts/demo/webhooks",
        "/cohorts/demo/assignments/new", "/assignments/N", "/assignments/N/settings",
        "/assignments/N/questions", "/assignments/N/rubric", "/assignments/N/workspace",
        "/assignments/N/exemplars", "/assignments/N/review-dashboard", "/assignments/N/paper",
        "/assignments/N/review-tasks", "/assignments/N/feedback", "/questions/N", "/threads/N",
        "/review-tasks/N",
    ):  # fmt: skip
        assert kind in kinds, (kind, sorted(kinds))
