"""LTI Advantage pages and API: "Sync roster now" on the members page, what goes to the
LMS's gradebook (settings), and what was sent (the gradebook)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from services import lti_grades, lti_roster
from services.errors import Invalid, Problem
from web.context import sessions_of, settings_of, unit_of_work
from web.endpoints.pages import (
    Refusal,
    form_field,
    keep_input,
    page_unit,
    redirect_with_flash,
    render_page,
    require_signed_in,
)
from web.endpoints.parsing import read_model
from web.lti_jobs import advantage_of
from web.responses import json_response


async def roster_sync_form(request: Request) -> Response:
    """Read the course's roster from the LMS now (instructors), then back to the members."""
    slug = request.path_params["cohort"]
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        courses = await lti_roster.syncable_courses(session, actor=caller.actor, slug=slug)
    messages = []
    for services_id in courses:
        outcome = await lti_roster.sync_course(
            sessions_of(request), advantage_of(request), services_id=services_id,
            secret=settings_of(request).secret_key,
        )  # fmt: skip
        if outcome.ok:
            messages.append(
                f"Roster synced: {outcome.added} added, {outcome.changed} role(s) changed, "
                f"{outcome.removed} removed. {outcome.message}".strip()
            )
        else:
            messages.append(f"The roster could not be read: {outcome.message}")
    return redirect_with_flash(
        request, str(request.app.url_path_for("cohorts:members", cohort=slug)), " ".join(messages)
    )


# --- grades (LTI Assignment and Grade Services) ---------------------------------------------


class GradingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="Send scores to the course's LMS gradebook")
    weights: dict[str, int] = Field(
        max_length=200,
        description=(
            'Measure key -> weight 0-100: "paper", "reviews", "helpfulness", '
            '"question:<question id>" (see GET for the keys and their labels)'
        ),
    )


def _assignment_id(request: Request) -> int:
    value: int = request.path_params["assignment"]
    return value


async def api_grading(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await lti_grades.grading(session, actor=actor, assignment_id=_assignment_id(request))
        return json_response(view)


async def api_save_grading(request: Request) -> Response:
    data = await read_model(request, GradingUpdate)
    async with unit_of_work(request) as (session, actor):
        view = await lti_grades.save_grading(
            session, actor=actor, assignment_id=_assignment_id(request), weights=data.weights,
            enabled=data.enabled,
        )  # fmt: skip
    return json_response(view)


async def api_send(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        result = await lti_grades.send_now(
            session, actor=actor, assignment_id=_assignment_id(request)
        )
    return json_response(result, status_code=202)


async def api_gradebook(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        _, _, _, rows = await lti_grades.gradebook(
            session, actor=actor, assignment_id=_assignment_id(request)
        )
        return json_response(rows)


async def grades_page(request: Request, *, refused: Refusal | None = None) -> Response:
    async with page_unit(request, refused.form if refused else None) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        assignment, cohort, view, rows = await lti_grades.gradebook(
            session, actor=caller.actor, assignment_id=_assignment_id(request)
        )
    return render_page(
        request, "lti_grades.html",
        {"assignment": assignment, "cohort": cohort, "grading": view, "rows": rows},
        refused=refused,
    )  # fmt: skip


async def grades_save(request: Request) -> Response:
    form = await request.form()
    weights: dict[str, int] = {}
    problems = []
    for name, value in form.multi_items():
        if not name.startswith("weight:") or not isinstance(value, str):
            continue
        key = name.removeprefix("weight:")
        text = value.strip() or "0"
        if not text.isdigit() or len(text) > 3:
            problems.append(Problem("must be a whole number from 0 to 100", field=name))
        else:
            weights[key] = int(text)
    try:
        if problems:
            raise Invalid(problems=problems)
        async with page_unit(request, form) as (session, caller):
            if (redirect := require_signed_in(request, caller)) is not None:
                return redirect
            await lti_grades.save_grading(
                session, actor=caller.actor, assignment_id=_assignment_id(request),
                weights=weights, enabled=form_field(form, "enabled") == "on",
            )  # fmt: skip
    except Invalid as error:
        # Field names in the form carry the "weight:" prefix; the service names the measure.
        error.problems = [
            Problem(p.message, field=p.field if (p.field or "").startswith("weight:")
                    or p.field in (None, "weights") else f"weight:{p.field}")
            for p in error.problems
        ]  # fmt: skip
        return await keep_input(request, grades_page, form, error)
    return redirect_with_flash(
        request, str(request.app.url_path_for("grades:page", assignment=_assignment_id(request))),
        "Saved. Scores go to the LMS when a phase closes, or when you send them.",
    )  # fmt: skip


async def grades_send(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        result = await lti_grades.send_now(
            session, actor=caller.actor, assignment_id=_assignment_id(request)
        )
    message = f"{result.queued} score(s) are on their way to the LMS."
    if result.not_from_lms:
        message += f" {result.not_from_lms} student(s) did not come from the LMS: no score."
    return redirect_with_flash(
        request, str(request.app.url_path_for("grades:page", assignment=_assignment_id(request))),
        message,
    )  # fmt: skip
