"""The mail outbox and its sender, against a real SMTP server on loopback (STARTTLS and a
password), on SQLite and PostgreSQL: written in the transaction of the change, delivered
once, retried with backoff, bounces recorded, digests once a day, preferences obeyed."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import discussions, mail, outbox, reminders
from services.db import make_engine, make_sessionmaker, transaction
from services.models import (
    Assignment,
    MailRecipient,
    Notification,
    OutboxMessage,
    Phase,
    Question,
    User,
)
from tests.mail_support import Server, Sink, smtp_server
from tests.review_support import ReviewWorld, make_world, review_all, set_phase, submit_papers

SECRET = "mail-test-secret-0123456789-0123456789"
BASE = "https://peerboard.test"
# Tomorrow, 09:00 UTC: mail the tests make is stamped with the real clock, so the rounds they
# run "at" T0 (and at 07:00 that day, for digests) must come after it, whatever the day the
# suite runs. (A fixed date here passed until that day's 07:00 and failed ever after.)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def mailer_for(server: Server, *, batch: int = 20) -> mail.Mailer:
    return mail.Mailer(
        smtp=mail.SmtpConfig.parse(server.url),
        sender="Peerboard <noreply@peerboard.test>",
        base_url=BASE,
        secret=SECRET,
        batch=batch,
    )


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with transaction(sessions, write=False) as session:
        result = await session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return list(result.scalars())


async def question_of(world: ReviewWorld) -> int:
    async with transaction(world.sessions, write=False) as session:
        qid = await session.scalar(
            select(Question.id).where(Question.assignment_id == world.assignment_id)
        )
    assert qid is not None
    return qid


async def thread_with_anonymous_reply(world: ReviewWorld) -> str:
    """Ada opens a thread; Ben replies anonymously (classmates see his alias)."""
    qid = await question_of(world)
    async with transaction(world.sessions) as session:
        thread = await discussions.create_thread(
            session, actor=await world.actor(session, "ada"), question_id=qid,
            title="Is the therapist a secure base?", body="I think so.",
        )  # fmt: skip
    async with transaction(world.sessions) as session:
        await discussions.reply(
            session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
            body="I am not sure at all.", anonymous=True,
        )  # fmt: skip
    return thread.public_id


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> ReviewWorld:
    return await make_world(
        sessions,
        students=("ada", "ben", "chen"),
        names={"ben": "Benedikt Canarysson", "ada": "Ada Lovelace"},
    )


async def test_a_reply_writes_its_mail_in_the_same_transaction_and_a_rollback_writes_none(
    world: ReviewWorld,
) -> None:
    qid = await question_of(world)
    async with transaction(world.sessions) as session:
        thread = await discussions.create_thread(
            session, actor=await world.actor(session, "ada"), question_id=qid,
            title="T", body="B",
        )  # fmt: skip
    with pytest.raises(RuntimeError):
        async with transaction(world.sessions) as session:
            await discussions.reply(
                session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
                body="Reply",
            )  # fmt: skip
            raise RuntimeError("the request failed after the reply")
    assert [r for r in await rows(world.sessions) if r.kind == "reply"] == []
    async with transaction(world.sessions) as session:
        await discussions.reply(
            session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
            body="Reply",
        )  # fmt: skip
    (queued,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert queued.user_id == world.users["ada"]
    assert queued.status == "pending"
    assert queued.thread_ref == thread.public_id


async def test_a_reply_reaches_the_post_owner_over_starttls_with_threading_and_unsubscribe(
    world: ReviewWorld, tmp_path: Path
) -> None:
    thread = await thread_with_anonymous_reply(world)
    with smtp_server(tmp_path) as server:
        report = await mail.deliver_round(mailer_for(server), world.sessions, now=T0)
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    assert server.sink.logins == 1
    (got,) = server.sink.received
    assert got.recipients == ["ada.lovelace@uni.test"]
    message = got.message
    assert message["Subject"] == "Re: Is the therapist a secure base?"
    assert message["To"] == "ada.lovelace@uni.test"
    assert message["In-Reply-To"] == f"<thread.{thread}@peerboard.test>"
    assert message["References"] == f"<thread.{thread}@peerboard.test>"
    (sent,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert message["Message-ID"] == f"<{sent.public_id}@peerboard.test>"
    assert sent.status == "sent" and sent.sent_at is not None
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{BASE}/mail/unsubscribe/")
    key, kind = mail.read_unsubscribe_token(SECRET, link.rsplit("/", 1)[1]) or ("", "")
    assert kind == "reply"
    async with transaction(world.sessions, write=False) as session:
        owner = await session.scalar(select(MailRecipient.user_id).where(MailRecipient.key == key))
    assert owner == world.users["ada"]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "Someone replied to your post in “Is the therapist a secure base?”." in (
        text.get_content()
    )
    assert f"{BASE}/threads/{thread}#post-" in text.get_content()
    assert "Open in Peerboard" in html.get_content()


async def test_an_anonymous_replys_author_never_appears_in_the_owners_mail(
    world: ReviewWorld, tmp_path: Path
) -> None:
    """Canary: nothing of Ben (name, e-mail, subject, id) reaches Ada's mail, headers
    included, and no header carries a database id of a person."""
    await thread_with_anonymous_reply(world)
    async with transaction(world.sessions, write=False) as session:
        ben = await session.get(User, world.users["ben"])
    assert ben is not None and ben.email
    with smtp_server(tmp_path) as server:
        await mail.deliver_round(mailer_for(server), world.sessions, now=T0)
    (got,) = server.sink.received
    raw = got.raw.decode("utf-8", "replace")
    decoded = str(got.message) + "".join(
        part.get_content() for part in got.message.walk() if part.get_content_maintype() == "text"
    )
    for canary in ("Benedikt", "Canarysson", ben.email, ben.subject, "Ben"):
        assert canary not in raw
        assert canary not in decoded
    for header in ("Message-ID", "In-Reply-To", "References", "List-Unsubscribe"):
        assert f".{world.users['ben']}@" not in got.message[header]
        assert f"/{world.users['ada']}." not in got.message[header]


async def test_a_temporary_refusal_is_retried_after_a_backoff_and_sent_once(
    world: ReviewWorld, tmp_path: Path
) -> None:
    await thread_with_anonymous_reply(world)
    with smtp_server(tmp_path, Sink(refuse_data=2)) as server:
        mailer = mailer_for(server)
        first = await mail.deliver_round(mailer, world.sessions, now=T0)
        assert (first.sent, first.retried) == (0, 1)
        (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
        assert row.status == "pending" and row.attempts == 1
        assert row.next_attempt_at == T0 + outbox.backoff(1) == T0 + timedelta(seconds=30)
        assert "451" in row.last_error
        # Not due yet: nothing happens.
        early = await mail.deliver_round(mailer, world.sessions, now=T0 + timedelta(seconds=29))
        assert (early.sent, early.retried) == (0, 0)
        second = await mail.deliver_round(mailer, world.sessions, now=T0 + timedelta(seconds=30))
        assert second.retried == 1
        (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
        assert row.next_attempt_at == T0 + timedelta(seconds=30) + timedelta(minutes=1)
        third = await mail.deliver_round(mailer, world.sessions, now=T0 + timedelta(minutes=2))
        assert third.sent == 1
    assert len(server.sink.received) == 1
    (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert (row.status, row.attempts) == ("sent", 3)


def test_the_backoff_doubles_and_is_capped() -> None:
    waits = [outbox.backoff(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[-1] == outbox.BACKOFF_CAP == timedelta(hours=6)


async def test_a_refused_address_is_a_bounce_and_is_not_retried(
    world: ReviewWorld, tmp_path: Path
) -> None:
    await thread_with_anonymous_reply(world)
    with smtp_server(tmp_path, Sink(bounce={"ada.lovelace@uni.test"})) as server:
        report = await mail.deliver_round(mailer_for(server), world.sessions, now=T0)
        later = await mail.deliver_round(
            mailer_for(server), world.sessions, now=T0 + timedelta(days=1)
        )
    assert (report.failed, later.sent + later.retried + later.failed) == (1, 0)
    (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert row.status == "bounced"
    assert "550" in row.last_error
    assert server.sink.received == []


async def test_a_server_that_is_down_leaves_the_mail_pending(
    world: ReviewWorld, tmp_path: Path
) -> None:
    await thread_with_anonymous_reply(world)
    with smtp_server(tmp_path) as server:
        url = server.url
    mailer = mail.Mailer(mail.SmtpConfig.parse(url), "p@peerboard.test", BASE, SECRET)
    report = await mail.deliver_round(mailer, world.sessions, now=T0)
    assert report.retried == 1
    (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert row.status == "pending" and row.last_error.startswith("connect")


async def many_replies(world: ReviewWorld, n: int) -> None:
    qid = await question_of(world)
    async with transaction(world.sessions) as session:
        thread = await discussions.create_thread(
            session, actor=await world.actor(session, "ada"), question_id=qid,
            title="Busy", body="B",
        )  # fmt: skip
        for i in range(n):
            await discussions.reply(
                session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
                body=f"Reply {i}",
            )  # fmt: skip


async def test_two_senders_racing_deliver_each_message_exactly_once(
    world: ReviewWorld, database_url: str, tmp_path: Path
) -> None:
    """Two senders with their own engines (as two app processes would have) claim from one
    outbox at the same time: every message is delivered, none twice."""
    await many_replies(world, 24)
    engines = [make_engine(database_url), make_engine(database_url)]
    try:
        with smtp_server(tmp_path) as server:
            mailers = [mailer_for(server, batch=3), mailer_for(server, batch=3)]
            reports = await asyncio.gather(
                *(
                    mail.deliver_round(m, make_sessionmaker(e), now=T0)
                    for m, e in zip(mailers, engines, strict=True)
                )
            )
    finally:
        for e in engines:
            await e.dispose()
    ids = [r.message["Message-ID"] for r in server.sink.received]
    assert len(ids) == 24 == len(set(ids))
    assert sum(r.sent for r in reports) == 24
    assert all(r.sent > 0 for r in reports)  # both took part: a real race
    assert {r.status for r in await rows(world.sessions) if r.kind == "reply"} == {"sent"}


@pytest.mark.postgres
async def test_two_app_processes_sharing_postgresql_send_each_message_once(
    world: ReviewWorld, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the multi-process test runs on PostgreSQL")
    await many_replies(world, 40)
    command = [sys.executable, "-m", "web.cli", "mail", "send"]
    with smtp_server(tmp_path) as server:
        env = {
            **os.environ,
            "PEERBOARD_ENV": "test",
            "DATABASE_URL": database_url,
            "PEERBOARD_SMTP_URL": server.url,
            "PEERBOARD_MAIL_FROM": "Peerboard <noreply@peerboard.test>",
        }
        procs = [
            await asyncio.create_subprocess_exec(
                *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    ids = [r.message["Message-ID"] for r in server.sink.received]
    assert len(ids) == 40 == len(set(ids))


async def test_never_skips_the_mail_but_keeps_the_in_app_notice(world: ReviewWorld) -> None:
    async with transaction(world.sessions) as session:
        await outbox.set_modes(
            session, user_id=world.users["ada"], modes={"reply": outbox.Mode.never}
        )
    await thread_with_anonymous_reply(world)
    (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert row.status == "skipped"
    async with transaction(world.sessions, write=False) as session:
        notices = await session.scalar(
            select(Notification.id).where(Notification.user_id == world.users["ada"])
        )
    assert notices is not None


async def test_followed_threads_go_to_one_digest_a_day_after_seven(
    world: ReviewWorld, tmp_path: Path
) -> None:
    """Chen follows Ada's thread (default: digest): two replies wait, then one digest at
    07:00 UTC carries both; a second run that day makes none."""
    qid = await question_of(world)
    async with transaction(world.sessions) as session:
        thread = await discussions.create_thread(
            session, actor=await world.actor(session, "ada"), question_id=qid,
            title="Followed", body="B",
        )  # fmt: skip
        await discussions.set_following(
            session, actor=await world.actor(session, "chen"), thread_id=thread.public_id,
            following=True,
        )  # fmt: skip
    for body in ("First reply", "Second reply"):
        async with transaction(world.sessions) as session:
            await discussions.reply(
                session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
                body=body,
            )  # fmt: skip
    held = [r for r in await rows(world.sessions) if r.user_id == world.users["chen"]]
    assert [r.status for r in held] == ["held", "held"]
    with smtp_server(tmp_path) as server:
        mailer = mailer_for(server)
        early = T0.replace(hour=6, minute=59)
        await mail.deliver_round(mailer, world.sessions, now=early)
        assert all(r.recipients != ["chen@uni.test"] for r in server.sink.received)
        seven = T0.replace(hour=7)
        await mail.deliver_round(mailer, world.sessions, now=seven)
        async with transaction(world.sessions) as session:
            again = await outbox.collect_digests(session, now=seven + timedelta(hours=5))
        assert again == 0
    to_chen = [r for r in server.sink.received if r.recipients == ["chen@uni.test"]]
    assert len(to_chen) == 1
    message = to_chen[0].message
    assert message["Subject"] == f"Your Peerboard digest for {T0:%A} {T0.day} {T0:%B}"
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().count("There is a new reply in “Followed”") == 2
    assert "/unsubscribe/" in message["List-Unsubscribe"]
    key_kind = mail.read_unsubscribe_token(
        SECRET, message["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    )
    assert key_kind is not None and key_kind[1] == "digest"
    statuses = [r.status for r in await rows(world.sessions) if r.user_id == world.users["chen"]]
    assert sorted(statuses) == ["digested", "digested", "sent"]


async def test_unsubscribing_from_a_kind_drops_what_waits_and_stops_the_rest(
    world: ReviewWorld,
) -> None:
    await thread_with_anonymous_reply(world)
    async with transaction(world.sessions) as session:
        key = await outbox.mail_key(session, user_id=world.users["ada"])
        assert await outbox.unsubscribe(session, key=key, kind="reply") == "replies to your posts"
        assert await outbox.unsubscribe(session, key="forged", kind="reply") is None
        assert await outbox.unsubscribe(session, key=key, kind="nonsense") is None
        modes = await outbox.modes_of(session, user_id=world.users["ada"])
    assert modes["reply"] is outbox.Mode.never
    assert modes["review_assigned"] is outbox.Mode.immediately
    (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert row.status == "skipped"


def test_unsubscribe_tokens_are_signed_per_kind() -> None:
    token = mail.unsubscribe_token(SECRET, key="abc", kind="reply")
    assert mail.read_unsubscribe_token(SECRET, token) == ("abc", "reply")
    assert mail.read_unsubscribe_token("another-secret", token) is None
    assert mail.read_unsubscribe_token(SECRET, token.replace(".reply.", ".deadline.")) is None
    assert mail.read_unsubscribe_token(SECRET, "abc") is None


async def test_review_phases_tell_reviewers_and_then_authors(world: ReviewWorld) -> None:
    await submit_papers(world, ("ada", "ben", "chen"))
    await set_phase(world, Phase.review)
    assigned = [r for r in await rows(world.sessions) if r.kind == "review_assigned"]
    assert sorted(r.user_id for r in assigned) == sorted(
        world.users[n] for n in ("ada", "ben", "chen")
    )
    assert all(r.body.startswith("You have 2 new papers to review in “") for r in assigned)
    assert all("Paper " not in r.body for r in assigned)
    await review_all(world, ("ada", "ben", "chen"), {})
    await set_phase(world, Phase.feedback)
    received = [r for r in await rows(world.sessions) if r.kind == "reviews_received"]
    assert len(received) == 3
    assert all("received 2 reviews" in r.body for r in received)
    assert {r.link for r in received} == {f"/assignments/{world.assignment_id}/feedback"}
    # Back to review and forward again: authors are not told twice.
    await set_phase(world, Phase.review)
    await set_phase(world, Phase.feedback)
    assert len([r for r in await rows(world.sessions) if r.kind == "reviews_received"]) == 3


async def test_deadline_reminders_go_once_to_those_who_still_owe_work(
    world: ReviewWorld,
) -> None:
    await submit_papers(world, ("ada",))
    async with transaction(world.sessions) as session:
        assignment = await session.get(Assignment, world.assignment_id)
        assert assignment is not None
        assignment.paper_due_at = T0 + timedelta(hours=30)
        session.add(assignment)
    async with transaction(world.sessions) as session:
        assert await reminders.remind_due(session, now=T0) == 0  # not within 24 h yet
    async with transaction(world.sessions) as session:
        assert await reminders.remind_due(session, now=T0 + timedelta(hours=7)) == 2
    async with transaction(world.sessions) as session:
        assert await reminders.remind_due(session, now=T0 + timedelta(hours=8)) == 0
    due = [r for r in await rows(world.sessions) if r.kind == "deadline"]
    assert sorted(r.user_id for r in due) == sorted(world.users[n] for n in ("ben", "chen"))
    for row in due:
        assert "you have not submitted it yet" in row.body
        assert "Ada" not in row.body and "classmate" not in row.body
        assert row.status == "pending"


def test_smtp_urls_are_parsed_and_clear_text_passwords_refused() -> None:
    config = mail.SmtpConfig.parse("smtp://u%40x:p%2Fw@mail.uni.example:587?starttls=1")
    assert (config.host, config.port, config.username, config.password) == (
        "mail.uni.example", 587, "u@x", "p/w",
    )  # fmt: skip
    assert config.start_tls is True and config.use_tls is False
    tls = mail.SmtpConfig.parse("smtps://mail.uni.example")
    assert (tls.port, tls.use_tls) == (465, True)
    for bad in (
        "http://mail.uni.example",
        "smtp://u:p@mail.uni.example:25",  # a password in clear text
        "smtp://mail.uni.example?verify=0",
        "smtps://mail.uni.example?starttls=1",
        "smtp://mail.uni.example?starttls=maybe",
    ):
        with pytest.raises(ValueError):
            mail.SmtpConfig.parse(bad)


async def test_an_address_that_cannot_be_put_in_a_header_fails_that_mail_only(
    world: ReviewWorld, tmp_path: Path
) -> None:
    await thread_with_anonymous_reply(world)
    async with transaction(world.sessions) as session:
        ada = await session.get(User, world.users["ada"])
        assert ada is not None
        ada.email = "ada@uni.test\r\nBcc: someone@evil.example"
        session.add(ada)
    with smtp_server(tmp_path) as server:
        report = await mail.deliver_round(mailer_for(server), world.sessions, now=T0)
    assert (report.sent, report.failed) == (0, 1)
    (row,) = [r for r in await rows(world.sessions) if r.kind == "reply"]
    assert row.status == "failed" and row.last_error.startswith("cannot compose")
    assert server.sink.received == []
