"""Peer review endpoints: the JSON API and the pages. Each parses its input, calls one
service function inside one unit of work and renders the per-viewer view it gets back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from services import (
    allocation,
    assignments,
    cohorts,
    events,
    memberships,
    phases,
    policy,
    presenters,
    reveals,
    reviews,
    stance,
)
from services.errors import DomainError, Invalid, NotFound, Problem
from services.models import (
    Assignment,
    ComponentStance,
    Event,
    Phase,
    Role,
    Stance,
    TaskStatus,
)
from services.policy import Actor
from services.views import (
    PhaseView,
)
from web import live
from web.charts import bar_chart
from web.context import unit_of_work
from web.endpoints.pages import (
    Refusal,
    form_field,
    keep_input,
    page_unit,
    redirect_with_flash,
    render_page,
    safe_path,
    signin_redirect,
)
from web.endpoints.parsing import read_model, whole_number
from web.responses import json_response

# --- request bodies ------------------------------------------------------------------------


class QuoteBody(BaseModel):
    component: str | None = Field(
        default=None, max_length=64, description="Rubric component key; null: overall stance"
    )
    text: str = Field(max_length=4000, description="An exact passage of the paper")


class ReviewWrite(BaseModel):
    overall_stance: Stance | None = None
    components: dict[str, ComponentStance] = Field(default_factory=dict)
    evidence: list[QuoteBody] = Field(default_factory=list, max_length=100)
    rationale: str = Field(default="", max_length=40_000)
    suggestion: str = Field(default="", max_length=40_000)
    version: int | None = Field(
        default=None, description="The review version you last saw (0 for a new review)"
    )
    submit: bool = False


class RatingWrite(BaseModel):
    rating: int = Field(description="1 (not helpful) to 5 (very helpful)")
    comment: str = Field(default="", max_length=4000)


class RevealRequest(BaseModel):
    paper: str = Field(max_length=16, description='The paper\'s code ("K7Q2")')
    target: Literal["author", "reviewers"]
    reason: str = Field(max_length=4000, description="Why (10 characters at least); audited")


class PhaseChange(BaseModel):
    phase: Phase
    confirm: bool = Field(
        default=False,
        description="Required (true) for a step back over submitted work: feedback → "
        "review with submitted reviews, review → open with submitted papers or reviews, "
        "open → draft with submitted papers. Without it such a step is refused (409 "
        "`confirmation_required`, whose `consequences` say what it would do).",
    )


NAMED = (
    "Naming the reviewer can tell you who wrote or reviews the paper (a refusal says why), so "
    "like a reveal it needs a reason, and the attempt is audited before it runs."
)


class ManualAssign(BaseModel):
    paper: str = Field(max_length=32, description="The paper's opaque id")
    reviewer: int | None = Field(
        default=None,
        description="A student's user id (from the members list); omit to let Peerboard "
        "choose the least-loaded eligible student. " + NAMED,
    )
    reason: str | None = Field(default=None, max_length=2000, description="Required with reviewer")


class TaskMove(BaseModel):
    reviewer: int | None = Field(
        default=None,
        description="A student's user id; omit to let Peerboard choose. " + NAMED,
    )
    reason: str | None = Field(default=None, max_length=2000, description="Required with reviewer")


class ExclusionCreate(BaseModel):
    reviewer: int
    author: int


def _review_input(data: ReviewWrite) -> reviews.ReviewInput:
    return reviews.ReviewInput(
        overall_stance=data.overall_stance,
        components=dict(data.components),
        evidence=[reviews.QuoteInput(q.component, q.text) for q in data.evidence],
        rationale=data.rationale,
        suggestion=data.suggestion,
    )


def _assignment_id(request: Request) -> int:
    value: int = request.path_params["assignment"]
    return value


# --- JSON API ------------------------------------------------------------------------------


async def api_allocation(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        return json_response(
            await reviews.allocation_view(
                session, actor=actor, assignment_id=_assignment_id(request)
            )
        )


async def api_allocate(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await allocation.run_allocation(session, actor=actor, assignment_id=_assignment_id(request))
        view = await reviews.allocation_view(
            session, actor=actor, assignment_id=_assignment_id(request)
        )
    return json_response(view)


async def _announce_named(
    request: Request,
    reviewer: int | None,
    reason: str | None,
    *,
    paper: str | None = None,
    task: str | None = None,
) -> None:
    """A named reviewer: the reasoned attempt is audited and committed first, so a refused
    attempt stays on record (see allocation.announce_named_choice)."""
    if reviewer is None:
        return
    async with unit_of_work(request) as (session, actor):
        await allocation.announce_named_choice(
            session, actor=actor, assignment_id=_assignment_id(request) if task is None else 0,
            reason=reason or "", paper_public_id=paper, task_public_id=task,
        )  # fmt: skip


async def api_assign(request: Request) -> Response:
    data = await read_model(request, ManualAssign)
    await _announce_named(request, data.reviewer, data.reason, paper=data.paper)
    async with unit_of_work(request) as (session, actor):
        await allocation.assign_by_hand(
            session,
            actor=actor,
            assignment_id=_assignment_id(request),
            paper_public_id=data.paper,
            reviewer_id=data.reviewer,
        )
        view = await reviews.allocation_view(
            session, actor=actor, assignment_id=_assignment_id(request)
        )
    return json_response(view, status_code=201)


async def api_exclude(request: Request) -> Response:
    data = await read_model(request, ExclusionCreate)
    async with unit_of_work(request) as (session, actor):
        await allocation.exclude_pair(
            session,
            actor=actor,
            assignment_id=_assignment_id(request),
            reviewer_id=data.reviewer,
            author_id=data.author,
        )
    return Response(status_code=204)


async def api_move_task(request: Request) -> Response:
    data = await read_model(request, TaskMove)
    task_id = request.path_params["task"]
    await _announce_named(request, data.reviewer, data.reason, task=task_id)
    async with unit_of_work(request) as (session, actor):
        task = await allocation.move_task(
            session, actor=actor, task_public_id=task_id, reviewer_id=data.reviewer
        )
        view = await reviews.allocation_view(session, actor=actor, assignment_id=task.assignment_id)
    return json_response(view)


async def api_my_tasks(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        return json_response(
            await reviews.list_my_tasks(session, actor=actor, assignment_id=_assignment_id(request))
        )


async def api_task(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        detail = await reviews.get_task(session, actor=actor, task_id=request.path_params["task"])
        return json_response(reviews.present_task(detail, actor=actor))


async def api_save_review(request: Request) -> Response:
    data = await read_model(request, ReviewWrite)
    async with unit_of_work(request) as (session, actor):
        detail = await reviews.save_review(
            session,
            actor=actor,
            task_id=request.path_params["task"],
            data=_review_input(data),
            expected_version=data.version,
            submit=data.submit,
        )
        view = reviews.present_task(detail, actor=actor)
    return json_response(view)


async def api_reopen(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        detail = await reviews.reopen_review(
            session, actor=actor, task_id=request.path_params["task"]
        )
        view = reviews.present_task(detail, actor=actor)
    return json_response(view)


async def api_feedback(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        return json_response(
            await reviews.my_feedback(session, actor=actor, assignment_id=_assignment_id(request))
        )


async def api_rate(request: Request) -> Response:
    data = await read_model(request, RatingWrite)
    async with unit_of_work(request) as (session, actor):
        view = await reviews.rate_review(
            session,
            actor=actor,
            review_id=request.path_params["review"],
            rating=data.rating,
            comment=data.comment,
        )
    return json_response(view)


async def api_stance(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        return json_response(
            await stance.stance_report(session, actor=actor, assignment_id=_assignment_id(request))
        )


async def api_reveal(request: Request) -> Response:
    data = await read_model(request, RevealRequest)
    async with unit_of_work(request) as (session, actor):
        view = await reveals.reveal(
            session,
            actor=actor,
            assignment_id=_assignment_id(request),
            paper_code=data.paper,
            target=data.target,
            reason=data.reason,
        )
    return json_response(view, status_code=201, headers={"Cache-Control": "no-store"})


async def api_audit(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        return json_response(
            await reveals.review_audit_log(
                session, actor=actor, assignment_id=_assignment_id(request)
            )
        )


async def api_phase(request: Request) -> Response:
    data = await read_model(request, PhaseChange)
    async with unit_of_work(request) as (session, actor):
        assignment, made = await phases.change_phase(
            session, actor=actor, assignment_id=_assignment_id(request), phase=data.phase,
            confirm=data.confirm,
        )  # fmt: skip
        view = PhaseView(
            assignment_id=assignment.id or 0, phase=assignment.phase, tasks_created=len(made)
        )
    return json_response(view)


# --- live status ---------------------------------------------------------------------------


class ReviewFanout:
    """Staff get completion counts; a reviewer gets only their own tasks' changes (never a
    count or event that ticks when someone else works). A batch costs the assignment, the
    completion (once, if staff listen), the batch's tasks, and the task list of each
    reviewer whose task changed: not a query per listener."""

    def __init__(self, assignment_id: int) -> None:
        self.assignment_id = assignment_id
        self.channel = self.key = events.assignment_channel(assignment_id)

    async def read(self, session: AsyncSession, after_id: int) -> Sequence[Event]:
        return await events.since(session, channel=self.channel, after_id=after_id)

    async def admit(self, session: AsyncSession, actor: Actor) -> Actor:
        await policy.access_assignment(session, actor=actor, assignment_id=self.assignment_id)
        return actor

    async def render(
        self, session: AsyncSession, batch: Sequence[Event], viewers: Sequence[Actor]
    ) -> list[list[tuple[int, str, str]]]:
        return await reviews.live_review_events(
            session, assignment_id=self.assignment_id, batch=batch, viewers=viewers
        )


async def api_review_events(request: Request) -> Response:
    assignment_id = _assignment_id(request)
    channel = events.assignment_channel(assignment_id)
    async with unit_of_work(request) as (session, actor):
        await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
        start = live.last_event_id(request)
        if start < 0:
            start = await events.latest_id(session, channel=channel)
    return await live.respond(request, fanout=ReviewFanout(assignment_id), start_after=start)


# --- pages ---------------------------------------------------------------------------------


async def _context(session: AsyncSession, actor: Actor, assignment_id: int) -> dict[str, Any]:
    detail = await assignments.get_assignment(session, actor=actor, assignment_id=assignment_id)
    return {
        "assignment": assignments.present_assignment(detail, actor=actor),
        "cohort": cohorts.present_cohort(detail.cohort, actor=actor),
    }


async def tasks_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        ctx = await _context(session, caller.actor, _assignment_id(request))
        tasks = await reviews.list_my_tasks(
            session, actor=caller.actor, assignment_id=_assignment_id(request)
        )
    return render_page(request, "tasks.html", {**ctx, "tasks": tasks})


async def review_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        detail = await reviews.get_task(
            session, actor=caller.actor, task_id=request.path_params["task"]
        )
        view = reviews.present_task(detail, actor=caller.actor)
        ctx = await _context(session, caller.actor, view.assignment_id)
        mine = await reviews.list_my_tasks(
            session, actor=caller.actor, assignment_id=view.assignment_id
        )
    # The "next review" link: the reviewer's next task still to do, after this one.
    todo = [t for t in mine if t.status in (TaskStatus.assigned, TaskStatus.started)]
    after = [t for t in todo if t.id != view.id]
    quotes = [e.model_dump() for e in view.review.evidence] if view.review else []
    state = {
        "task": view.id,
        "version": view.review.version if view.review else 0,
        "quotes": quotes,
        "api": str(request.app.url_path_for("api:reviews:save", task=view.id)),
    }
    return render_page(
        request,
        "review.html",
        {
            **ctx,
            "task": view,
            "next_task": after[0] if after else None,
            "stances": [s for s in Stance],
            "component_stances": [c for c in ComponentStance],
            "current": {c.key: c.stance for c in view.review.components} if view.review else {},
            # Inline JSON: escape <, > and & so no quoted text can close the script element.
            "state_json": orjson.dumps(state)
            .decode()
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026"),
        },
    )


async def feedback_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        ctx = await _context(session, caller.actor, _assignment_id(request))
        view = await reviews.my_feedback(
            session, actor=caller.actor, assignment_id=_assignment_id(request)
        )
    labels = {c.key: c.label for c in ctx["assignment"].rubric.components}
    return render_page(request, "feedback.html", {**ctx, "feedback": view, "labels": labels})


async def rating_form(request: Request) -> Response:
    form = await request.form()
    rating = whole_number(form_field(form, "rating"), field="rating", minimum=1, maximum=5)
    async with page_unit(request, form) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        await reviews.rate_review(
            session,
            actor=caller.actor,
            review_id=request.path_params["review"],
            rating=rating,
            comment=form_field(form, "comment"),
        )
    back = safe_path(form_field(form, "back"))
    return redirect_with_flash(request, back, "Thank you: your rating is saved.")


async def dashboard_page(
    request: Request,
    *,
    refused: Refusal | None = None,
    confirm: Phase | None = None,
    form: FormData | None = None,
) -> Response:
    """The review dashboard; also the re-render of its refused forms (`refused`) and the
    confirmation of a phase change (`confirm`: the phase asked for, with its consequences)."""
    assignment_id = _assignment_id(request)
    form = refused.form if refused is not None else form
    async with page_unit(request, form) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        ctx = await _context(session, caller.actor, assignment_id)
        alloc = await reviews.allocation_view(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        report = await stance.stance_report(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        model = await session.get(Assignment, assignment_id)
        assert model is not None
        can_phase = policy.can_change_phase(caller.actor, model)
        if confirm is not None and not can_phase:
            raise NotFound("No such assignment.")
    done = alloc.completion
    work = phases.Impact(
        submitted_papers=done.papers, submitted_reviews=done.submitted,
        unfinished_reviews=done.started + done.assigned,
    )  # fmt: skip
    moves = [
        PhaseMove(
            phase=p, back=phases.is_step_back(alloc.phase, p),
            consequences=phases.consequences(
                alloc.phase, p, reviews_per_paper=alloc.reviews_per_paper,
                submitted_reviews=work.submitted_reviews,
                unfinished_reviews=work.unfinished_reviews,
                submitted_papers=work.submitted_papers,
            ),
            needs_confirmation=phases.needs_confirmation(alloc.phase, p, work),
            submitted_papers=work.submitted_papers,
            submitted_reviews=work.submitted_reviews,
        )
        for p in (phases.allowed_moves(alloc.phase) if can_phase else [])
    ]  # fmt: skip
    asked = next((m for m in moves if m.phase is confirm), None)
    if refused is not None and (wanted := refused.values.get("phase")):
        asked = next((m for m in moves if m.phase.value == wanted), asked)
    return render_page(
        request,
        "review_dashboard.html",
        {
            **ctx,
            "alloc": alloc,
            "report": report,
            "moves": moves,
            "confirm": asked,
            "chart": bar_chart(
                [(c.stance.replace("_", " "), c.count) for c in report.overall],
                title=f"Overall stance toward {report.source or 'the source'}",
            ),
        },
        refused=refused,
    )


@dataclass(frozen=True)
class PhaseMove:
    """A phase button: where it goes, whether that is a step back, and what it does."""

    phase: Phase
    back: bool
    consequences: list[str]
    # A step back over submitted work: the confirmation box must be ticked.
    needs_confirmation: bool = False
    submitted_papers: int = 0
    submitted_reviews: int = 0


def _user_id(form: FormData, name: str) -> int:
    return whole_number(form_field(form, name), field=name, minimum=0)


def _path(request: Request, name: str) -> str:
    return str(request.app.url_path_for(name, assignment=str(_assignment_id(request))))


async def assign_form(request: Request) -> Response:
    """A moderator adds one more reviewer to a paper; Peerboard picks the student (the
    least-loaded eligible one), so the page never links a name to a paper."""
    form = await request.form()
    try:
        async with page_unit(request, form) as (session, caller):
            task = await allocation.assign_by_hand(
                session, actor=caller.actor, assignment_id=_assignment_id(request),
                paper_public_id=form_field(form, "paper"),
            )  # fmt: skip
    except DomainError as error:
        return await keep_input(request, dashboard_page, form, error)
    return redirect_with_flash(
        request,
        _path(request, "reviews:dashboard"),
        f"{presenters.reviewer_label(task.reviewer_number)} is added.",
    )


async def move_form(request: Request) -> Response:
    """A moderator gives an unsubmitted review to another student, whom Peerboard picks."""
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        task = await allocation.move_task(
            session, actor=caller.actor, task_public_id=form_field(form, "task")
        )
        if task.assignment_id != _assignment_id(request):
            raise NotFound("No such review task.")
    return redirect_with_flash(
        request,
        _path(request, "reviews:dashboard"),
        f"The review is moved: it is now {presenters.reviewer_label(task.reviewer_number)}'s.",
    )


async def conflicts_page(request: Request) -> Response:
    """Conflicts of interest: pairs of students kept apart. Names, but never a paper."""
    assignment_id = _assignment_id(request)
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        ctx = await _context(session, caller.actor, assignment_id)
        pairs = await allocation.list_exclusions(
            session, actor=caller.actor, assignment_id=assignment_id
        )
        roster = await memberships.list_members(
            session, actor=caller.actor, slug=ctx["cohort"].slug
        )
    students = [m for m in roster if m.role is Role.student]
    return render_page(
        request, "review_conflicts.html", {**ctx, "pairs": pairs, "students": students}
    )


async def unexclude_form(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        await allocation.remove_exclusion(
            session, actor=caller.actor, assignment_id=_assignment_id(request),
            exclusion_id=_user_id(form, "exclusion"),
        )  # fmt: skip
    return redirect_with_flash(
        request, _path(request, "reviews:conflicts"), "They may review each other again."
    )


async def exclude_form(request: Request) -> Response:
    """A moderator keeps two students apart: one never reviews the other's paper."""
    form = await request.form()
    reviewer, author = _user_id(form, "reviewer"), _user_id(form, "author")
    async with page_unit(request, form) as (session, caller):
        await allocation.exclude_pair(
            session, actor=caller.actor, assignment_id=_assignment_id(request),
            reviewer_id=reviewer, author_id=author,
        )  # fmt: skip
    return redirect_with_flash(
        request,
        _path(request, "reviews:conflicts"),
        "They are kept apart in later allocations; a review already given stays "
        "(move it from the review dashboard if needed).",
    )


async def phase_form(request: Request) -> Response:
    """A phase button asks first: the dashboard shows what the move does, and only its
    "Yes" button (confirmed=yes) moves. A step back over submitted work also needs the
    instructor to tick the box that says what it affects (the service's `confirm`)."""
    form = await request.form()
    try:
        phase = Phase(form_field(form, "phase"))
    except ValueError:
        raise Invalid(problems=[Problem("is not a phase", field="phase")]) from None
    if form_field(form, "confirmed") != "yes":
        return await dashboard_page(request, confirm=phase, form=form)
    try:
        async with page_unit(request, form) as (session, caller):
            _, made = await phases.change_phase(
                session, actor=caller.actor, assignment_id=_assignment_id(request),
                phase=phase, confirm=form_field(form, "confirm") == "on",
            )  # fmt: skip
    except DomainError as error:
        return await keep_input(request, dashboard_page, form, error)
    path = request.app.url_path_for("reviews:dashboard", assignment=str(_assignment_id(request)))
    extra = f" {len(made)} review tasks were allocated." if made else ""
    return redirect_with_flash(
        request, str(path), f"The assignment is now in {phase.value}.{extra}"
    )


async def allocate_form(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        made = await allocation.run_allocation(
            session, actor=caller.actor, assignment_id=_assignment_id(request)
        )
    path = request.app.url_path_for("reviews:dashboard", assignment=str(_assignment_id(request)))
    return redirect_with_flash(
        request, str(path), f"Allocation is complete ({len(made)} new tasks)."
    )


async def reveal_form(request: Request) -> Response:
    form = await request.form()
    target = form_field(form, "target")
    if target not in ("author", "reviewers"):
        raise Invalid(problems=[Problem("choose author or reviewers", field="target")])
    assignment_id = _assignment_id(request)
    try:
        async with page_unit(request, form) as (session, caller):
            view = await reveals.reveal(
                session,
                actor=caller.actor,
                assignment_id=assignment_id,
                paper_code=form_field(form, "paper"),
                target=target,  # type: ignore[arg-type]
                reason=form_field(form, "reason"),
            )
            ctx = await _context(session, caller.actor, assignment_id)
    except DomainError as error:
        return await keep_input(request, dashboard_page, form, error)
    response = render_page(request, "reveal.html", {**ctx, "reveal": view})
    response.headers["Cache-Control"] = "no-store"
    return response
