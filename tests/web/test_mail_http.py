"""Notification preferences over HTTP (page and API) and one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from services import mail, outbox
from services.db import transaction
from tests.conftest import TEST_SECRET, People, client_for, make_settings
from web.app import create_app


async def modes(people: People, name: str) -> dict[str, outbox.Mode]:
    user = await people.user(name)
    assert user.id is not None
    async with transaction(people.sessions, write=False) as session:
        return await outbox.modes_of(session, user_id=user.id)


async def test_the_api_gives_the_defaults_and_changes_only_the_kinds_named(
    people: People,
) -> None:
    ada = await people.client("ada")
    got = await ada.get("/api/v1/me/notification-preferences")
    assert got.status_code == 200
    kinds = {k["kind"]: k["mode"] for k in got.json()["kinds"]}
    assert kinds == {
        "reply": "immediately",
        "followed_thread": "digest",
        "review_assigned": "immediately",
        "reviews_received": "immediately",
        "deadline": "immediately",
        "moderation": "immediately",
        "exemplar": "immediately",
    }
    put = await ada.put(
        "/api/v1/me/notification-preferences",
        json={"preferences": {"followed_thread": "never", "reply": "digest"}},
    )
    assert put.status_code == 200
    now = await modes(people, "ada")
    assert (now["followed_thread"], now["reply"], now["deadline"]) == (
        "never",
        "digest",
        "immediately",
    )


async def test_unknown_kinds_and_modes_are_refused_and_nothing_changes(people: People) -> None:
    ada = await people.client("ada")
    for body in (
        {"preferences": {"everything": "never"}},
        {"preferences": {"reply": "sometimes"}},
        {"preferences": {"reply": "never"}, "extra": 1},
    ):
        answer = await ada.put("/api/v1/me/notification-preferences", json=body)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await modes(people, "ada"))["reply"] == "immediately"


async def test_the_settings_page_saves_the_choices(people: People) -> None:
    ada = await people.client("ada")
    page = await ada.get("/settings/notifications")
    assert page.status_code == 200
    assert 'name="followed_thread" value="digest" aria-label' in page.text
    saved = await ada.post(
        "/settings/notifications",
        data={"reply": "never", "deadline": "digest", "csrf_token": ada.headers["X-CSRF-Token"]},
    )
    assert saved.status_code == 303
    now = await modes(people, "ada")
    assert (now["reply"], now["deadline"]) == ("never", "digest")


async def link_for(people: People, name: str, kind: str) -> str:
    user = await people.user(name)
    assert user.id is not None
    async with transaction(people.sessions) as session:
        key = await outbox.mail_key(session, user_id=user.id)
    return f"/mail/unsubscribe/{mail.unsubscribe_token(TEST_SECRET, key=key, kind=kind)}"


async def test_one_click_unsubscribe_works_without_signing_in_and_get_changes_nothing(
    people: People, stranger: httpx.AsyncClient
) -> None:
    link = await link_for(people, "ada", "reply")
    shown = await stranger.get(link)
    assert shown.status_code == 200
    assert "Stop e-mails about replies to your posts?" in shown.text
    assert (await modes(people, "ada"))["reply"] == "immediately"
    # What a mail client sends (RFC 8058): a form POST with no cookie and no CSRF token.
    done = await stranger.post(
        link,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert "will no longer e-mail you about replies to your posts" in done.text
    assert (await modes(people, "ada"))["reply"] == "never"
    assert (await modes(people, "ada"))["deadline"] == "immediately"


async def test_a_forged_or_cut_link_is_a_404_and_changes_nothing(
    people: People, stranger: httpx.AsyncClient
) -> None:
    link = await link_for(people, "ada", "reply")
    for bad in (link[:-3], link.replace(".reply.", ".deadline."), "/mail/unsubscribe/x.y.z"):
        assert (await stranger.post(bad)).status_code == 404
        assert (await stranger.get(bad)).status_code == 404
    assert (await modes(people, "ada"))["reply"] == "immediately"


def test_settings_refuse_a_bad_smtp_url_and_keep_the_password_out_of_repr(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    with pytest.raises(ValidationError, match="clear text"):
        make_settings(url, PEERBOARD_SMTP_URL="smtp://u:secret-pw@mail.uni.example:25")
    with pytest.raises(ValidationError, match="PEERBOARD_MAIL_FROM"):
        make_settings(url, PEERBOARD_MAIL_FROM="not an address")
    settings = make_settings(
        url, PEERBOARD_SMTP_URL="smtp://u:secret-pw@mail.uni.example:587?starttls=1"
    )
    assert "secret-pw" not in repr(settings)
    assert settings.smtp is not None and settings.smtp.password == "secret-pw"
    assert settings.sender == "Peerboard <peerboard@127.0.0.1>"
    assert make_settings(url).smtp is None  # unset: mail is off


async def test_the_development_mail_page_shows_the_outbox_and_is_gone_in_production(
    people: People, stranger: httpx.AsyncClient, database_url: str
) -> None:
    ada = await people.user("ada")
    assert ada.id is not None
    async with transaction(people.sessions) as session:
        await outbox.enqueue(
            session, user_id=ada.id, kind="deadline", subject="Your paper is due",
            body="Your paper for “Secure base” is due tomorrow.", link="/assignments/1/paper",
        )  # fmt: skip
    page = await stranger.get("/dev/mail")
    assert page.status_code == 200
    assert "Your paper is due" in page.text and "ada@uni.test" in page.text
    production = create_app(make_settings(database_url, PEERBOARD_ENV="production"))
    async with LifespanManager(production) as manager, client_for(manager.app) as client:
        assert (await client.get("/dev/mail")).status_code == 404
