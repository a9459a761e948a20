"""HTML pages for people. Same service calls and views as the API; templates only place them.

Forms post back with the session's CSRF token; success redirects (303) to a page that shows
the result. A refusal about the input shows the same page again with what the person typed
and the reason next to the field (`keep_input`); other refusals render the error page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services import (
    assignments,
    cohorts,
    lti_roster,
    memberships,
    notifications,
    policy,
    reviews,
)
from services.errors import DomainError, Invalid, NotFound, Problem
from services.models import Cohort, Role
from services.policy import Actor
from web.context import Caller, templates_of, unit_of_work_caller
from web.endpoints.parsing import whole_number
from web.errors import status_for
from web.ratelimit import JOIN, limited_view, rate_limits_of

FLASH_KEY = "flash"


# --- the one copy of each page helper ------------------------------------------------------


def form_field(form: FormData, name: str, *, strip: bool = False) -> str:
    """A text field of a posted form ("" when missing, or when a file was sent instead)."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def safe_path(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never //host, /\\host, a scheme, or control characters.
    Used for every `next` and `back` a request carries."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return default
    if value.startswith(("//", "/\\")) or any(ord(ch) < 0x20 or ch == "\\" for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def signin_redirect(request: Request) -> Response:
    """To the sign-in page, coming back to this page (with its query) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = request.app.url_path_for("auth:signin")
    return RedirectResponse(f"{target}?next={quote(here, safe='/')}", status_code=303)


def require_signed_in(request: Request, caller: Caller) -> Response | None:
    return signin_redirect(request) if caller.user is None else None


@dataclass(frozen=True)
class Refusal:
    """A refused form shown again: what the person typed, and a message beside each field
    that failed (`""` holds a message about the form as a whole)."""

    form: FormData
    values: dict[str, str]
    errors: dict[str, str]
    status: int = 422


def refusal_of(form: FormData, error: DomainError) -> Refusal | None:
    """The refusal to show beside the form, or None when the error is not about the input
    (not found, not allowed...), which the error page answers instead."""
    errors: dict[str, str] = {}
    if isinstance(error, Invalid):
        for problem in error.problems:
            errors.setdefault(problem.field or "", problem.message)
        if not errors:
            errors[""] = error.message
    elif error.field is not None:
        errors[error.field] = error.message
    else:
        return None
    values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf_token"}
    # A not-found code in a field is a mistake in the input: 422, like any other.
    status = 422 if isinstance(error, NotFound) else status_for(error)
    return Refusal(form=form, values=values, errors=errors, status=status)


class PageView(Protocol):
    """A GET page that can also show a refused form again."""

    def __call__(
        self, request: Request, *, refused: Refusal | None = None
    ) -> Awaitable[Response]: ...


async def keep_input(
    request: Request, page: PageView, form: FormData, error: DomainError
) -> Response:
    """The one re-render of a refused form: `page` again (422) with the person's input kept
    and each message next to its field; errors about something else propagate unchanged."""
    refused = refusal_of(form, error)
    if refused is None:
        raise error
    return await page(request, refused=refused)


@asynccontextmanager
async def page_unit(
    request: Request, form: FormData | None = None, *, inline: bool = False
) -> AsyncIterator[tuple[AsyncSession, Caller]]:
    """The unit of a page or a form's POST. `inline`: its statements are few and small
    (on SQLite they run without thread trips: `services.db.transaction`)."""
    # A re-render after a refused POST is still that POST: its form carries the CSRF token.
    token = form.get("csrf_token") if form is not None else None
    async with unit_of_work_caller(
        request, form_csrf=token if isinstance(token, str) else None, inline=inline
    ) as (session, caller):
        if caller.user is not None:
            request.state.viewer = {
                "name": caller.user.display_name,
                "is_administrator": caller.user.is_administrator,
                # The header's badge: one count query per page.
                "unread": await notifications.unread_count(session, actor=caller.actor),
            }
        yield session, caller


def render_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    *,
    refused: Refusal | None = None,
) -> Response:
    """A page; with `refused`, the form's input and errors are in `values` and `errors`."""
    session = request.scope.get("session")
    flash = session.pop(FLASH_KEY, None) if session is not None else None
    extra: dict[str, Any] = {"flash": flash, "values": {}, "errors": {}}
    if refused is not None:
        extra |= {"values": refused.values, "errors": refused.errors}
        status = refused.status if status == 200 else status
    return templates_of(request).TemplateResponse(
        request, template, {**extra, **context}, status_code=status
    )


def redirect_with_flash(request: Request, path: str, message: str) -> Response:
    session = request.scope.get("session")
    if session is not None:
        session[FLASH_KEY] = message
    return RedirectResponse(path, status_code=303)


async def home(request: Request, *, refused: Refusal | None = None) -> Response:
    async with page_unit(request, refused.form if refused else None) as (session, caller):
        actor = caller.actor
        rows = await cohorts.list_cohorts(session, actor=actor)
        views = [cohorts.present_cohort(c, actor=actor) for c in rows]
    return render_page(
        request,
        "home.html",
        {
            "cohorts": views,
            "signed_in": caller.user is not None,
            "can_create": policy.can_create_cohort(actor),
        },
        refused=refused,
    )


async def create_cohort(request: Request) -> Response:
    form = await request.form()
    try:
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            cohort = await cohorts.create_cohort(
                session,
                actor=caller.actor,
                slug=form_field(form, "slug"),
                name=form_field(form, "name"),
            )
    except DomainError as error:
        return await keep_input(request, home, form, error)
    return redirect_with_flash(
        request,
        request.app.url_path_for("cohorts:detail", cohort=cohort.slug),
        f"{cohort.name} is ready. Create a join code on its Members page.",
    )


async def join(request: Request) -> Response:
    form = await request.form()
    try:
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            await rate_limits_of(request).hit(request, JOIN, person=caller.actor.user_id)
            cohort = await memberships.join_with_code(
                session, actor=caller.actor, code=form_field(form, "code")
            )
    except DomainError as error:
        return await keep_input(request, home, form, error)
    return redirect_with_flash(
        request,
        request.app.url_path_for("cohorts:detail", cohort=cohort.slug),
        f"Welcome to {cohort.name}.",
    )


async def cohort_page(
    request: Request,
    *,
    form: FormData | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    # Also the re-render of a refused time-zone form (`form` carries its CSRF token).
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        actor = caller.actor
        cohort = await cohorts.get_cohort(session, actor=actor, slug=request.path_params["cohort"])
        items = await assignments.list_assignments(session, actor=actor, cohort=cohort)
        view = cohorts.present_cohort(cohort, actor=actor)
    typed = form_field(form, "time_zone") if form is not None else view.time_zone
    return render_page(
        request,
        "cohort.html",
        {"cohort": view, "assignments": items, "errors": errors or {}, "time_zone": typed,
         "time_zones": cohorts.time_zone_names() if view.can_set_time_zone else ()},
        status=status,
    )  # fmt: skip


async def time_zone_form(request: Request) -> Response:
    """An instructor sets the cohort's time zone; a name that is not one comes back on the
    page with the reason, and nothing changes."""
    form = await request.form()
    slug = request.path_params["cohort"]
    try:
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            cohort = await cohorts.set_time_zone(
                session, actor=caller.actor, slug=slug, time_zone=form_field(form, "time_zone")
            )
    except Invalid as error:
        errors = {p.field or "": p.message for p in error.problems}
        return await cohort_page(request, form=form, errors=errors, status=422)
    return redirect_with_flash(
        request,
        request.app.url_path_for("cohorts:detail", cohort=slug),
        f"Deadlines are now entered and shown in {cohort.time_zone}.",
    )


async def assignment_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        actor = caller.actor
        detail = await assignments.get_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
        view = await assignments.assignment_view(session, actor=actor, detail=detail)
        cohort = cohorts.present_cohort(detail.cohort, actor=actor)
        due = await reviews.whats_due(session, actor=actor, assignment=detail.assignment)
    return render_page(
        request, "assignment.html", {"assignment": view, "cohort": cohort, "due": due}
    )


# --- member management ---------------------------------------------------------------------


async def members_page(request: Request) -> Response:
    slug = request.path_params["cohort"]
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        actor = caller.actor
        cohort = await cohorts.get_cohort(session, actor=actor, slug=slug)
        roster = await memberships.list_members(session, actor=actor, slug=slug)
        code = await memberships.get_join_code(session, actor=actor, slug=slug)
        rules = await memberships.list_group_rules(session, actor=actor, slug=slug)
        roster_sync = await lti_roster.roster_status(session, actor=actor, cohort=cohort)
        view = cohorts.present_cohort(cohort, actor=actor)
        changeable = {
            m.user_id: _role_choices(actor, cohort_model=cohort, member_id=m.user_id, role=m.role)
            for m in roster
        }
        providers = [p.issuer for p in request.app.state.settings.oidc_providers]
    names = {m.user_id: m.display_name for m in roster}
    limited = await rate_limits_of(request).limited_people(list(names))
    return render_page(
        request,
        "members.html",
        {
            "cohort": view,
            "members": roster,
            "join_code": code,
            "rules": rules,
            "roster_sync": roster_sync,
            "choices": changeable,
            "roles": list(Role),
            "issuers": providers,
            "me": actor.user_id,
            "limited": [limited_view(hit, names[hit.person]) for hit in limited],
        },
    )


def _role_choices(actor: Actor, *, cohort_model: Cohort, member_id: int, role: Role) -> list[Role]:
    return [
        new
        for new in Role
        if policy.can_change_member(
            actor, cohort_model, target_user_id=member_id, current=role, new=new
        )
    ]


def _members_path(request: Request, slug: str) -> str:
    return str(request.app.url_path_for("cohorts:members", cohort=slug))


async def member_role_form(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["cohort"]
    try:
        role = Role(form_field(form, "role"))
    except ValueError:
        raise Invalid(problems=[Problem("is not a role", field="role")]) from None
    async with page_unit(request, form) as (session, caller):
        view = await memberships.set_member_role(
            session, actor=caller.actor, slug=slug, user_id=request.path_params["user"], role=role
        )
    return redirect_with_flash(
        request, _members_path(request, slug), f"{view.display_name} is now a {role.value}."
    )


async def member_remove_form(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["cohort"]
    async with page_unit(request, form) as (session, caller):
        await memberships.remove_member(
            session, actor=caller.actor, slug=slug, user_id=request.path_params["user"]
        )
    return redirect_with_flash(request, _members_path(request, slug), "The member was removed.")


async def join_code_form(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["cohort"]
    disable = form_field(form, "action") == "disable"
    days = form_field(form, "valid_days").strip()
    expires_at = None
    if days and not disable:
        valid_days = whole_number(days, field="valid_days", minimum=1, maximum=365)
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=valid_days)
    async with page_unit(request, form) as (session, caller):
        await memberships.rotate_join_code(
            session, actor=caller.actor, slug=slug, expires_at=expires_at, disable=disable
        )
    message = "Joining by code is off." if disable else "A new join code is ready."
    return redirect_with_flash(request, _members_path(request, slug), message)


async def group_rule_form(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["cohort"]
    try:
        role = Role(form_field(form, "role"))
    except ValueError:
        raise Invalid(problems=[Problem("is not a role", field="role")]) from None
    async with page_unit(request, form) as (session, caller):
        await memberships.add_group_rule(
            session,
            actor=caller.actor,
            slug=slug,
            issuer=form_field(form, "issuer"),
            group=form_field(form, "group"),
            role=role,
        )
    return redirect_with_flash(request, _members_path(request, slug), "The group rule was added.")


async def group_rule_delete_form(request: Request) -> Response:
    form = await request.form()
    slug = request.path_params["cohort"]
    async with page_unit(request, form) as (session, caller):
        await memberships.delete_group_rule(
            session, actor=caller.actor, slug=slug, rule_id=request.path_params["rule"]
        )
    return redirect_with_flash(request, _members_path(request, slug), "The group rule was removed.")
