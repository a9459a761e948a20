"""Linkage over a recorded review round (issue 10): per response, the pseudonyms a student
received ("Paper K7Q2" is its author's, "Reviewer N" next to a paper's code is that
paper's N-th reviewer's) are mapped back to the people behind them. A response fails when
it carries two pseudonyms of one person (their paper's code and their number as the
reviewer of another paper), or a pseudonym next to that person's name, or a review
pseudonym on an exemplar route (an exemplar has its own attribution)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.db import transaction
from services.models import Paper, ReviewTask
from tests.web.review_scenario import STUDENTS, Persona, Recording

# A review pseudonym as staff or students read it (staff's agreement table: "Reviewer ab12f0").
PSEUDONYM = re.compile(rb"\bReviewer [0-9a-f]+\b|\bPaper [A-Z0-9]{4,}\b")
# "Reviewer 1/2/3" is the notice on the pages, not anyone's label.
NUMBER = re.compile(rb'\bReviewer (\d+)\b(?!/)|"reviewer_number":\s*(\d+)')

Pseudonym = tuple[str, ...]


@dataclass
class World:
    author: dict[str, int]  # paper code -> author
    own: dict[int, str]  # author -> paper code
    reviewer: dict[tuple[str, int], int]  # (code, number) -> reviewer (withdrawn too)


@dataclass
class Found:
    seen: int  # pseudonyms attributed to someone other than the viewer
    problems: list[str]


async def load(sessions: async_sessionmaker[AsyncSession], assignment_id: int) -> World:
    async with transaction(sessions, write=False) as session:
        papers = (
            await session.execute(
                select(Paper.id, Paper.code, Paper.author_id).where(
                    Paper.assignment_id == assignment_id
                )
            )
        ).all()
        tasks = (
            await session.execute(
                select(ReviewTask.paper_id, ReviewTask.reviewer_number, ReviewTask.reviewer_id)
                .where(ReviewTask.assignment_id == assignment_id)
                .order_by(col(ReviewTask.id))
            )
        ).all()
    code_of = {pid: code for pid, code, _ in papers}
    return World(
        author={code: author for _, code, author in papers},
        own={author: code for _, code, author in papers},
        reviewer={(code_of[pid], n): reviewer for pid, n, reviewer in tasks},
    )


def scan(
    world: World, viewer_id: int, label: str, blob: bytes, names: dict[int, Persona]
) -> tuple[dict[int, set[Pseudonym]], list[str]]:
    """The pseudonyms of other people in one response, and what is wrong with it."""
    codes = {
        code
        for code in world.author
        if re.search(rb"(?<![A-Za-z0-9_-])" + code.encode() + rb"(?![A-Za-z0-9_-])", blob)
    }
    context = set(codes)
    if "/feedback" in label and viewer_id in world.own:
        context.add(world.own[viewer_id])  # the reviews of one's own paper
    numbers = {int(a or b) for a, b in NUMBER.findall(blob)}
    held: dict[int, set[Pseudonym]] = defaultdict(set)
    for code in codes:
        held[world.author[code]].add(("paper", code))
    for n in numbers:
        behind = {world.reviewer[(c, n)] for c in context if (c, n) in world.reviewer}
        if viewer_id in behind:
            continue  # the viewer's own number as a reviewer
        for c in context:
            if (c, n) in world.reviewer:
                held[world.reviewer[(c, n)]].add(("reviewer", c, str(n)))
    held.pop(viewer_id, None)
    problems = []
    for person, pseudonyms in held.items():
        if len(pseudonyms) > 1:
            problems.append(f"{label}: one person as {sorted(pseudonyms)}")
        persona = names.get(person)
        if persona and any(c.encode() in blob for c in persona.canaries):
            problems.append(f"{label}: {persona.name} named next to {sorted(pseudonyms)}")
    if "/exemplars" in label and (codes or numbers):
        problems.append(f"{label}: a review pseudonym on an exemplar route")
    return held, problems


async def check(
    sessions: async_sessionmaker[AsyncSession], rec: Recording, people: dict[str, Persona]
) -> Found:
    world = await load(sessions, rec.assignment_id)
    names = {rec.users[name]: persona for name, persona in people.items() if name in rec.users}
    seen, problems = 0, []
    for student in STUDENTS:
        for label, blob in rec.responses[student]:
            held, wrong = scan(world, rec.users[student], label, blob, names)
            seen += sum(len(p) for p in held.values())
            problems += [f"{student}: {p}" for p in wrong]
    assert not problems, "\n".join(problems[:20])
    return Found(seen, problems)
