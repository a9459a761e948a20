"""Routes of the webhooks area (instructors): pages, and the JSON API. Kept apart from
web/routes.py so that areas grow without editing one shared list."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from services.webhooks import DeliveryView, EndpointCreatedView, EndpointView
from web.endpoints import webhooks as w
from web.openapi import ApiRoute, Operation

C = "/cohorts/{cohort:slug}/webhooks"


def page_routes() -> list[BaseRoute]:
    return [
        Route(C, w.page, name="webhooks:page"),
        Route(C, w.create_form, methods=["POST"], name="webhooks:create"),
        Route(C + "/{webhook:public}/test", w.test_form, methods=["POST"], name="webhooks:test"),
        Route(C + "/{webhook:public}/delete", w.delete_form, methods=["POST"],
              name="webhooks:delete"),
    ]  # fmt: skip


SIGNED = (
    'Each delivery is a POST of {"type", "timestamp", "data"} signed per the Standard '
    "Webhooks specification (webhook-id, webhook-timestamp, webhook-signature: "
    "v1,base64(HMAC-SHA256(key, id.timestamp.body)), key = the secret after whsec_, "
    "base64-decoded). Payloads carry ids, titles and links only: never an author or a body. "
    "URLs whose host resolves to a private or loopback address are refused."
)


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute(C, w.api_list, methods=["GET"], name="api:webhooks:list",
                 operation=Operation("The cohort's webhook endpoints (instructors)", "webhooks",
                                     {200: list[EndpointView]}, errors=(404,))),
        ApiRoute(C, w.api_create, methods=["POST"], name="api:webhooks:create",
                 operation=Operation(
                     "Register an endpoint for some events; the secret is shown only here",
                     "webhooks", {201: EndpointCreatedView},
                     request_body={"application/json": w.EndpointCreate},
                     errors=(400, 403, 404, 415, 422), description=SIGNED)),
        ApiRoute("/webhooks/{webhook:public}", w.api_delete, methods=["DELETE"],
                 name="api:webhooks:delete",
                 operation=Operation("Remove an endpoint", "webhooks", {204: None},
                                     errors=(403, 404))),
        ApiRoute("/webhooks/{webhook:public}/test", w.api_test, methods=["POST"],
                 name="api:webhooks:test",
                 operation=Operation("Queue a webhook.test event to the endpoint", "webhooks",
                                     {202: DeliveryView}, errors=(403, 404))),
        ApiRoute("/webhooks/{webhook:public}/deliveries", w.api_deliveries, methods=["GET"],
                 name="api:webhooks:deliveries",
                 operation=Operation("The endpoint's delivery log, newest first", "webhooks",
                                     {200: list[DeliveryView]}, errors=(404,))),
    ]  # fmt: skip
