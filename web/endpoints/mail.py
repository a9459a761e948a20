"""Mail preferences (a settings page and the API) and one-click unsubscribe (RFC 8058).

The unsubscribe link is a capability: it works without signing in, so its endpoints do not
identify the caller (and so need no CSRF token). GET only shows what the link would stop
(link scanners fetch it); POST stops it, from the confirmation form or a mail client's
one-click request."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from services import mail, outbox
from services.db import transaction
from services.errors import NotFound
from services.models import MailMode
from web.context import sessions_of, settings_of, unit_of_work
from web.endpoints.pages import page_unit, redirect_with_flash, render_page, require_signed_in
from web.endpoints.parsing import read_model
from web.responses import json_response


class PreferencesChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preferences: dict[str, MailMode] = Field(
        description="kind → immediately | digest | never; kinds not named stay as they were",
        max_length=50,
    )


async def api_preferences(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await outbox.my_preferences(session, actor=actor)
        return json_response(view)


async def api_change_preferences(request: Request) -> Response:
    data = await read_model(request, PreferencesChange)
    async with unit_of_work(request) as (session, actor):
        view = await outbox.change_my_preferences(session, actor=actor, modes=data.preferences)
    return json_response(view)


async def settings_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        view = await outbox.my_preferences(session, actor=caller.actor)
    return render_page(
        request,
        "notification_settings.html",
        {"prefs": view, "modes": list(MailMode), "mail_on": settings_of(request).smtp_url},
    )


async def settings_form(request: Request) -> Response:
    form = await request.form()
    chosen: dict[str, MailMode] = {}
    for kind in outbox.KINDS:
        value = form.get(kind)
        if isinstance(value, str) and value in MailMode.__members__:
            chosen[kind] = MailMode(value)
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await outbox.change_my_preferences(session, actor=caller.actor, modes=chosen)
    return redirect_with_flash(
        request, str(request.app.url_path_for("mail:settings")), "Your choices are saved."
    )


async def dev_mail_page(request: Request) -> Response:
    """What Peerboard would have e-mailed, for development and the demo only (404 in
    production, where mail goes out and this page would show everyone's)."""
    if not settings_of(request).environment.is_development_like:
        raise NotFound("There is nothing at this address.")
    async with transaction(sessions_of(request), write=False) as session:
        sent = await outbox.recent(session)
    return render_page(
        request, "dev_mail.html", {"sent": sent, "mail_on": bool(settings_of(request).smtp_url)}
    )


def _token(request: Request) -> tuple[str, str]:
    read = mail.read_unsubscribe_token(
        settings_of(request).secret_key, request.path_params["token"]
    )
    if read is None:
        raise NotFound("This unsubscribe link is not valid (it may have been cut short).")
    return read


async def unsubscribe_page(request: Request) -> Response:
    key, kind = _token(request)
    async with transaction(sessions_of(request), write=False) as session:
        label = await outbox.unsubscribe_label(session, key=key, kind=kind)
    if label is None:
        raise NotFound("This unsubscribe link is not valid.")
    return render_page(request, "unsubscribe.html", {"label": label, "done": False})


async def unsubscribe(request: Request) -> Response:
    key, kind = _token(request)
    async with transaction(sessions_of(request)) as session:
        label = await outbox.unsubscribe(session, key=key, kind=kind)
    if label is None:
        raise NotFound("This unsubscribe link is not valid.")
    return render_page(request, "unsubscribe.html", {"label": label, "done": True})
