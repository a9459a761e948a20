"""The canary scan, extended to e-mail and webhooks: every person has a random name (and an
address made of it); a whole round of discussion, moderation, exemplars and peer review
runs, every mail in the outbox is delivered to a real SMTP server and every webhook event to
a real receiver, and the scan fails if any mail carries the name or address of anyone but
its recipient, or any webhook payload carries anyone's (headers included)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import discussions, exemplars, mail, moderation, reminders, webhooks
from services.db import transaction
from services.models import Assignment, ExemplarKind, Phase, Post, Question, User, utcnow
from services.policy import Actor
from tests.mail_support import smtp_server
from tests.review_support import make_world, review_all, set_phase, submit_papers
from tests.web.canary_support import canary
from tests.webhook_support import receiver

STUDENTS = ("ada", "ben", "chen", "dara")


async def test_no_mail_or_webhook_carries_a_name_its_recipient_may_not_know(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    names = {n: canary() for n in ("ivo", "mona", *STUDENTS)}
    world = await make_world(sessions, students=STUDENTS, names=names)
    # Noon (UTC, the cohort's zone) three days on: the daily digest goes out only after
    # 07:00 local, so a bare `utcnow() + 3 days` made this test fail between 00:00 and 07:00.
    later = (utcnow() + timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    async with receiver() as hook:
        async with transaction(sessions) as session:
            await webhooks.register(
                session, actor=Actor.system(), cohort_slug="psy", url=hook.url,
                events=list(webhooks.EVENTS), allow_private=True,
            )  # fmt: skip
            qid = await session.scalar(
                select(Question.id).where(Question.assignment_id == world.assignment_id)
            )
            assert qid is not None
            ada = await world.actor(session, "ada")
            thread = await discussions.create_thread(
                session, actor=ada, question_id=qid, title="Safe", body="opening",
                anonymous=True,
            )  # fmt: skip
            await discussions.set_following(
                session, actor=await world.actor(session, "chen"), thread_id=thread.public_id,
                following=True,
            )  # fmt: skip
            ben_post = await discussions.reply(
                session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
                body="named reply",
            )  # fmt: skip
            anon = await discussions.reply(
                session, actor=ada, thread_id=thread.public_id, body="anonymous reply",
                parent_id=ben_post.public_id, anonymous=True,
            )  # fmt: skip
        async with transaction(sessions) as session:
            mona = await world.actor(session, "mona")
            for action in ("hide", "unhide"):
                await moderation.moderate(
                    session, actor=mona, action=action, target=anon.public_id, reason="check"
                )
            opening = await session.scalar(
                select(Post.public_id).where(
                    Post.thread_id == thread.id,
                    Post.parent_id == None,  # noqa: E711
                )
            )
            await exemplars.nominate(
                session, actor=Actor.system(), assignment_id=world.assignment_id,
                kind=ExemplarKind.post, source=opening, publish=True,
            )  # fmt: skip
        await submit_papers(world, STUDENTS)
        await set_phase(world, Phase.review)
        async with transaction(sessions) as session:
            assignment = await session.get(Assignment, world.assignment_id)
            assert assignment is not None
            assignment.review_due_at = utcnow() + timedelta(hours=12)
            session.add(assignment)
        async with transaction(sessions) as session:
            assert await reminders.remind_due(session) == len(STUDENTS)
        await review_all(world, STUDENTS, {})
        await set_phase(world, Phase.feedback)
        sent = await webhooks.WebhookSender(allow_private=True, batch=100).deliver_due(sessions)
        assert sent["delivered"] == len(hook.requests) > 0
    with smtp_server(tmp_path) as server:
        mailer = mail.Mailer(
            mail.SmtpConfig.parse(server.url), "Peerboard <n@peerboard.test>",
            "https://peerboard.test", "canary-secret-0123456789-0123456789",
        )  # fmt: skip
        report = await mail.deliver_round(mailer, sessions, now=later)
    assert report.failed == 0 and report.retried == 0

    async with transaction(sessions, write=False) as session:
        people = {
            u.email: u
            for u in (await session.execute(select(User))).scalars()
            if u.email is not None
        }
    everyone = list(names.values())
    for got in server.sink.received:
        (to,) = got.recipients
        own = people[to].display_name
        raw = got.raw.decode("utf-8", "replace").lower()
        for name in everyone:
            if name != own:
                assert name.lower() not in raw, f"{name}'s name reached {own}'s mailbox"
    # The scan covered mail of every kind that this round produces.
    subjects = " | ".join(r.message["Subject"] for r in server.sink.received)
    for expected in ("Re: Safe", "was hidden", "was restored", "exemplar", "to review",
                     "received", "due", "digest"):  # fmt: skip
        assert expected in subjects, f"no mail with {expected!r}: {subjects}"
    for request in hook.requests:
        text = (request.body + repr(request.headers).encode()).decode().lower()
        for name in everyone:
            assert name.lower() not in text, f"{name} reached a webhook payload"
