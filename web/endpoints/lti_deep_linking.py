"""LTI Deep Linking pages: the picker an instructor lands on from the LMS's "add an
activity" flow, and the answer that goes back to the LMS.

`GET /lti/deep-link/{request}` lists the course cohort's assignments (and links to the
authoring pages, which come back here once the assignment is made); `POST` with the chosen
assignment answers with a page whose form carries the signed `LtiDeepLinkingResponse` to the
LMS's `deep_link_return_url`, posted by script at once (a button without script). The
request lives in the session (web.endpoints.lti.DEEP_LINKS_KEY) and is used up by the answer;
the POST goes through the session's CSRF check like any page form.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from services import assignments, cohorts, lti, lti_deep_linking
from services.errors import NotFound
from services.lti_deep_linking import PendingDeepLink
from web.context import settings_of
from web.endpoints.lti import DEEP_LINKS_KEY
from web.endpoints.pages import Refusal, page_unit, render_page, require_signed_in
from web.middleware import FORM_ACTION_SCOPE_KEY

EXPIRED = (
    "This choice has expired or was already sent to your LMS. Start again from the LMS's "
    "“add an activity” (or “external tool”) menu."
)


def _store(request: Request) -> dict[str, Any]:
    session = request.scope.get("session")
    store = session.get(DEEP_LINKS_KEY) if session is not None else None
    return store if isinstance(store, dict) else {}


def pending_of(request: Request, request_id: str) -> PendingDeepLink:
    pending = PendingDeepLink.from_dict(_store(request).get(request_id))
    if pending is None:
        raise NotFound(EXPIRED)
    return pending


def _forget(request: Request, request_id: str) -> None:
    session = request.scope["session"]
    session[DEEP_LINKS_KEY] = {k: v for k, v in _store(request).items() if k != request_id}


async def picker(request: Request, *, refused: Refusal | None = None) -> Response:
    request_id = request.path_params["request"]
    async with page_unit(request, refused.form if refused else None) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        pending = pending_of(request, request_id)
        cohort = await lti_deep_linking.cohort_for(session, actor=caller.actor, pending=pending)
        rows = await assignments.list_assignments(session, actor=caller.actor, cohort=cohort)
        view = cohorts.present_cohort(cohort, actor=caller.actor)
    made = request.query_params.get("made", "")
    return render_page(
        request,
        "lti_deep_link.html",
        {"cohort": view, "assignments": rows, "request_id": request_id,
         "title": pending.title, "made": int(made) if made.isdigit() else None},
        status=refused.status if refused else 200,
        refused=refused,
    )  # fmt: skip


async def choose(request: Request) -> Response:
    request_id = request.path_params["request"]
    form = await request.form()
    raw = form.get("assignment")
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
        return await picker(
            request,
            refused=Refusal(form, {}, {"assignment": "Choose an assignment to add."}),
        )
    settings = settings_of(request)
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        pending = pending_of(request, request_id)
        token, assignment = await lti_deep_linking.respond(
            session, actor=caller.actor, pending=pending, assignment_id=int(raw),
            launch_url=f"{settings.base_url}/lti/launch", secret=settings.secret_key,
        )  # fmt: skip
    _forget(request, request_id)
    # The answer's form posts to the LMS: this response's CSP lets it.
    request.scope[FORM_ACTION_SCOPE_KEY] = [lti.origin_of(pending.return_url)]
    return render_page(
        request,
        "lti_deep_link_return.html",
        {"return_url": pending.return_url, "jwt": token, "title": assignment.title},
    )
