"""Routes of the mail area: notification preferences (page and API) and unsubscribe links.
Kept apart from web/routes.py so that areas grow without editing one shared list."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from services.views import NotificationPreferencesView
from web.endpoints import mail as m
from web.openapi import ApiRoute, Operation


def page_routes() -> list[BaseRoute]:
    return [
        Route("/settings/notifications", m.settings_page, name="mail:settings"),
        Route("/settings/notifications", m.settings_form, methods=["POST"],
              name="mail:settings:save"),
        Route("/dev/mail", m.dev_mail_page, name="mail:dev"),
        Route("/mail/unsubscribe/{token}", m.unsubscribe_page, name="mail:unsubscribe"),
        Route("/mail/unsubscribe/{token}", m.unsubscribe, methods=["POST"],
              name="mail:unsubscribe:confirm"),
    ]  # fmt: skip


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute("/me/notification-preferences", m.api_preferences, methods=["GET"],
                 name="api:notification-preferences",
                 operation=Operation(
                     "How I hear of each kind of notice by e-mail", "account",
                     {200: NotificationPreferencesView}, errors=(404,))),
        ApiRoute("/me/notification-preferences", m.api_change_preferences, methods=["PUT"],
                 name="api:notification-preferences:update",
                 operation=Operation(
                     "Choose immediately, daily digest or never, per kind", "account",
                     {200: NotificationPreferencesView},
                     request_body={"application/json": m.PreferencesChange},
                     errors=(400, 403, 404, 415, 422),
                     description="Choosing never also drops the mail of that kind that is "
                                 "still waiting to be sent.")),
    ]  # fmt: skip
