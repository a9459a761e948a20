"""The assignment settings page: deadlines (in the cohort's time zone), late policy, reviews
per paper, anonymity.

The same service call as `PATCH /api/v1/assignments/{id}` (optimistic version, audited). A
form with mistakes comes back with the person's own values and a message per field, and
nothing is saved; a form based on an older version says so instead of overwriting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from services import assignments, cohorts, times
from services.errors import Conflict, Invalid, NotFound, Problem
from services.models import LatePolicy
from web.endpoints.pages import (
    form_field,
    page_unit,
    redirect_with_flash,
    render_page,
    require_signed_in,
)
from web.endpoints.parsing import whole_number

DEADLINES = ("paper_due_at", "review_due_at")


def _text(form: FormData, name: str) -> str:
    return form_field(form, name, strip=True)


def _when(raw: str, field: str, problems: list[Problem], zone: ZoneInfo) -> datetime | None:
    """A `datetime-local` value, read in the cohort's time zone, as UTC."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(Problem("is not a date and time (YYYY-MM-DDTHH:MM)", field=field))
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    moment = value.replace(tzinfo=zone).astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != value:
        # In the hour skipped when clocks go forward: that wall-clock time never happens.
        problems.append(
            Problem(f"does not exist in {zone.key} (the clocks change then)", field=field)
        )
        return None
    return moment


def parse(form: FormData, zone: ZoneInfo | None = None) -> tuple[int, assignments.SettingsChange]:
    """The form's fields as a settings change, deadlines read in `zone` (the cohort's);
    Invalid (every problem at once) otherwise."""
    zone = zone or ZoneInfo("UTC")
    problems: list[Problem] = []
    version = whole_number(_text(form, "version"), field="version")
    dues = {name: _when(_text(form, name), name, problems, zone) for name in DEADLINES}
    try:
        late_policy = LatePolicy(_text(form, "late_policy"))
    except ValueError:
        problems.append(Problem("must be accept, mark or refuse", field="late_policy"))
        late_policy = None
    reviews_per_paper: int | None = None
    if raw := _text(form, "reviews_per_paper"):
        try:
            reviews_per_paper = whole_number(raw, field="reviews_per_paper")
        except Invalid as exc:
            problems += exc.problems
    if problems:
        raise Invalid(problems=problems)
    change = assignments.SettingsChange(
        title=_text(form, "title") or None,
        paper_due_at=dues["paper_due_at"],
        review_due_at=dues["review_due_at"],
        clear_paper_due_at=dues["paper_due_at"] is None,
        clear_review_due_at=dues["review_due_at"] is None,
        auto_advance=form.get("auto_advance") == "on",
        late_policy=late_policy,
        reviews_per_paper=reviews_per_paper,
        allow_anonymous_posts=form.get("allow_anonymous_posts") == "on",
    )
    return version, change


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if value else ""


async def _render(
    request: Request,
    *,
    submitted: dict[str, Any] | None = None,
    problems: list[Problem] | None = None,
    message: str | None = None,
    status: int = 200,
    form: FormData | None = None,
) -> Response:
    assignment_id = request.path_params["assignment"]
    # A re-render after a refused POST is still that POST: its form carries the CSRF token.
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        detail = await assignments.get_assignment(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        view = assignments.present_assignment(detail, actor=caller.actor)
        if not view.can_manage:
            raise NotFound("No such assignment.")
        cohort = cohorts.present_cohort(detail.cohort, actor=caller.actor)
        zone = times.zone(detail.cohort.time_zone)
    values: dict[str, Any] = {
        "title": view.title,
        "version": view.version,
        "auto_advance": view.auto_advance,
        "late_policy": view.late_policy.value,
        "reviews_per_paper": view.reviews_per_paper,
        "allow_anonymous_posts": view.allow_anonymous_posts,
        "paper_due_at": _local(view.paper_due_at, zone),
        "review_due_at": _local(view.review_due_at, zone),
    }
    if submitted is not None:
        values |= submitted
    errors: dict[str, str] = {}
    for problem in problems or []:
        errors.setdefault(problem.field or "", problem.message)
    return render_page(
        request,
        "assignment_settings.html",
        {"assignment": view, "cohort": cohort, "values": values, "errors": errors,
         "message": message},
        status=status,
    )  # fmt: skip


async def settings_page(request: Request) -> Response:
    return await _render(request)


async def settings_form(request: Request) -> Response:
    form = await request.form()
    assignment_id = request.path_params["assignment"]
    submitted = {
        "title": _text(form, "title"),
        "paper_due_at": _text(form, "paper_due_at"),
        "review_due_at": _text(form, "review_due_at"),
        "auto_advance": form.get("auto_advance") == "on",
        "late_policy": _text(form, "late_policy"),
        "reviews_per_paper": _text(form, "reviews_per_paper"),
        "allow_anonymous_posts": form.get("allow_anonymous_posts") == "on",
    }
    try:
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            detail = await assignments.get_assignment(
                session, actor=caller.actor, assignment_id=assignment_id
            )
            version, change = parse(form, times.zone(detail.cohort.time_zone))
            await assignments.update_settings(
                session, actor=caller.actor, assignment_id=assignment_id, version=version,
                change=change,
            )  # fmt: skip
    except Invalid as error:
        # Rolled back: nothing was saved. Show the form again with the person's values.
        return await _render(
            request, submitted=submitted, problems=error.problems, status=422, form=form,
            message=None if error.problems else str(error),
        )  # fmt: skip
    except Conflict as error:
        # Someone saved meanwhile: show the current values, and say so.
        return await _render(
            request, status=409, form=form,
            message=f"{error} Nothing was saved: these are the current settings; make your "
                    "change again.",
        )  # fmt: skip
    path = request.app.url_path_for("assignments:detail", assignment=str(assignment_id))
    return redirect_with_flash(request, str(path), "The assignment's settings are saved.")
