"""Webhooks: signed per the Standard Webhooks scheme (checked with the independent
`standardwebhooks` package), retried with backoff, refused for private addresses (SSRF),
and carrying no identity, against a real HTTP receiver on loopback."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook

from services import discussions, webhooks
from services.db import transaction
from services.errors import Invalid
from services.models import Alias, Phase, Question, User, WebhookDelivery
from services.policy import Actor
from tests.review_support import ReviewWorld, make_world, review_all, set_phase, submit_papers
from tests.webhook_support import Receiver, receiver


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> ReviewWorld:
    return await make_world(
        sessions, students=("ada", "ben", "chen"), names={"ben": "Benedikt Canarysson"}
    )


async def register(
    world: ReviewWorld, hook: Receiver, events: list[str] | None = None
) -> webhooks.EndpointCreatedView:
    async with transaction(world.sessions) as session:
        return await webhooks.register(
            session, actor=await world.actor(session, "ivo"), cohort_slug="psy",
            url=hook.url, events=events or list(webhooks.EVENTS), allow_private=True,
        )  # fmt: skip


async def deliveries(world: ReviewWorld) -> list[WebhookDelivery]:
    async with transaction(world.sessions, write=False) as session:
        rows = await session.execute(select(WebhookDelivery).order_by(col(WebhookDelivery.id)))
        return list(rows.scalars())


async def question_of(world: ReviewWorld) -> int:
    async with transaction(world.sessions, write=False) as session:
        qid = await session.scalar(
            select(Question.id).where(Question.assignment_id == world.assignment_id)
        )
    assert qid is not None
    return qid


async def test_a_delivery_verifies_with_the_standard_webhooks_library_and_retries_with_backoff(
    world: ReviewWorld,
) -> None:
    sender = webhooks.WebhookSender(allow_private=True)
    async with receiver(answers=[500]) as hook:
        endpoint = await register(world, hook)
        async with transaction(world.sessions) as session:
            await webhooks.send_test(
                session, actor=await world.actor(session, "ivo"), endpoint_id=endpoint.id
            )
        (queued,) = await deliveries(world)
        first = await sender.deliver_due(world.sessions, now=queued.created_at)
        assert first == {"delivered": 0, "pending": 1, "failed": 0}
        (row,) = await deliveries(world)
        assert (row.status, row.attempts, row.response_status) == ("pending", 1, 500)
        assert row.next_attempt_at == queued.created_at + timedelta(seconds=30)
        early = await sender.deliver_due(
            world.sessions, now=queued.created_at + timedelta(seconds=29)
        )
        assert sum(early.values()) == 0
        second = await sender.deliver_due(
            world.sessions, now=queued.created_at + timedelta(seconds=30)
        )
        assert second["delivered"] == 1
    assert len(hook.requests) == 2
    # The same webhook-id on the retry (receivers dedupe on it), each attempt signed.
    assert hook.requests[0].headers["webhook-id"] == hook.requests[1].headers["webhook-id"]
    for request in hook.requests:
        payload = Webhook(endpoint.secret).verify(request.body, request.headers)
        assert payload["type"] == "webhook.test"
    forged = dict(hook.requests[1].headers, **{"webhook-id": "msg_other"})
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint.secret).verify(hook.requests[1].body, forged)
    (row,) = await deliveries(world)
    assert (row.status, row.attempts, row.response_status) == ("delivered", 2, 200)


async def test_discussion_events_name_nobody(world: ReviewWorld) -> None:
    """Canary: an anonymous reply's event carries neither Ben's name, e-mail nor alias."""
    async with receiver() as hook:
        await register(world, hook, ["thread.created", "post.created"])
        qid = await question_of(world)
        async with transaction(world.sessions) as session:
            thread = await discussions.create_thread(
                session, actor=await world.actor(session, "ada"), question_id=qid,
                title="Secure bases", body="Opening words",
            )  # fmt: skip
        async with transaction(world.sessions) as session:
            await discussions.reply(
                session, actor=await world.actor(session, "ben"), thread_id=thread.public_id,
                body="Anonymous words", anonymous=True,
            )  # fmt: skip
        await webhooks.WebhookSender(allow_private=True).deliver_due(world.sessions)
    async with transaction(world.sessions, write=False) as session:
        ben = await session.get(User, world.users["ben"])
        ada = await session.get(User, world.users["ada"])
        alias = await session.scalar(
            select(Alias.name).where(
                Alias.user_id == world.users["ben"], Alias.assignment_id == world.assignment_id
            )
        )
    assert ben is not None and ada is not None and alias is not None
    types = [json.loads(r.body)["type"] for r in hook.requests]
    assert types == ["thread.created", "post.created"]
    canaries = [ben.display_name, "Canarysson", ben.email, ben.subject, alias]
    canaries += [ada.display_name, ada.email, "Anonymous words", "Opening words"]
    for request in hook.requests:
        text = request.body.decode() + json.dumps(request.headers)
        for canary in canaries:
            assert canary is not None and canary not in text
    reply = json.loads(hook.requests[1].body)["data"]
    assert reply["thread"]["title"] == "Secure bases"
    assert reply["post"]["path"].startswith(f"/threads/{thread.public_id}#post-")


async def test_a_post_first_question_sends_no_discussion_events(world: ReviewWorld) -> None:
    async with receiver() as hook:
        await register(world, hook, ["thread.created", "post.created"])
        qid = await question_of(world)
        async with transaction(world.sessions) as session:
            question = await session.get(Question, qid)
            assert question is not None
            question.post_first = True
            session.add(question)
        async with transaction(world.sessions) as session:
            await discussions.create_thread(
                session, actor=await world.actor(session, "ada"), question_id=qid,
                title="Hidden until you post", body="B",
            )  # fmt: skip
    assert await deliveries(world) == []


async def test_the_review_round_announces_phases_and_its_completion_once(
    world: ReviewWorld,
) -> None:
    async with receiver() as hook:
        await register(world, hook, ["phase.changed", "review_round.complete"])
        await submit_papers(world, ("ada", "ben", "chen"))
        await set_phase(world, Phase.review)
        await review_all(world, ("ada", "ben", "chen"), {})
        await set_phase(world, Phase.feedback)
    events = [(d.event_type, json.loads(d.payload)["data"]) for d in await deliveries(world)]
    assert [e for e, _ in events] == ["phase.changed", "review_round.complete", "phase.changed"]
    assert events[0][1]["assignment"]["phase"] == "review"
    assert events[1][1]["reviews"] == 6
    assert events[2][1]["assignment"]["phase"] == "feedback"


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/x",  # not https
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://user:pw@hooks.example.org/x",
        "ftp://hooks.example.org/x",
    ],
)
def test_urls_that_are_not_public_https_are_refused(url: str) -> None:
    with pytest.raises(Invalid):
        webhooks.check_url(url, allow_private=False)


def test_public_https_urls_and_private_ones_when_allowed_pass() -> None:
    assert webhooks.check_url(" https://hooks.example.org/x ", allow_private=False) == (
        "https://hooks.example.org/x"
    )
    assert webhooks.check_url("http://127.0.0.1:9/x", allow_private=True)


async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(world: ReviewWorld) -> None:
    async with receiver() as hook:
        hook_by_name = Receiver(port=hook.port)
        endpoint = await register(world, hook_by_name)
        async with transaction(world.sessions) as session:
            row = await session.scalar(select(webhooks.WebhookEndpoint))
            assert row is not None
            row.url = f"https://localhost:{hook.port}/hook"  # a name, resolved when sending
            session.add(row)
            await webhooks.send_test(
                session, actor=await world.actor(session, "ivo"), endpoint_id=endpoint.id
            )
        result = await webhooks.WebhookSender(allow_private=False).deliver_due(world.sessions)
    assert result["failed"] == 1
    (row,) = await deliveries(world)
    assert row.status == "failed" and "private or loopback" in row.last_error
    assert hook.requests == []


async def test_only_instructors_manage_webhooks(world: ReviewWorld) -> None:
    from services.errors import NotFound

    async with receiver() as hook:
        for name in ("mona", "ada"):
            with pytest.raises(NotFound):
                async with transaction(world.sessions) as session:
                    await webhooks.register(
                        session, actor=await world.actor(session, name), cohort_slug="psy",
                        url=hook.url, events=["phase.changed"], allow_private=True,
                    )  # fmt: skip
        endpoint = await register(world, hook)
        async with transaction(world.sessions) as session:
            with pytest.raises(NotFound):
                await webhooks.deliveries(
                    session, actor=await world.actor(session, "mona"), endpoint_id=endpoint.id
                )
            listed = await webhooks.list_endpoints(session, actor=Actor.system(), cohort_slug="psy")
    assert [e.id for e in listed] == [endpoint.id]
    assert "secret" not in listed[0].model_dump()


async def test_a_reply_asks_for_endpoints_only_when_its_cohort_has_some(world: ReviewWorld) -> None:
    """The thread's read tells a reply whether the cohort has any endpoint: most have none,
    and then the reply runs no webhook query at all. Once one is registered, the very next
    reply queues its event."""
    from tests.conftest import statements_of

    qid = await question_of(world)
    async with transaction(world.sessions) as session:
        thread = await discussions.create_thread(
            session, actor=await world.actor(session, "ada"), question_id=qid,
            title="Secure bases", body="Opening words",
        )  # fmt: skip

    async def reply() -> list[str]:
        async with transaction(world.sessions) as session:
            ben = await world.actor(session, "ben")
            with statements_of(session) as statements:
                await discussions.reply(
                    session, actor=ben, thread_id=thread.public_id, body="Words"
                )
        return statements

    def endpoint_reads(statements: list[str]) -> int:
        return sum(s.lstrip().startswith("SELECT webhook_endpoints.") for s in statements)

    without = await reply()
    assert endpoint_reads(without) == 0
    assert await deliveries(world) == []
    async with receiver() as hook:
        await register(world, hook, ["post.created"])
        with_one = await reply()
    assert endpoint_reads(with_one) == 1
    assert [json.loads(d.payload)["type"] for d in await deliveries(world)] == ["post.created"]
