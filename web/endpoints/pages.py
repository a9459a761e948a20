"""HTML pages for people. Same service calls and views as the API; templates only place them.

Forms post back with the session's CSRF token; success redirects (303) to a page that shows
the result, and refusals render the error page with the reason (4xx).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services import assignments, cohorts, memberships, policy
from services.errors import Invalid, Problem
from services.models import Cohort, Role
from services.policy import Actor
from web.context import Caller, templates_of, unit_of_work_caller
from web.endpoints.parsing import whole_number
from web.ratelimit import JOIN, rate_limits_of

FLASH_KEY = "flash"


@asynccontextmanager
async def page_unit(
    request: Request, form: FormData | None = None
) -> AsyncIterator[tuple[AsyncSession, Caller]]:
    token = form.get("csrf_token") if form is not None else None
    async with unit_of_work_caller(
        request, form_csrf=token if isinstance(token, str) else None
    ) as (session, caller):
        if caller.user is not None:
            request.state.viewer = {
                "name": caller.user.display_name,
                "is_administrator": caller.user.is_administrator,
            }
        yield session, caller


def render_page(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    session = request.scope.get("session")
    flash = session.pop(FLASH_KEY, None) if session is not None else None
    return templates_of(request).TemplateResponse(
        request, template, {**context, "flash": flash}, status_code=status
    )


def redirect_with_flash(request: Request, path: str, message: str) -> Response:
    session = request.scope.get("session")
    if session is not None:
        session[FLASH_KEY] = message
    return RedirectResponse(path, status_code=303)


def require_signed_in(request: Request, caller: Caller) -> Response | None:
    if caller.user is None:
        return RedirectResponse(
            f"{request.app.url_path_for('auth:signin')}?next={request.url.path}", status_code=303
        )
    return None


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def home(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
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
    )


async def create_cohort(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        cohort = await cohorts.create_cohort(
            session, actor=caller.actor, slug=_field(form, "slug"), name=_field(form, "name")
        )
    return redirect_with_flash(
        request,
        request.app.url_path_for("cohorts:detail", cohort=cohort.slug),
        f"{cohort.name} is ready. Create a join code on its Members page.",
    )


async def join(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await rate_limits_of(request).hit(request, JOIN, person=caller.actor.user_id)
        cohort = await memberships.join_with_code(
            session, actor=caller.actor, code=_field(form, "code")
        )
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
    typed = _field(form, "time_zone") if form is not None else view.time_zone
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
                session, actor=caller.actor, slug=slug, time_zone=_field(form, "time_zone")
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
        view = assignments.present_assignment(detail, actor=actor)
        cohort = cohorts.present_cohort(detail.cohort, actor=actor)
    return render_page(request, "assignment.html", {"assignment": view, "cohort": cohort})


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
        view = cohorts.present_cohort(cohort, actor=actor)
        changeable = {
            m.user_id: _role_choices(actor, cohort_model=cohort, member_id=m.user_id, role=m.role)
            for m in roster
        }
        providers = [p.issuer for p in request.app.state.settings.oidc_providers]
    return render_page(
        request,
        "members.html",
        {
            "cohort": view,
            "members": roster,
            "join_code": code,
            "rules": rules,
            "choices": changeable,
            "roles": list(Role),
            "issuers": providers,
            "me": actor.user_id,
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
        role = Role(_field(form, "role"))
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
    disable = _field(form, "action") == "disable"
    days = _field(form, "valid_days").strip()
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
        role = Role(_field(form, "role"))
    except ValueError:
        raise Invalid(problems=[Problem("is not a role", field="role")]) from None
    async with page_unit(request, form) as (session, caller):
        await memberships.add_group_rule(
            session,
            actor=caller.actor,
            slug=slug,
            issuer=_field(form, "issuer"),
            group=_field(form, "group"),
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
