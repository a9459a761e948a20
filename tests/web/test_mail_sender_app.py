"""End to end: the app's own background sender (started in its lifespan when
PEERBOARD_SMTP_URL is set) delivers the mail of a reply posted over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from services import assignments, cohorts, importing
from services.db import transaction
from services.models import Phase, Question, Role, User
from services.policy import Actor
from tests.conftest import People, make_settings
from tests.mail_support import Server, smtp_server
from web.settings import Settings


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[Server]:
    with smtp_server(tmp_path) as server:
        yield server


@pytest.fixture
def settings(database_url: str, smtp: Server) -> Settings:
    return make_settings(
        database_url,
        PEERBOARD_SMTP_URL=smtp.url,
        PEERBOARD_MAIL_FROM="Peerboard <noreply@peerboard.test>",
        PEERBOARD_MAIL_TICK_SECONDS="1",
        PEERBOARD_PHASE_TICK_SECONDS="0",
    )


async def test_a_reply_over_http_reaches_the_owner_by_mail(people: People, smtp: Server) -> None:
    system = Actor.system()
    async with transaction(people.sessions) as session:
        cohort = await cohorts.create_cohort(session, actor=system, slug="psy", name="PSY")
        draft = importing.parse_assignment_text("Title\n\nWhat is a secure base?\n")
        made = await assignments.import_assignment(
            session, actor=system, cohort=cohort, draft=draft
        )
        made.phase = Phase.open
        question_id = await session.scalar(
            select(Question.id).where(Question.assignment_id == made.id)
        )
    ada = await people.member("ada", "psy", Role.student)
    ben = await people.member("ben", "psy", Role.student)
    thread = await ada.post(
        f"/api/v1/questions/{question_id}/threads", json={"title": "Mine", "body": "Hello"}
    )
    assert thread.status_code == 201, thread.text
    reply = await ben.post(
        f"/api/v1/threads/{thread.json()['id']}/posts",
        json={"body": "A reply", "anonymous": True},
    )
    assert reply.status_code == 201, reply.text
    for _ in range(200):  # the sender runs every second; wait for it, bounded
        if smtp.sink.received:
            break
        await asyncio.sleep(0.05)
    (got,) = smtp.sink.received
    assert got.recipients == ["ada@uni.test"]
    assert got.message["Subject"] == "Re: Mine"
    async with transaction(people.sessions, write=False) as session:
        ben_user = await session.scalar(select(User).where(User.subject == "sub-ben"))
    assert ben_user is not None
    assert ben_user.display_name not in got.raw.decode()
    assert "ben@uni.test" not in got.raw.decode()
