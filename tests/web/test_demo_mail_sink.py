"""`peerboard demo` delivers mail into a local SMTP sink (aiosmtpd on loopback): the demo
settings point PEERBOARD_SMTP_URL at it unless the user set one, and the app's own sender
delivers a reply's mail into it, which /dev/mail then lists as sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from sqlmodel import select

from services import assignments, cohorts, importing
from services.db import transaction
from services.models import Phase, Question, Role
from services.policy import Actor
from tests.conftest import People, make_settings
from tests.mail_support import free_port
from web.demo import MailSink, demo_settings, run_demo_smtp_sink
from web.settings import Settings

ISSUER = "http://127.0.0.1:9400"


@pytest.fixture
def sink() -> Iterator[tuple[str, MailSink]]:
    with run_demo_smtp_sink(free_port()) as running:
        yield running


@pytest.fixture
def settings(database_url: str, sink: tuple[str, MailSink]) -> Settings:
    url, _ = sink
    return make_settings(
        database_url,
        PEERBOARD_SMTP_URL=url,
        PEERBOARD_MAIL_TICK_SECONDS="1",
        PEERBOARD_PHASE_TICK_SECONDS="0",
    )


def test_the_demo_settings_send_to_the_sink_unless_the_user_chose_a_server(
    sink: tuple[str, MailSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = sink
    monkeypatch.delenv("PEERBOARD_SMTP_URL", raising=False)
    monkeypatch.delenv("PEERBOARD_MAIL_TICK_SECONDS", raising=False)
    wired = demo_settings(
        host="127.0.0.1", port=8000, database_url="sqlite+aiosqlite://", issuer=ISSUER,
        smtp_url=url,
    )  # fmt: skip
    assert wired.smtp_url is not None and wired.smtp_url.get_secret_value() == url
    smtp = wired.smtp
    assert smtp is not None and smtp.host == "127.0.0.1"
    assert wired.mail_tick_seconds == 2
    monkeypatch.setenv("PEERBOARD_SMTP_URL", "smtp://mail.example.test:587?starttls=1")
    chosen = demo_settings(
        host="127.0.0.1", port=8000, database_url="sqlite+aiosqlite://", issuer=ISSUER,
        smtp_url=url,
    )  # fmt: skip
    assert chosen.smtp_url is not None
    assert chosen.smtp_url.get_secret_value() == "smtp://mail.example.test:587?starttls=1"


async def test_a_reply_in_the_demo_lands_in_the_sink_and_shows_on_dev_mail(
    people: People, sink: tuple[str, MailSink]
) -> None:
    _, received = sink
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
    for _ in range(200):  # the app's sender runs every second; wait for it, bounded
        if received.received:
            break
        await asyncio.sleep(0.05)
    (got,) = received.received
    assert got.recipients == ["ada@uni.test"]
    message = message_from_bytes(got.raw, policy=policy.default)
    assert message["Subject"] == "Re: Mine"
    assert "ben@uni.test" not in got.raw.decode()
    for _ in range(200):  # the sender records the delivery just after the server's answer
        page = await ada.get("/dev/mail")
        assert page.status_code == 200
        if "reply · sent" in page.text:
            break
        await asyncio.sleep(0.05)
    assert "Re: Mine" in page.text and "reply · sent" in page.text
