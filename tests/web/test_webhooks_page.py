"""The instructors' webhooks page: register a loopback receiver (allowed by the setting),
press "Send test event", and read the delivery in the log; the API says the same."""

from __future__ import annotations

import json

import pytest
from standardwebhooks.webhooks import Webhook

from services import cohorts, webhooks
from services.db import transaction
from services.models import Role
from services.policy import Actor
from tests.conftest import People, make_settings
from tests.webhook_support import receiver
from web.settings import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url, PEERBOARD_WEBHOOKS_ALLOW_PRIVATE="1", PEERBOARD_WEBHOOK_TICK_SECONDS="0"
    )


async def test_send_test_event_from_the_page_reaches_the_receiver_and_the_log(
    people: People,
) -> None:
    async with transaction(people.sessions) as session:
        await cohorts.create_cohort(session, actor=Actor.system(), slug="psy", name="PSY")
    ivo = await people.member("ivo", "psy", Role.instructor)
    csrf = ivo.headers["X-CSRF-Token"]
    async with receiver() as hook:
        made = await ivo.post(
            "/cohorts/psy/webhooks",
            data={"url": hook.url, "events": ["phase.changed"], "csrf_token": csrf},
        )
        assert made.status_code == 200
        assert "whsec_" in made.text  # the secret, this once
        secret = made.text.split("<code>")[1].split("</code>")[0]
        listed = (await ivo.get("/api/v1/cohorts/psy/webhooks")).json()
        (endpoint,) = listed
        assert "whsec_" not in json.dumps(listed)
        page = await ivo.get("/cohorts/psy/webhooks")
        assert "Send test event" in page.text and "Nothing sent yet." in page.text
        pressed = await ivo.post(
            f"/cohorts/psy/webhooks/{endpoint['id']}/test", data={"csrf_token": csrf}
        )
        assert pressed.status_code == 303
        done = await webhooks.WebhookSender(allow_private=True).deliver_due(people.sessions)
        assert done["delivered"] == 1
    (request,) = hook.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"
    log = (await ivo.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries")).json()
    assert [(d["event"], d["status"], d["response_status"]) for d in log] == [
        ("webhook.test", "delivered", 200)
    ]
    page = await ivo.get("/cohorts/psy/webhooks")
    assert "delivered" in page.text


async def test_a_bad_url_on_the_page_is_a_422_that_saves_nothing(people: People) -> None:
    async with transaction(people.sessions) as session:
        await cohorts.create_cohort(session, actor=Actor.system(), slug="psy", name="PSY")
    ivo = await people.member("ivo", "psy", Role.instructor)
    answer = await ivo.post(
        "/cohorts/psy/webhooks",
        data={
            "url": "ftp://x",
            "events": ["phase.changed"],
            "csrf_token": ivo.headers["X-CSRF-Token"],
        },
    )
    assert answer.status_code == 422
    assert "Nothing was saved" in answer.text
    assert (await ivo.get("/api/v1/cohorts/psy/webhooks")).json() == []
